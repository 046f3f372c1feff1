"""The two clocks: live (wall time) and manual (replay and tests).

Every time-dependent decision in l4mon takes its time from one of these, never from ``time``
directly; that is what makes a replay bit-identical to what live would have done.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, as this clock sees them."""
        ...


class LiveClock:
    """Wall-clock time: what the hub uses when it runs for real."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Time that only moves when told: replays and tests drive it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a manual clock does not go backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("a manual clock does not go backwards")
        self._now = when
