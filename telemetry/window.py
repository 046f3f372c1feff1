"""Order statistics over a window of samples.

The link keeps every sample of its longest window (bounded by count), so percentiles here are
exact order statistics with linear interpolation between ranks, the same definition as
``numpy.percentile``'s default: the estimator's only error is the count bound on the window.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of an already sorted sequence, ``None`` when empty."""
    n = len(ordered)
    if n == 0:
        return None
    rank = (n - 1) * q / 100.0
    low = int(rank)
    if low >= n - 1:
        return float(ordered[-1])
    frac = rank - low
    return float(ordered[low] + (ordered[low + 1] - ordered[low]) * frac)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_abs_step(values: Sequence[float]) -> float | None:
    """Jitter as the mean absolute change between consecutive values (RFC 3550's D, unsmoothed).

    Unsmoothed so that the figure depends only on the window's contents, not on history.
    """
    if len(values) < 2:
        return None
    total = 0.0
    prev = values[0]
    for value in values[1:]:
        total += abs(value - prev)
        prev = value
    return total / (len(values) - 1)


class JudgingWindow:
    """The samples a link's verdict is judged on, kept in flat arrays of doubles.

    A tick judges every link of the fleet several times a second; contiguous arrays let it find
    the window edge with ``bisect`` and sort the round trips in C, about five times cheaper than
    walking a deque of tuples. Trimming happens at judging time, not per sample.
    """

    __slots__ = ("times", "owd", "received", "lost", "rtt_times", "rtt", "base")

    def __init__(self) -> None:
        self.times = array("d")
        self.owd = array("d")
        self.received = array("q")  # cumulative counters after each sample, for windowed loss
        self.lost = array("q")
        self.rtt_times = array("d")
        self.rtt = array("d")
        self.base = (0, 0)  # (received, lost) just before the window's first sample

    def trim(self, start: float) -> None:
        """Forget samples received before ``start``."""
        cut = bisect_left(self.times, start)
        if cut:
            self.base = (self.received[cut - 1], self.lost[cut - 1])
            del self.times[:cut], self.owd[:cut], self.received[:cut], self.lost[:cut]
        cut = bisect_left(self.rtt_times, start)
        if cut:
            del self.rtt_times[:cut], self.rtt[:cut]

    def loss_ratio(self, received: int, lost: int) -> float:
        d_lost = lost - self.base[1]
        d_expected = (received - self.base[0]) + d_lost
        return max(0.0, d_lost / d_expected) if d_expected > 0 else 0.0
