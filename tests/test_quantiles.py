"""telemetry.quantiles: exact percentiles up to a bound, a sketch within 0.1 % beyond, no cap."""

from __future__ import annotations

import random
from array import array

import numpy as np
import pytest

from telemetry.quantiles import Quantiles, RelativeSketch, RunningMean

ALPHA = RelativeSketch.ALPHA
QS = (0, 0.1, 1, 25, 50, 90, 95, 99, 99.9, 100)


def _values(seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([np.round(20 * np.exp(0.6 * rng.standard_normal(40_000)), 2),
                           rng.uniform(300, 5_000, 500), [0.0, 0.0004, 9_198.0, 599_999.0]])


def test_running_mean_is_the_mean_of_the_kept_list() -> None:
    """The running mean is bit for bit ``sum(values) / len(values)`` on this interpreter, so
    ``ul_kbps_mean`` did not move when the lists went."""
    rng = random.Random(3)
    values = [rng.lognormvariate(9, 1.5) for _ in range(50_000)] + [1e16, 1.0, -1e16, 0.1]
    mean = RunningMean()
    for v in values:
        mean.add(v)
    assert mean.value() == sum(values) / len(values)
    assert RunningMean().value() is None


def test_exact_while_under_the_bound_one_by_one_or_in_bulk() -> None:
    values = _values()
    one, bulk = Quantiles(exact_max=values.size), Quantiles(exact_max=values.size)
    for v in values.tolist():
        one.add(v)
    for part in np.array_split(values, 7):
        bulk.add_many(part)
    for q in one, bulk:
        assert q.exact and q.n == values.size
        assert q.percentiles(*QS) == pytest.approx([np.percentile(values, x) for x in QS],
                                                   rel=1e-12, abs=1e-12)
        assert (q.minimum, q.maximum) == (0.0, 599_999.0)


def test_past_the_bound_within_its_stated_error_and_never_capped() -> None:
    """Every percentile within ALPHA of numpy's (below 1 µs: read as 0); the largest values
    are not clamped to a range's end: p100 is the exact maximum."""
    values = _values()
    q = Quantiles(exact_max=1_000)
    for v in values.tolist():
        q.add(v)
    assert not q.exact and q.n == values.size
    for x, got in zip(QS, q.percentiles(*QS), strict=True):
        want = float(np.percentile(values, x))
        assert got is not None and abs(got - want) <= ALPHA * want + 1e-3, (x, got, want)
    assert q.percentile(100) == 599_999.0


def test_merge_is_the_distribution_of_both_inputs() -> None:
    values = _values(5)
    halves = Quantiles(exact_max=10_000), Quantiles(exact_max=10_000)
    whole = Quantiles(exact_max=10_000)
    for k, part in enumerate(np.array_split(values, 9)):
        halves[k % 2].add_many(part)
        whole.add_many(part)
    halves[0].merge(halves[1])
    assert halves[0].n == whole.n and not halves[0].exact
    assert halves[0].percentiles(*QS) == whole.percentiles(*QS)
    small = Quantiles(exact_max=100)
    small.add_many(np.array([1.0, 2.0, 3.0]))
    other = Quantiles(exact_max=100)
    other.add_many(np.array([4.0]))
    small.merge(other)
    assert small.exact and small.percentiles(0, 50, 100) == [1.0, 2.5, 4.0]


def test_negative_values_one_way_delay_with_a_clock_ahead() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(5.0, 20.0, 30_000)
    q = Quantiles(exact_max=500, high=1e9)
    q.add_many(values)
    for x in (0.5, 5, 50, 95, 99.5):
        want = float(np.percentile(values, x))
        got = q.percentile(x)
        assert got is not None and abs(got - want) <= ALPHA * abs(want) + 1e-3, (x, got, want)
    assert q.mean == pytest.approx(float(values.mean()))


def test_empty_is_not_measured() -> None:
    q = Quantiles()
    assert q.percentiles(50, 99) == [None, None] and q.mean is None and q.n == 0
    with pytest.raises(ValueError):
        Quantiles(exact_max=0)


def _state(q: Quantiles) -> tuple[object, ...]:
    """Everything a ``Quantiles`` holds, signs of zeros and NaN included (repr tells them)."""
    sketch = [None if s is None else (s.n, s.zeros, s.counts.tobytes()) for s in (q._pos, q._neg)]
    return (q.n, repr(q.total), repr(q.minimum), repr(q.maximum),
            None if q.values is None else q.values.tobytes(), sketch)


@pytest.mark.parametrize("cap", [50, 200, 65_536])
def test_add_in_order_is_add_one_by_one_bit_for_bit(cap: int) -> None:
    """A replay's books add their samples in blocks (``add_in_order``): the state after is
    the per-value path's to the last bit, total (a running sum, not NumPy's pairwise sum),
    extremes, kept values and, past the cap, the sketch's bins."""
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(150)] + [0.0, -0.0, 1e16, 1.0, -1e16,
                                                                   0.1, -3.5]
    rng.shuffle(values)
    one, bulk = Quantiles(cap), Quantiles(cap)
    for v in values:
        one.add(v)
    for start in range(0, len(values), 37):  # blocks of uneven size, across the cap
        bulk.add_in_order(array("d", values[start:start + 37]))
    bulk.add_in_order(array("d"))
    assert _state(bulk) == _state(one)
    assert bulk.exact == (len(values) <= cap)


def test_extremes_keep_the_first_of_equal_zeros_and_skip_nan() -> None:
    """``add`` keeps the first of 0.0 and -0.0 as the minimum and never takes NaN: so does the
    bulk path, whose extremes NumPy's fmin would choose differently."""
    one, bulk = Quantiles(), Quantiles()
    values = [float("nan"), 0.0, -0.0, 2.0, float("nan")]
    for v in values:
        one.add(v)
    bulk.add_in_order(array("d", values))
    assert repr(bulk.minimum) == repr(one.minimum) == "0.0"
    assert repr(bulk.maximum) == repr(one.maximum) == "2.0"


def test_running_mean_add_in_order_is_add_one_by_one() -> None:
    """The same running mean, bit for bit, from blocks as from single values."""
    rng = random.Random(5)
    values = [rng.lognormvariate(9, 1.5) for _ in range(5_000)] + [1e16, 1.0, -1e16, 0.1]
    one, bulk = RunningMean(), RunningMean()
    for v in values:
        one.add(v)
    for start in range(0, len(values), 999):
        bulk.add_in_order(array("d", values[start:start + 999]))
    assert (bulk.n, repr(bulk.total), repr(bulk.comp), repr(bulk.value())) == \
        (one.n, repr(one.total), repr(one.comp), repr(one.value()))
