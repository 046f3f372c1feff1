"""Report figures against an independent computation on the same data (numpy / plain Python
over the rows), and the pipeline figures against ``l4mon replay``'s own results."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from l4mon.report import ReportError, ReportOptions, build_report, render, write_csv
from l4mon.report.histogram import Histogram, rtt_histogram
from scenarios.scenario import encode_results, run_log
from tests.report_logs import expected_links, expected_v2i, simulated, synthetic

BIN_MS = 0.1  # the RTT / delay histograms' bin width: the estimator's stated error
BIN_KBPS = 10.0


@pytest.fixture(scope="module")
def synthetic_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("synthetic")
    return (synthetic(base / "day", seed=1, light="daylight"),
            synthetic(base / "snow", seed=2, light="daylight", weather="snow"))


@pytest.fixture(scope="module")
def simulated_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("simulated")
    return simulated(base / "day", "daylight"), simulated(base / "snow", "snow-night", seed=5)


def test_histogram_quantiles_within_one_bin() -> None:
    """Every percentile read from the bins is within one bin of numpy's exact one."""
    rng = np.random.default_rng(0)
    values = np.round(20 * np.exp(0.6 * rng.standard_normal(50_000)), 3)
    h = rtt_histogram()
    for part in np.array_split(values, 7):
        h.add(part)
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        assert abs(h.quantile(q) - np.percentile(values, 100 * q)) <= BIN_MS + 1e-9
    other = Histogram(lo=0.0, width=1.0, bins=10)
    with pytest.raises(ValueError, match="different bins"):
        h.merge(other)


def test_raw_figures_match_numpy(synthetic_logs: tuple[Path, Path], tmp_path: Path) -> None:
    """Latency, loss, jitter, throughput and budget shares in the exported tables equal a
    direct computation over the rows, per condition (duplicates counted once)."""
    day, snow = synthetic_logs
    report = build_report([day, snow], ReportOptions(replay="never", batch_rows=7_919))
    assert report.conditions == ["daylight", "snow-daylight"]
    write_csv(report, tmp_path)
    with (tmp_path / "latency.csv").open() as fh:
        latency = {(r["condition"], r["link"]): r for r in csv.DictReader(fh)}
    throughput = {(r["condition"], r["link"]): r
                  for r in pq.read_table(_parquet(report, tmp_path, "throughput")).to_pylist()}
    budgets = {(r["condition"], r["link"], r["budget"]): r
               for r in report.tables["budgets"].rows}
    for cond, log in (("daylight", day), ("snow-daylight", snow)):
        for link, want in expected_links(log).items():
            got = latency[(cond, link)]
            for key in ("samples", "lost", "probe_timeouts"):
                assert int(got[key]) == want[key], (cond, link, key)
            assert float(got["loss_ratio"]) == pytest.approx(want["loss_ratio"], rel=1e-12)
            assert float(got["jitter_ms"]) == pytest.approx(want["jitter_ms"], rel=1e-9)
            assert float(got["rtt_max_ms"]) == pytest.approx(want["rtt_max_ms"])
            for key in ("rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "delay_p50_ms",
                        "delay_p99_ms"):
                assert abs(float(got[key]) - want[key]) <= BIN_MS + 1e-9, (cond, link, key)
            tp = throughput[(cond, link)]
            assert tp["ul_mean_kbps"] == pytest.approx(want["ul_mean_kbps"], rel=1e-9)
            assert abs(tp["ul_p5_kbps"] - want["ul_p5_kbps"]) <= BIN_KBPS + 1e-9
            assert tp["ul_share_meeting_requirement"] == pytest.approx(
                want["ul_share_meeting_requirement"], rel=1e-12)
            assert budgets[(cond, link, "tr22856-ul-rtt")]["value"] == pytest.approx(
                want["rtt_within_100"], rel=1e-12)
            p95 = budgets[(cond, link, "site-rtt-p95")]
            assert p95["result"] == ("pass" if want["rtt_p95_ms"] <= 150 else "fail")
    page = render(report)
    first = report.tables["latency"].rows[0]
    assert f"{first['rtt_p95_ms']:,.1f}" in page  # the page shows the table's number


def _parquet(report: object, folder: Path, name: str) -> Path:
    from l4mon.report import write_parquet

    write_parquet(report, folder)  # type: ignore[arg-type]
    return folder / f"{name}.parquet"


def test_batches_do_not_change_the_figures(synthetic_logs: tuple[Path, Path]) -> None:
    """Streams carried across batch boundaries: tiny batches give the same tables."""
    day, _ = synthetic_logs
    small = build_report([day], ReportOptions(replay="never", batch_rows=101))
    large = build_report([day], ReportOptions(replay="never", batch_rows=1_000_000))
    for name in ("latency", "throughput", "budgets"):
        a, b = small.tables[name].rows, large.tables[name].rows
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys()
            for k in x:
                if isinstance(x[k], float):
                    assert x[k] == pytest.approx(y[k], rel=1e-9), (name, k)
                else:
                    assert x[k] == y[k], (name, k)


def test_period_narrows_the_samples(synthetic_logs: tuple[Path, Path]) -> None:
    day, _ = synthetic_logs
    whole = build_report([day], ReportOptions(replay="never"))
    start = 1_795_305_600.0
    half = build_report([day], ReportOptions(replay="never", start=start, end=start + 72))
    n_whole = sum(r["samples"] for r in whole.tables["latency"].rows)
    n_half = sum(r["samples"] for r in half.tables["latency"].rows)
    assert 0.45 * n_whole < n_half < 0.55 * n_whole
    with pytest.raises(ReportError, match="end must be after"):
        ReportOptions(start=10.0, end=5.0)


def test_pipeline_figures_equal_replay_results(simulated_logs: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    """Link states, handovers and alerts in the report are the replay's own: the report's
    replay (with its timeline rules) and `l4mon replay`'s results.json agree."""
    day, snow = simulated_logs
    report = build_report([day, snow])
    for cond, log in (("daylight", day), ("snow-night", snow)):
        results = run_log(log)
        time_in: Counter[tuple[str, str]] = Counter()
        for kp in results["kpis"].values():
            for link, lk in kp["links"].items():
                for state, s in lk["time_in_state_s"].items():
                    time_in[(link, "down" if state == "stale" else state)] += s
        for row in [r for r in report.tables["availability"].rows if r["condition"] == cond]:
            total = sum(v for (lk, _), v in time_in.items() if lk == row["link"])
            assert row["ok"] == pytest.approx(time_in[(row["link"], "ok")] / total, abs=1e-9)
            assert row["degraded"] == pytest.approx(
                time_in[(row["link"], "degraded")] / total, abs=1e-9)
            assert row["down"] == pytest.approx(time_in[(row["link"], "down")] / total,
                                                abs=1e-9)
        handovers = [r for r in report.tables["handovers"].rows if r["condition"] == cond]
        assert sum(r["handovers"] for r in handovers) == len(results["handovers"])
        assert Counter(h["kind"] for h in results["handovers"])["success"] == sum(
            r["success"] for r in handovers)
        alerts = [r for r in report.tables["alerts"].rows if r["condition"] == cond]
        assert sum(r["count"] for r in alerts) == len(results["alerts"])
        assert not any(r["rule"].startswith("report_") for r in alerts)
    assert any(k.startswith("timeline_") for k in report.charts)
    assert "handover_map" in report.charts


def test_results_file_is_used_instead_of_replaying(simulated_logs: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    day, _ = simulated_logs
    results = tmp_path / "results.json"
    results.write_bytes(encode_results(run_log(day)))
    report = build_report([day, results])
    states = {r["kind"]: r["states"] for r in report.tables["inputs"].rows}
    assert states["drive log generator"] == "from its results file"
    assert not any(k.startswith("timeline_") for k in report.charts)  # results: totals only
    only = build_report([results])
    assert only.verdict == "not graded"
    assert only.tables["availability"].rows


def test_v2i_delivery_matches_the_protocol_definition(
        simulated_logs: tuple[Path, Path]) -> None:
    day, _ = simulated_logs
    report = build_report([day], ReportOptions(replay="never"))
    want = expected_v2i(day)
    rows = {r["rsu"]: r for r in report.tables["v2i"].rows}
    assert set(rows) == set(want)
    for rsu, (received, expected) in want.items():
        assert rows[rsu]["received"] == received
        assert rows[rsu]["expected"] == pytest.approx(expected, rel=1e-9)


def test_big_logs_are_not_replayed_and_say_so(synthetic_logs: tuple[Path, Path]) -> None:
    day, _ = synthetic_logs
    report = build_report([day], ReportOptions(replay_max_rows=1_000))
    assert "too big" in report.tables["inputs"].rows[0]["states"]
    assert any("--replay-max-rows" in n for n in report.notes)
    assert not report.tables["availability"].rows


def test_differences_flag_the_worse_condition(synthetic_logs: tuple[Path, Path]) -> None:
    day, _ = synthetic_logs
    report = build_report([day], ReportOptions(replay="never"))
    latency = report.tables["latency"]
    worse = dict(latency.rows[0], condition="snow-daylight",
                 rtt_p95_ms=latency.rows[0]["rtt_p95_ms"] * 2)
    latency.rows.append(worse)
    from l4mon.report.differences import compare

    table, marks = compare([latency], "daylight")
    assert marks[("latency", len(latency.rows) - 1, "rtt_p95_ms")] == "worse"
    assert any(r["flag"] == "worse" and r["figure"].startswith("RTT p95") for r in table.rows)


@pytest.mark.parametrize("bad", ["missing-dir", "not-results.json"])
def test_bad_inputs_are_named(tmp_path: Path, bad: str) -> None:
    if bad.endswith(".json"):
        (tmp_path / bad).write_text('{"format": "something-else"}')
    with pytest.raises(ReportError, match=bad):
        build_report([tmp_path / bad])
