"""Failed-token throttling: a client address that keeps presenting bad tokens is told to wait.

A token has 192 random bits, so guessing one is hopeless anyway; the limit is there to make a
scanner or a misconfigured client cheap to carry and plain to see (429 with ``Retry-After``)
instead of an endless stream of token hashes. Only failures are counted: a request with a good
token costs one dict lookup and is never delayed, and a success does not wipe the count (a
holder of a viewer token could otherwise interleave guesses at an admin token).

Each address gets a fixed window that opens with its first failure; ``max_failures`` failures
inside it block that address until the window closes. While blocked, the token is not checked
at all, so a blocked client learns nothing. The table of addresses is bounded: when it is full,
expired windows are dropped, then the oldest.
"""

from __future__ import annotations

import math
from collections.abc import Callable


class FailureLimiter:
    """Per-address failure counts in fixed windows. Not thread-safe: one event loop uses it."""

    __slots__ = ("_clock", "_windows", "max_clients", "max_failures", "window_s")

    def __init__(self, *, max_failures: int, window_s: float, max_clients: int,
                 clock: Callable[[], float]) -> None:
        if max_failures < 0 or window_s <= 0 or max_clients <= 0:
            raise ValueError("need max_failures >= 0 (0 turns the limit off), window_s > 0 "
                             "and max_clients > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        #: address → [window start, failures in it]; insertion order is window-start order.
        self._windows: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Whole seconds ``client`` must wait before its next try, or None if it may try now."""
        window = self._windows.get(client)
        if window is None or window[1] < self.max_failures:
            return None
        left = window[0] + self.window_s - self._clock()
        if left <= 0:
            return None
        return max(1, math.ceil(left))

    def failed(self, client: str) -> None:
        """Count one failed token check from ``client``."""
        if self.max_failures == 0:
            return
        now = self._clock()
        window = self._windows.get(client)
        if window is not None and now - window[0] < self.window_s:
            window[1] += 1
            return
        if window is not None:
            del self._windows[client]  # re-inserted below, at the end: newest window last
        elif len(self._windows) >= self.max_clients:
            self._make_room(now)
        self._windows[client] = [now, 1.0]

    def _make_room(self, now: float) -> None:
        horizon = now - self.window_s
        expired = [c for c, (start, _) in self._windows.items() if start <= horizon]
        for client in expired:
            del self._windows[client]
        if len(self._windows) >= self.max_clients:
            del self._windows[next(iter(self._windows))]

    def __len__(self) -> int:
        return len(self._windows)
