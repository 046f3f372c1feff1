"""Small mergeable distributions for a map of thousands of cells.

``telemetry.quantiles.Quantiles`` is exact up to 65,536 values and then a ±0.1 % sketch of
~160 KiB: right for a replay's few links, far too much for a map that holds four
distributions for each of thousands of (cell, link, condition) rows. A map cell needs a
quantile to about a percent, bounded memory and addition (merging drives), so here:

* ``LOG`` (RTT, uplink): DDSketch's log bins (Masson et al., VLDB 2019, the construction of
  ``telemetry.quantiles.RelativeSketch``) at ±1 %: a value in (g^(i-1), g^i] is bin i, read
  back as 2 g^i / (g + 1). 1 µs .. 600 s of RTT are at most ~1,000 bins.
* ``DB`` (RSRP, SINR): 0.5 dB bins, read back as the bin's centre: modems report RSRP in
  1 dB and SINR in 0.5 dB steps, so those values come back exactly. -200 .. +100 dB: 600 bins.

Bins are kept sparse (only those seen), so a cell costs what its values spread over, and two
sketches add bin by bin. Percentiles interpolate between ranks as ``numpy.percentile`` does
(``telemetry.window.percentile``) over the values read back from their bins.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate
from typing import Final, Literal

Scale = Literal["log", "db"]
LOG: Final = "log"
DB: Final = "db"

#: ±1 % relative error for LOG sketches.
ALPHA: Final = 0.01
_GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA: Final = math.log(_GAMMA)
#: LOG values below this read as 0 (bin ``ZERO``); above ``LOG_HIGH`` they share the top bin.
LOG_LOW: Final = 1e-3
LOG_HIGH: Final = 600_000.0
ZERO: Final = -(2**31)
_LOG_FIRST: Final = math.ceil(math.log(LOG_LOW) / _LOG_GAMMA)
_LOG_LAST: Final = math.ceil(math.log(LOG_HIGH) / _LOG_GAMMA)
#: DB bin width and the range kept (values beyond are clamped into the end bins).
DB_STEP: Final = 0.5
_DB_FIRST: Final = round(-200.0 / DB_STEP)
_DB_LAST: Final = round(100.0 / DB_STEP)
#: The most bins a sketch of each scale can hold: the memory bound per distribution.
MAX_BINS: Final = {LOG: _LOG_LAST - _LOG_FIRST + 2, DB: _DB_LAST - _DB_FIRST + 1}


def bin_of(scale: str, x: float) -> int:
    if scale == DB:
        return min(max(round(x / DB_STEP), _DB_FIRST), _DB_LAST)
    if x < LOG_LOW:
        return ZERO
    return min(max(math.ceil(math.log(x) / _LOG_GAMMA), _LOG_FIRST), _LOG_LAST)


def value_of(scale: str, b: int) -> float:
    if scale == DB:
        return b * DB_STEP
    if b == ZERO:
        return 0.0
    return 2 * _GAMMA**b / (_GAMMA + 1)


class Sketch:
    """Counts of values per bin of one scale; ``n`` is exact, percentiles within the scale's
    resolution (±1 % for LOG, ±0.25 dB for DB)."""

    __slots__ = ("counts", "n", "scale")

    def __init__(self, scale: str) -> None:
        if scale not in MAX_BINS:
            raise ValueError(f"unknown sketch scale {scale!r}")
        self.scale = scale
        self.counts: dict[int, int] = {}
        self.n = 0

    def add(self, x: float) -> None:
        if math.isnan(x):  # no value
            return
        b = bin_of(self.scale, x)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1

    def merge(self, other: Sketch) -> None:
        if other.scale != self.scale:
            raise ValueError("sketches of different scales cannot be merged")
        counts = self.counts
        for b, c in other.counts.items():
            counts[b] = counts.get(b, 0) + c
        self.n += other.n

    def percentiles(self, *qs: float) -> list[float | None]:
        """The ``q``-th percentiles (0-100); None for each when the sketch is empty."""
        if not self.n:
            return [None for _ in qs]
        bins = sorted(self.counts)
        upto = list(accumulate(self.counts[b] for b in bins))
        n = self.n

        def kth(k: int) -> float:
            return value_of(self.scale, bins[bisect_right(upto, k)])

        out: list[float | None] = []
        for q in qs:
            rank = (n - 1) * q / 100.0
            low = int(rank)
            if low >= n - 1:
                out.append(kth(n - 1))
                continue
            v0, v1 = kth(low), kth(low + 1)
            out.append(v0 + (v1 - v0) * (rank - low))
        return out

    def to_lists(self) -> tuple[list[int], list[int]]:
        """(bins, counts), bins ascending: how a map stores it."""
        bins = sorted(self.counts)
        return bins, [self.counts[b] for b in bins]

    @classmethod
    def from_lists(cls, scale: str, bins: list[int] | None,
                   counts: list[int] | None) -> Sketch:
        sketch = cls(scale)
        for b, c in zip(bins or (), counts or (), strict=True):
            if c > 0:
                sketch.counts[int(b)] = sketch.counts.get(int(b), 0) + int(c)
                sketch.n += int(c)
        return sketch


__all__ = ["DB", "LOG", "MAX_BINS", "Sketch"]
