"""One exactness rule for every published percentile (telemetry/quantiles.py ``EXACT_MAX``):
the replay's KPIs and the report's tables say ``exact`` true over at most that many values,
and then equal numpy bit for bit; over one more they say false and stay within the sketch's
stated relative error (``RELATIVE_ERROR``). Checked at the limit itself, not at a lowered one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from l4mon.faces.report import build_report
from l4mon.faces.report.export import write_csv
from scenarios.scenario import run_log
from telemetry.drivelog import Conditions, DriveLogWriter, Manifest
from telemetry.quantiles import EXACT_MAX, RELATIVE_ERROR, Quantiles
from telemetry.topics import Route
from telemetry.wire import LinkSample, VehicleState

START = 1_767_225_600.0
#: Samples a second per link: the limit's 65,536 round trips in ~11 virtual minutes, so the
#: replay's ticks (4 a second) stay few.
RATE_HZ = 100
QS = (50, 95, 99)
#: link -> how many answered round trips it carries: the limit, and one past it.
LINKS = {"at_limit": EXACT_MAX, "past_limit": EXACT_MAX + 1}


def _rtts(n: int, seed: int) -> np.ndarray:
    """Round trips with a long tail and no ties: the interpolation between order statistics
    is exercised at every percentile (a constant would pass any estimator)."""
    rng = np.random.default_rng(seed)
    return np.round(rng.lognormal(np.log(30.0), 0.6, n), 6) + rng.uniform(0, 1e-3, n)


def _log(path: Path) -> dict[str, np.ndarray]:
    """One vehicle, two links, each sample an answered probe; no sender clock (so one-way
    delay is not measured and ``exact`` is the RTT's alone)."""
    writer = DriveLogWriter(path, manifest=Manifest(
        site="test", conditions=Conditions(weather="clear", light="daylight"),
        source={"kind": "generator"}))
    values = {name: _rtts(n, seed) for seed, (name, n) in enumerate(LINKS.items())}
    longest = max(LINKS.values())
    for k in range(longest):
        t = START + k / RATE_HZ
        if k % RATE_HZ == 0:
            writer.add(t, Route("state", "test", "car"), VehicleState(
                ts=t, seq=k // RATE_HZ, lat=35.0, lon=136.0, speed_mps=0.0, heading_deg=0.0,
                mode="autonomous"))
        for name, rtts in values.items():
            if k < rtts.size:
                writer.add(t, Route("link", "test", "car", name), LinkSample(
                    ts=t, seq=k, rat="nr", cell_id="A", rtt_ms=float(rtts[k]),
                    sender_clock=False))
    writer.close()
    return values


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("exactness") / "log"
    return path, _log(path)


def _within(got: float, want: float) -> bool:
    return abs(got - want) <= RELATIVE_ERROR * abs(want)


def test_the_estimator_switches_at_the_limit_and_says_so() -> None:
    """The rule itself: EXACT_MAX values are numpy's figures to the last bit, one more is the
    sketch's, within RELATIVE_ERROR and not equal (so the flag is not decorative)."""
    values = _rtts(EXACT_MAX + 1, seed=7)
    at, past = Quantiles(), Quantiles()
    at.add_many(values[:EXACT_MAX])
    past.add_many(values)
    assert at.exact and not past.exact
    assert at.percentiles(*QS) == [float(np.percentile(values[:EXACT_MAX], q)) for q in QS]
    assert at.quantiles([0.5, 0.95, 0.999]) == [
        float(np.quantile(values[:EXACT_MAX], q)) for q in (0.5, 0.95, 0.999)]
    want = [float(np.percentile(values, q)) for q in QS]
    got = past.percentiles(*QS)
    assert all(_within(g, w) for g, w in zip(got, want, strict=True)), (got, want)  # type: ignore[arg-type]
    assert got != want


def test_report_latency_says_which_figures_are_exact(
        log: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, values = log
    report = build_report([path])
    rows = {r["link"]: r for r in report.tables["latency"].rows}
    assert set(rows) == set(LINKS)
    at, past = rows["at_limit"], rows["past_limit"]
    assert (at["probes"], past["probes"]) == (EXACT_MAX, EXACT_MAX + 1)
    assert at["exact"] is True and past["exact"] is False
    for q in QS:
        assert at[f"rtt_p{q}_ms"] == float(np.percentile(values["at_limit"], q))
        want = float(np.percentile(values["past_limit"], q))
        assert _within(past[f"rtt_p{q}_ms"], want), (q, past[f"rtt_p{q}_ms"], want)
    # the exports carry the flag as true/false, the page as yes/no
    (csv_path,) = [p for p in write_csv(report, tmp_path) if p.stem == "latency"]
    header, *lines = csv_path.read_text().splitlines()
    at_column = header.split(",").index("exact")
    assert sorted(line.split(",")[at_column] for line in lines) == ["false", "true"]
    assert report.tables["latency"].column("exact").show(True) == "yes"


def test_replay_kpis_follow_the_same_rule(log: tuple[Path, dict[str, np.ndarray]]) -> None:
    """The replay's KPIs (rounded to 0.001 ms, as results.json writes them) on the same
    samples: exact, and numpy's figure rounded, at the limit; flagged and within the error
    (and the rounding) past it."""
    path, values = log
    links = run_log(path)["kpis"]["car"]["links"]
    at, past = links["at_limit"], links["past_limit"]
    assert (at["probes"], past["probes"]) == (EXACT_MAX, EXACT_MAX + 1)
    assert at["exact"] is True and past["exact"] is False
    for q in QS:
        assert at[f"rtt_p{q}_ms"] == round(float(np.percentile(values["at_limit"], q)), 3)
        want = float(np.percentile(values["past_limit"], q))
        assert abs(past[f"rtt_p{q}_ms"] - want) <= RELATIVE_ERROR * want + 5e-4, (q, want)
