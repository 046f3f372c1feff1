"""Percentiles of any number of values in bounded memory, exact until that bound matters.

One estimator for every whole-run distribution l4mon reports (replay KPIs, report tables):
``Quantiles`` keeps every value up to ``exact_max`` of them, so its percentiles are the exact
order statistics with numpy's default (linear) interpolation; past that it counts them into a
``RelativeSketch`` whose every percentile is within ``RelativeSketch.ALPHA`` (0.1 %) of the
exact one, relatively, over the whole range a wire value can take. There is no cap: a
9,198 ms round trip is reported as 9,198 ms, not as the end of a histogram's range.

Minimum, maximum, count and mean are always exact. Values may be negative (a one-way delay with
a clock running ahead), so the sketch has a mirror half for them.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right
from itertools import accumulate, chain
from typing import Final

import numpy as np

from telemetry.window import percentile  # re-exported

#: The one exactness rule of every percentile l4mon publishes (replay KPIs, report tables, the
#: verdict): a figure over at most this many values is the exact order statistic (numpy's, bit
#: for bit); over more it comes from the sketch, within ``RELATIVE_ERROR``. One constant, so a
#: link's figure is exact in the report exactly when it is in the replay's KPIs, and each says
#: which (``exact``). 8 bytes a value: 512 KiB per distribution while exact, ~1.8 h of a
#: 10 Hz link, a drive-test file several times over.
EXACT_MAX: Final = 65_536
#: ``sum`` adds floats with Neumaier's compensation from Python 3.12 on, plainly before.
_COMPENSATED: Final = sys.version_info >= (3, 12)


class RunningMean:
    """``sum(values) / len(values)`` without keeping the values.

    The float is the very one the interpreter's ``sum`` gives (plain addition before 3.12,
    Neumaier's compensated sum from 3.12, both replicated here), so figures do not move from
    when every value was kept in a list.
    """

    __slots__ = ("comp", "n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.comp = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        total = self.total
        t = total + x
        if _COMPENSATED:
            if abs(total) >= abs(x):
                self.comp += (total - t) + x
            else:
                self.comp += (x - t) + total
        self.total = t

    def add_in_order(self, values: array[float]) -> None:
        """``add`` of each value in turn, the same floats to the last bit: the plain sum is
        NumPy's running sum (``add.accumulate`` adds one value at a time, in order, as the
        interpreter does); the compensated one, which has no NumPy form, is added one by one."""
        if _COMPENSATED:
            for x in values:
                self.add(x)
            return
        if values:
            self.n += len(values)
            self.total = _running_sum(self.total, values)

    def value(self) -> float | None:
        if not self.n:
            return None
        total, comp = self.total, self.comp
        if comp and math.isfinite(comp):  # as sum(): never turn an overflow into NaN
            total += comp
        return total / self.n


def _running_sum(start: float, values: array[float]) -> float:
    """``start`` plus each of ``values`` in order, one addition at a time (as a Python loop of
    ``+=`` does): ``add.accumulate`` never reorders, unlike ``sum``'s pairwise summation."""
    block = np.frombuffer(values, dtype=np.float64)
    out = np.empty(len(block) + 1)
    out[0] = start
    out[1:] = block
    return float(np.add.accumulate(out)[-1])


class RelativeSketch:
    """Counts of values in log-spaced bins, DDSketch-style (Masson et al., VLDB 2019): a value
    in (g^(i-1), g^i] is counted in bin i and read back as 2 g^i / (g + 1), which is within
    ``ALPHA`` of it, relatively. So is every percentile read from it, since a percentile is an
    order statistic or a mix of two neighbouring ones. Fixed range and so fixed memory (~10,100
    bins of 8 bytes for RTTs); two sketches add bin by bin (``merge``)."""

    ALPHA: Final = 0.001
    #: Values below this count as 0: an absolute error under any figure's own rounding.
    LOW: Final = 1e-3
    _GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
    _LOG_GAMMA: Final = math.log(_GAMMA)
    _FIRST: Final = math.ceil(math.log(LOW) / _LOG_GAMMA)

    __slots__ = ("bins", "counts", "high", "n", "zeros")

    def __init__(self, high: float = 600_000.0) -> None:
        #: The largest value told apart (by default 600 s, ten times any RTT the wire
        #: accepts, telemetry/ranges.py); larger ones share the top bin, which only the
        #: maximum (kept exactly beside) can then tell.
        self.high = high
        self.bins = math.ceil(math.log(high) / self._LOG_GAMMA) - self._FIRST + 1
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self.zeros = 0
        self.n = 0

    def add(self, x: float) -> None:
        self.n += 1
        if x < self.LOW:
            self.zeros += 1
            return
        i = math.ceil(math.log(x) / self._LOG_GAMMA) - self._FIRST
        self.counts[min(max(i, 0), self.bins - 1)] += 1

    def add_many(self, values: np.ndarray) -> None:
        """``add`` for each of ``values`` (non-negative), vectorised."""
        if not values.size:
            return
        self.n += int(values.size)
        small = values < self.LOW
        self.zeros += int(np.count_nonzero(small))
        big = values[~small]
        if big.size:
            idx = np.ceil(np.log(big) / self._LOG_GAMMA).astype(np.int64) - self._FIRST
            np.clip(idx, 0, self.bins - 1, out=idx)
            self.counts += np.bincount(idx, minlength=self.bins)

    def merge(self, other: RelativeSketch) -> None:
        """Add ``other``'s counts: the sketch of both inputs together, with the same error."""
        if other.bins != self.bins:
            raise ValueError("sketches of different ranges cannot be merged")
        self.counts += other.counts
        self.zeros += other.zeros
        self.n += other.n

    def value(self, k: int, cumulative: list[int]) -> float:
        """The k-th smallest value (from 0), read back from its bin."""
        j = bisect_right(cumulative, k)  # 0: below LOW; j: bin j - 1
        return 0.0 if j == 0 else 2 * self._GAMMA ** (j - 1 + self._FIRST) / (self._GAMMA + 1)

    def cumulative(self) -> list[int]:
        return list(accumulate(self.counts.tolist(), initial=self.zeros))

    def percentile(self, q: float) -> float | None:
        """``telemetry.window.percentile`` over the values, each read back from its bin."""
        n = self.n
        if n == 0:
            return None
        cumulative = self.cumulative()
        rank = (n - 1) * q / 100.0
        low = int(rank)
        if low >= n - 1:
            return self.value(n - 1, cumulative)
        v0, v1 = self.value(low, cumulative), self.value(low + 1, cumulative)
        return v0 + (v1 - v0) * (rank - low)


class Quantiles:
    """Every value of one distribution: exact up to ``exact_max`` values, a sketch beyond.

    ``exact`` says which; the percentiles' error is 0 while exact and at most
    ``RelativeSketch.ALPHA`` relatively after (stated in every KPI and report that shows them).
    ``add`` is for one value at a time (a replay's hot path: one append), ``add_many`` for a
    numpy batch (a report's columnar scan).
    """

    __slots__ = ("_neg", "_pos", "exact_max", "high", "maximum", "minimum", "n", "total",
                 "values")

    def __init__(self, exact_max: int = EXACT_MAX, *, high: float = 600_000.0) -> None:
        if exact_max < 1:
            raise ValueError("exact_max must be >= 1")
        self.exact_max = exact_max
        self.high = high
        self.values: array[float] | None = array("d")
        self._pos: RelativeSketch | None = None
        self._neg: RelativeSketch | None = None  # of -x, for the negative values
        self.n = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    @property
    def exact(self) -> bool:
        return self.values is not None

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def __len__(self) -> int:
        return self.n

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        # Comparisons, not min()/max(): this runs for every sample of a replay.
        if x < self.minimum:  # noqa: PLR1730
            self.minimum = x
        if x > self.maximum:  # noqa: PLR1730
            self.maximum = x
        values = self.values
        if values is not None:
            values.append(x)
            if len(values) > self.exact_max:
                self._to_sketch()
        elif x >= 0:
            self._pos.add(x)  # type: ignore[union-attr]
        else:
            self._neg.add(-x)  # type: ignore[union-attr]

    def add_in_order(self, values: array[float]) -> None:
        """``add`` of each value in turn, bit for bit (``total`` too: a running sum in order,
        where ``add_many``'s NumPy sum adds pairwise), in bulk while the values stay exact; a
        batch that crosses ``exact_max`` goes one by one, as the sketch's per-value binning
        (``math.log``) may differ from its bulk binning (``np.log``) by a bin."""
        values_kept = self.values
        if values_kept is None or len(values_kept) + len(values) > self.exact_max:
            for x in values:
                self.add(x)
            return
        if not values:
            return
        self.n += len(values)
        self.total = _running_sum(self.total, values)
        # min/max from the current extreme on, with add's own ``<`` and ``>``: the same
        # choice among equal values (0.0 and -0.0) and NaN never taken
        self.minimum = min(chain((self.minimum,), values))
        self.maximum = max(chain((self.maximum,), values))
        values_kept.extend(values)

    def add_many(self, values: np.ndarray) -> None:
        """Every value of ``values`` (no NaN), in bulk."""
        if not values.size:
            return
        values = np.asarray(values, dtype=np.float64)
        self.n += int(values.size)
        self.total += float(values.sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        if self.values is not None:
            self.values.frombytes(values.tobytes())
            if len(self.values) > self.exact_max:
                self._to_sketch()
            return
        self._sketch_many(values)

    def merge(self, other: Quantiles) -> None:
        """Both distributions together (exact while both are and the sum fits)."""
        if not other.n:
            return
        self.n += other.n
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        if self.values is not None and other.values is not None:
            self.values.extend(other.values)
            if len(self.values) > self.exact_max:
                self._to_sketch()
            return
        if self.values is not None:
            self._to_sketch()
        if other.values is not None:
            self._sketch_many(np.frombuffer(other.values, dtype=np.float64))
        else:
            assert other._pos is not None and other._neg is not None
            self._pos.merge(other._pos)  # type: ignore[union-attr]
            self._neg.merge(other._neg)  # type: ignore[union-attr]

    def _to_sketch(self) -> None:
        kept, self.values = self.values, None
        self._pos = RelativeSketch(self.high)
        self._neg = RelativeSketch(self.high)
        if kept:
            self._sketch_many(np.frombuffer(kept, dtype=np.float64))

    def _sketch_many(self, values: np.ndarray) -> None:
        neg = values < 0
        self._pos.add_many(values[~neg])  # type: ignore[union-attr]
        self._neg.add_many(-values[neg])  # type: ignore[union-attr]

    def percentiles(self, *qs: float) -> list[float | None]:
        """The ``q``-th percentiles (0-100): numpy's own ``percentile`` (linear interpolation)
        while exact, so equal to it bit for bit; within ``RELATIVE_ERROR`` of it after."""
        return self._at([q / 100.0 for q in qs])

    def percentile(self, q: float) -> float | None:
        return self.percentiles(q)[0]

    def quantiles(self, qs: list[float]) -> list[float | None]:
        """``percentiles`` with quantiles in 0..1 (as the report's tables ask): numpy's
        ``quantile`` at exactly these fractions while exact."""
        return self._at(list(qs))

    def quantile(self, q: float) -> float | None:
        return self.quantiles([q])[0]

    def _at(self, fractions: list[float]) -> list[float | None]:
        if not self.n:
            return [None for _ in fractions]
        if self.values is not None:
            # numpy itself, not a re-derivation: its rank arithmetic and its interpolation
            # (from the upper neighbour past the midpoint) round differently from a textbook
            # formula, and "exact" promises numpy's figure to the last bit.
            exact = np.quantile(np.frombuffer(self.values, dtype=np.float64), fractions)
            return [float(x) for x in exact]
        # The bins' running sums once for every fraction: a chart's 111 quantiles re-summed
        # ~20k bins each, which cost the report ~15 % of its wall time.
        assert self._pos is not None and self._neg is not None
        sums = (self._pos.cumulative(), self._neg.cumulative())
        return [self._sketched(100.0 * f, sums) for f in fractions]

    def _sketched(self, q: float, sums: tuple[list[int], list[int]]) -> float:
        pos, neg = self._pos, self._neg
        assert pos is not None and neg is not None
        n = pos.n + neg.n
        pos_cum, neg_cum = sums

        def value(k: int) -> float:  # the k-th smallest of all: the negatives first
            if k < neg.n:
                return -neg.value(neg.n - 1 - k, neg_cum)
            return pos.value(k - neg.n, pos_cum)

        rank = (n - 1) * q / 100.0
        low = int(rank)
        if low >= n - 1:
            return self.maximum
        v0, v1 = value(low), value(low + 1)
        return min(max(v0 + (v1 - v0) * (rank - low), self.minimum), self.maximum)


#: The largest relative error of a sketched percentile (``exact`` false): 0.1 %.
RELATIVE_ERROR: Final = RelativeSketch.ALPHA

__all__ = ["EXACT_MAX", "RELATIVE_ERROR", "Quantiles", "RelativeSketch", "RunningMean",
           "percentile"]
