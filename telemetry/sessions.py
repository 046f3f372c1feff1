"""Drives as sessions: a log (or several given together) may hold separate drives, days apart.

Time in which nothing at all was received for longer than ``SESSION_GAP_S`` separates two
sessions: it is neither drive time nor link time. A replay skips it on the virtual clock (no
staleness, no ticks, nothing accounted) and starts the next session with no vehicle known;
reports count hours per session. Within a session, silence is judged as always (a stale link,
a hub that saw nothing).
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: Ten minutes of total silence: far beyond any staleness or hold a rule uses (seconds), and
#: shorter than any pause between two separate drives (a recording of a hub that was down for
#: longer than this is two sessions, which is also what it is).
SESSION_GAP_S: Final = 600.0


class ActiveTime:
    """Seconds of session time in receive times fed in order, batch by batch: the sum of the
    spans between consecutive times no further apart than ``gap_s``."""

    __slots__ = ("gap_s", "last", "seconds", "sessions")

    def __init__(self, gap_s: float = SESSION_GAP_S) -> None:
        self.gap_s = gap_s
        self.last: float | None = None
        self.seconds = 0.0
        self.sessions = 0

    def add(self, times: np.ndarray) -> None:
        """Receive times (any order within the batch; batches in time order)."""
        if not times.size:
            return
        ordered = np.sort(times)
        if self.last is not None:
            ordered = np.concatenate([[self.last], ordered])
        else:
            self.sessions = 1
        steps = np.diff(ordered)
        close = steps <= self.gap_s
        self.seconds += float(steps[close & (steps > 0)].sum())
        self.sessions += int(np.count_nonzero(~close))
        self.last = float(max(ordered[-1], self.last or ordered[-1]))
