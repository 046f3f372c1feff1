"""How late the hub's one event loop wakes a sleeper: the time urgent work waits behind other work.

Everything live (ingest, ticks, state frames, HTTP, console sends, command answers) shares one
loop, so a takeover alert or a command's acknowledgement can only be as quick as the longest
stretch of work that runs without yielding. A probe that sleeps a short interval and records how
much later than asked it wakes measures exactly that stretch, whatever caused it; /metrics
reports it (``l4mon_loop_lag_seconds``) and the latency benches print it beside their figures.
The probe measures; it decides nothing, so it reads the monotonic counter, not the hub's clock.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque

#: How often the probe wakes: often enough to see a 10 ms stall, rare enough to cost nothing.
PROBE_INTERVAL_S = 0.005
#: Wakes kept for the quantiles: about the last 20 s at the probe's interval (bounded memory).
PROBE_WINDOW = 4096


class LoopLag:
    """The lateness of the last ``window`` wakes, and the worst since the start."""

    def __init__(self, *, interval_s: float = PROBE_INTERVAL_S,
                 window: int = PROBE_WINDOW) -> None:
        if interval_s <= 0 or window <= 0:
            raise ValueError("the probe needs a positive interval and window")
        self.interval_s = interval_s
        self.recent: deque[float] = deque(maxlen=window)
        self.worst_s = 0.0
        self.wakes = 0
        #: The longest garbage collection by generation, and how many ran: a collection
        #: stops the loop too, and is the usual suspect when the lag has no other cause.
        self.gc_worst_s = [0.0, 0.0, 0.0]
        self.gc_runs = [0, 0, 0]
        self._gc_started = 0.0

    def record(self, late_s: float) -> None:
        late_s = max(late_s, 0.0)
        self.recent.append(late_s)
        self.worst_s = max(self.worst_s, late_s)
        self.wakes += 1

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the recent lateness, in seconds; 0 before any wake."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        generation = info["generation"]
        self.gc_runs[generation] += 1
        self.gc_worst_s[generation] = max(self.gc_worst_s[generation],
                                          time.perf_counter() - self._gc_started)

    async def run(self) -> None:
        interval = self.interval_s
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                asked = time.perf_counter()
                await asyncio.sleep(interval)
                self.record(time.perf_counter() - asked - interval)
        finally:
            gc.callbacks.remove(self._on_gc)
