"""Both quantile sketches against the DDSketch relative-accuracy guarantee, computed directly.

DDSketch (Masson, Rim & Lee, VLDB 2019) guarantees that a value in (g^(i-1), g^i], read back
as 2 g^i / (g + 1), is within alpha of itself, relatively; so is every order statistic, and
so every percentile interpolated between two of them. Here the guarantee is checked against
the exact percentiles (numpy's, linear) over distributions of every shape a link has shown,
every half percentile, and arbitrary lists (hypothesis): ``telemetry.quantiles`` at 0.1 %,
the link map's ``LOG`` sketch at 1 %, and its ``DB`` sketch at a quarter of a dB.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.linkmap import sketch as lm
from telemetry.quantiles import Quantiles, RelativeSketch

QS = [q / 2 for q in range(201)]  # 0, 0.5, ..., 100


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(24)
    return {
        "lognormal rtt": 20 * np.exp(0.6 * rng.standard_normal(30_000)),
        "heavy tail": 10 * (1 + rng.pareto(1.1, 30_000)),
        "bimodal": np.r_[rng.normal(15, 2, 20_000).clip(0.01), rng.uniform(2_000, 9_000, 600)],
        "discrete ms": np.round(rng.gamma(2.0, 8.0, 30_000)) + 1,
        "tiny and huge": np.r_[rng.uniform(0.001, 0.01, 5_000), rng.uniform(1e5, 5e5, 5_000)],
        "uplink kbps": rng.uniform(0, 60_000, 30_000),
    }


def _within(got: float | None, want: float, alpha: float, floor: float) -> bool:
    """``got`` within ``alpha`` of ``want`` relatively; below ``floor`` a sketch reads 0."""
    return got is not None and abs(got - want) <= alpha * abs(want) + floor


@pytest.mark.parametrize("name", list(_distributions()))
def test_quantiles_past_the_bound_meet_the_guarantee(name: str) -> None:
    values = _distributions()[name]
    q = Quantiles(exact_max=100)
    q.add_many(values)
    assert not q.exact
    ordered = np.sort(values)
    for x, got in zip(QS, q.percentiles(*QS), strict=True):
        want = float(np.percentile(ordered, x))
        assert _within(got, want, RelativeSketch.ALPHA, RelativeSketch.LOW), (x, got, want)


@pytest.mark.parametrize("name", list(_distributions()))
def test_the_link_maps_log_sketch_meets_the_guarantee(name: str) -> None:
    values = _distributions()[name]
    sk = lm.Sketch(lm.LOG)
    for v in values.tolist():
        sk.add(v)
    ordered = np.sort(values)
    for x, got in zip(QS, sk.percentiles(*QS), strict=True):
        want = float(np.percentile(ordered, x))
        assert _within(got, want, lm.ALPHA, lm.LOG_LOW), (x, got, want)


def test_the_link_maps_db_sketch_is_within_a_quarter_db() -> None:
    rng = np.random.default_rng(7)
    for values in (rng.normal(-95, 12, 20_000), rng.uniform(-20, 35, 20_000),
                   np.round(rng.normal(-100, 8, 20_000))):
        sk = lm.Sketch(lm.DB)
        for v in values.tolist():
            sk.add(v)
        for x, got in zip(QS, sk.percentiles(*QS), strict=True):
            want = float(np.percentile(values, x))
            assert got is not None and abs(got - want) <= lm.DB_STEP / 2 + 1e-12, (x, got, want)


def test_every_value_reads_back_within_alpha_even_on_a_bin_edge() -> None:
    """The bin of a value that is exactly a power of gamma (where log rounding can tip it
    into the next bin) still reads back within alpha: both sketches, the whole range."""
    gamma_q = (1 + RelativeSketch.ALPHA) / (1 - RelativeSketch.ALPHA)
    gamma_m = (1 + lm.ALPHA) / (1 - lm.ALPHA)
    for gamma, alpha, read in (
            (gamma_m, lm.ALPHA, lambda x: lm.value_of(lm.LOG, lm.bin_of(lm.LOG, x))),
            (gamma_q, RelativeSketch.ALPHA, _quantiles_read_back)):
        first, last = math.ceil(math.log(1e-3) / math.log(gamma)), \
            math.floor(math.log(5e5) / math.log(gamma))
        for i in range(first, last, max(1, (last - first) // 400)):
            for x in (gamma**i, math.nextafter(gamma**i, 0), math.nextafter(gamma**i, math.inf),
                      gamma ** (i + 0.5)):
                assert abs(read(x) - x) <= alpha * x * (1 + 1e-12), (i, x, read(x))


def _quantiles_read_back(x: float) -> float:
    sk = RelativeSketch()
    sk.add(x)
    return sk.value(0, sk.cumulative())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=5e5, allow_nan=False), min_size=1,
                max_size=400),
       st.floats(min_value=0, max_value=100))
def test_any_list_any_percentile(values: list[float], x: float) -> None:
    """Arbitrary lists: the guarantee holds at any percentile, and merging two halves is the
    sketch of the whole (DDSketch's mergeability)."""
    want = float(np.percentile(values, x))
    q = Quantiles(exact_max=1)
    q.add_many(np.array(values))
    assert _within(q.percentile(x), want, RelativeSketch.ALPHA, RelativeSketch.LOW)
    whole, a, b = lm.Sketch(lm.LOG), lm.Sketch(lm.LOG), lm.Sketch(lm.LOG)
    for k, v in enumerate(values):
        whole.add(v)
        (a if k % 2 else b).add(v)
    a.merge(b)
    assert a.to_lists() == whole.to_lists()
    assert _within(whole.percentiles(x)[0], want, lm.ALPHA, lm.LOG_LOW)
