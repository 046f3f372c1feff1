"""Fixed-bin histograms: percentiles of a day of samples in constant memory.

A report over ~260 M samples cannot keep them, so each distribution is counted into fixed bins
as the batches stream past. Bins merge by addition (inputs of one condition add up), and a
percentile read from them is within one bin width of the exact order statistic: inside the bin
that holds the rank, values are taken as evenly spread, and the result is clamped to the exact
minimum and maximum, which are kept alongside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Histogram:
    """Counts of values in ``[lo, lo + width * bins)``; values outside go to the end bins."""

    lo: float
    width: float
    bins: int
    counts: np.ndarray = field(init=False)
    n: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.bins, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        idx = np.floor((values - self.lo) / self.width)
        np.clip(idx, 0, self.bins - 1, out=idx)
        self.counts += np.bincount(idx.astype(np.int64), minlength=self.bins)
        self.n += int(values.size)
        self.total += float(values.sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))

    def merge(self, other: Histogram) -> None:
        if (other.lo, other.width, other.bins) != (self.lo, self.width, self.bins):
            raise ValueError("histograms with different bins cannot be merged")
        self.counts += other.counts
        self.n += other.n
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def copy(self) -> Histogram:
        out = Histogram(self.lo, self.width, self.bins)
        out.merge(self)
        return out

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) as numpy's default (linear) would give, within a bin."""
        if not self.n:
            return None
        rank = q * (self.n - 1)  # numpy's "linear" method: the value at rank (n - 1) q
        cum = np.cumsum(self.counts)
        lower = self._at(math.floor(rank), cum)
        upper = self._at(min(math.ceil(rank), self.n - 1), cum)
        value = lower + (upper - lower) * (rank - math.floor(rank))
        return min(max(value, self.minimum), self.maximum)

    def quantiles(self, qs: list[float]) -> list[float | None]:
        return [self.quantile(q) for q in qs]

    def _at(self, k: int, cum: np.ndarray) -> float:
        """Estimate of the k-th smallest value (0-based): evenly spread within its bin."""
        b = int(np.searchsorted(cum, k, side="right"))
        before = int(cum[b - 1]) if b else 0
        inside = int(self.counts[b])
        return self.lo + self.width * (b + (k - before + 0.5) / inside)

    def share_below(self, limit: float) -> float | None:
        """Share of values below ``limit``; exact when ``limit`` is a bin edge."""
        if not self.n:
            return None
        edge = (limit - self.lo) / self.width
        b = max(0, min(self.bins, math.floor(edge)))
        inside = float(self.counts[b]) * (edge - b) if b < self.bins else 0.0
        return (float(self.counts[:b].sum()) + inside) / self.n


def rtt_histogram() -> Histogram:
    """0-6 s in 0.1 ms bins: an RTT percentile is within 0.1 ms of the exact one below 6 s."""
    return Histogram(lo=0.0, width=0.1, bins=60_000)


def delay_histogram() -> Histogram:
    """-1 s to 5 s in 0.1 ms bins: one-way delay goes negative with a clock running ahead."""
    return Histogram(lo=-1_000.0, width=0.1, bins=60_000)


def rate_histogram() -> Histogram:
    """0-2 Gbit/s in 10 kbit/s bins: throughput percentiles within 10 kbit/s."""
    return Histogram(lo=0.0, width=10.0, bins=200_000)
