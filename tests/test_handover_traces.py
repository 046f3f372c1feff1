"""Handover detection proven on the real drive-test traces in ../shared/data.

Every trace file is imported with the project's importer and replayed through the live
pipeline (``scenarios.scenario.run_log``: ``Hub.ingest``/``Hub.tick`` under a virtual clock).
Its handover records are checked against a minimal parse of the raw file that shares nothing
with the importer or the detector: the serving-cell changes, the outages and the stalls the
raw columns show. That parse and the comparison live in bench/handover_traces.py, so that the
table in docs/handover.md and these assertions are one and the same comparison.

The traces are read from ../shared/data (or ``$L4MON_SHARED_DATA``) and never copied: the
G-NetTrack files are GPL-3.0; imported logs go to pytest's temporary directory.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.handover_traces import (
    Comparison,
    Fmt,
    RawRow,
    RawTrace,
    ReportCheck,
    compare,
    read_raw,
    replay_trace,
    report_trace,
)
from tests import drive_truth
from tests.parts import shared_data, shared_data_dir

SHARED = shared_data_dir()
FORMATS: tuple[tuple[Fmt, str, str], ...] = (
    ("cicv5g", "cicv5g", "*.txt"), ("gnettrack", "gnettrack-5g", "*.csv"))


def _traces() -> list[Any]:
    """One parameter per trace file; one parameter per folder that is absent, which fails
    under CI and skips elsewhere (tests/parts.py) when it runs."""
    params: list[Any] = []
    for fmt, folder, pattern in FORMATS:
        where = SHARED / folder
        files = sorted(where.glob(pattern)) if where.is_dir() else []
        if not files:
            params.append(pytest.param(fmt, where / pattern, id=f"{folder}-absent"))
        params += [pytest.param(fmt, path, id=path.name) for path in files]
    return params


TRACES = _traces()
Replayed = tuple[Any, Comparison]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Fmt, Path], Replayed]:
    """Import and replay each trace once for all the checks on it (the whole set takes ~3 s)."""
    cache: dict[Path, Replayed] = {}

    def get(fmt: Fmt, path: Path) -> Replayed:
        if not path.is_file():
            shared_data(path.relative_to(SHARED).as_posix())
        if path not in cache:
            report, records = replay_trace(fmt, path, tmp_path_factory.mktemp(path.stem))
            cache[path] = report, compare(read_raw(fmt, path), records)
        return cache[path]

    return get


def _change(raw: RawTrace, row: int) -> str:
    a, b = raw.kept[row - 1], raw.kept[row]
    return f"{a.key} -> {b.key} at {b.lo:.3f}"


def _record(r: dict[str, Any]) -> str:
    return (f"{r['kind']} {r['from_rat']}:{r['from_cell']} -> {r['to_rat']}:{r['to_cell']} "
            f"via {r.get('via')} at {r['at']:.3f}, {r['interruption_ms']} ms")


@pytest.mark.parametrize(("fmt", "path"), TRACES)
def test_every_serving_cell_change_is_found_and_none_invented(
        fmt: Fmt, path: Path, replayed: Callable[[Fmt, Path], Replayed]) -> None:
    report, cmp = replayed(fmt, path)
    _assert_changes_found(report, cmp)
    # the raw parse here and tests/drive_truth.py's, written apart, see the same file
    truth = drive_truth.truth(fmt, path)
    assert truth.cell_changes == report.cell_changes and truth.usable == len(cmp.raw.kept)


def _assert_changes_found(report: Any, cmp: Comparison) -> None:
    raw = cmp.raw
    # The raw parse keeps the rows the importer keeps, so both see the same serving cells.
    assert (report.rows, report.kept) == (raw.rows, len(raw.kept))
    id_changes = sum(1 for a, b in pairwise(raw.kept)
                     if a.key[1] != b.key[1])
    assert report.cell_changes == id_changes  # the importer counts cell ids only
    assert {(r["vehicle"], r["link"]) for r in cmp.records} <= {(report.vehicle,
                                                                 report.links[0])}
    assert not cmp.missed, "missed: " + "; ".join(_change(raw, c) for c in cmp.missed)
    assert not cmp.invented, "invented: " + "; ".join(map(_record, cmp.invented))
    assert len(cmp.matched) == len(raw.changes)
    # Every outage the raw trace shows is one failure record, and each failure is one.
    assert not cmp.missed_outages, [(raw.kept[a].lo, raw.kept[b].lo)
                                    for a, b in cmp.missed_outages]
    assert len(cmp.failures) == len(cmp.outages) == cmp.kinds()["failure"]


@pytest.mark.parametrize(("fmt", "path"), TRACES)
def test_interruptions_agree_with_the_trace(
        fmt: Fmt, path: Path, replayed: Callable[[Fmt, Path], Replayed]) -> None:
    _assert_interruptions_agree(fmt, replayed(fmt, path)[1])


def _assert_interruptions_agree(fmt: Fmt, cmp: Comparison) -> None:
    rows = cmp.raw.kept
    # CICV5G: every row is a round trip, so the detector measures between useful probes and
    # must agree with the delay column to the trace's 1 ms resolution. G-NetTrack has no
    # probes: the basis is the gap between rows, known to the stamps' 1 s resolution.
    basis, tolerance_ms = ("rtt", 1.0) if fmt == "cicv5g" else ("gap", 1000.0)
    assert {r["interruption_basis"] for r in cmp.records} <= {basis}
    for m in cmp.matched:
        if m.record["kind"] == "failure":
            continue  # checked against its outage below
        assert m.stall_ms is not None
        assert m.record["interruption_ms"] > 0
        assert abs(m.record["interruption_ms"] - m.stall_ms) <= tolerance_ms, (
            _record(m.record), m.stall_ms)
    for record, (a, b) in cmp.failures:
        # The outage runs from the last normal row before it to the first normal row after.
        assert rows[a].lo - 1e-6 <= record["at"] <= rows[a].hi + 1e-6, _record(record)
        outage_ms = (rows[b].lo - rows[a].lo) * 1000.0
        assert abs(record["interruption_ms"] - outage_ms) <= tolerance_ms, _record(record)


@pytest.mark.parametrize(("fmt", "path"), TRACES)
def test_kinds_follow_the_definitions(
        fmt: Fmt, path: Path, replayed: Callable[[Fmt, Path], Replayed]) -> None:
    """Ping-pong, too frequent and success as the raw change times say (where the 1 s stamps
    of G-NetTrack leave a window edge undecided, that change is not judged)."""
    _assert_kinds_follow(replayed(fmt, path)[1])


def _assert_kinds_follow(cmp: Comparison) -> None:
    judged = [m for m in cmp.matched if m.expected_kind is not None]
    wrong = [(_record(m.record), m.expected_kind) for m in judged
             if m.record["kind"] != m.expected_kind]
    assert not wrong
    assert len(judged) >= 0.8 * len(cmp.matched)  # the check is not vacuous


def test_the_comparison_catches_a_missed_an_invented_and_a_wrong_interruption() -> None:
    """The checker itself, on a made-up trace: it must not pass whatever the records say."""
    t0 = 1_700_000_000.0
    cells = ["A"] * 30 + ["B"] * 30 + ["C"] * 30
    kept = [RawRow(t0 + 0.05 * i, t0 + 0.05 * i, ("nr", c), 20.0) for i, c in enumerate(cells)]
    kept[30].delay_ms = 400.0  # the first round trip on B came back late: a 100 ms stall
    raw = RawTrace(Path("made-up.txt"), "cicv5g", "n78", len(kept), kept)

    def rec(at: float, a: str, b: str, ms: float, kind: str = "success") -> dict[str, Any]:
        return {"at": at, "kind": kind, "from_rat": "nr", "from_cell": a, "to_rat": "nr",
                "to_cell": b, "interruption_ms": ms, "interruption_basis": "rtt", "via": []}

    right = [rec(t0 + 1.5, "A", "B", 100.0), rec(t0 + 3.0, "B", "C", 50.0)]
    good = compare(raw, right)
    assert not good.missed and not good.invented and len(good.matched) == 2
    assert [m.stall_ms for m in good.matched] == pytest.approx([100.0, 50.0])
    assert [m.expected_kind for m in good.matched] == ["success", "success"]

    assert compare(raw, right[:1]).missed == [60]
    extra = compare(raw, [*right, rec(t0 + 2.0, "B", "D", 50.0)])
    assert [r["to_cell"] for r in extra.invented] == ["D"]
    late = compare(raw, [rec(t0 + 1.55, "A", "B", 100.0), right[1]])
    assert late.missed == [30] and len(late.invented) == 1
    # A same-cell failure where the raw trace shows no outage is invented too.
    ghost = compare(raw, [*right, rec(t0 + 4.0, "C", "C", 1500.0, kind="failure")])
    assert len(ghost.invented) == 1 and not ghost.outages


@pytest.mark.parametrize(("fmt", "path"), TRACES)
def test_import_replay_report_say_what_the_raw_file_says(
        fmt: Fmt, path: Path, tmp_path: Path) -> None:
    """The whole route a validator takes (import -> replay -> report) against the raw file:
    RTT percentiles equal numpy's over the file's own round trips (none where it has none),
    hours equal the drive's own span, and no budget is graded on what the file does not
    measure (one-way delay, throughput capacity, loss are in none of them)."""
    if not path.is_file():
        shared_data(path.relative_to(SHARED).as_posix())
    _assert_report_agrees(fmt, report_trace(fmt, path, tmp_path))


def _assert_report_agrees(fmt: Fmt, check: ReportCheck) -> None:
    if check.raw_rtt:
        want = [float(np.percentile(check.raw_rtt, q)) for q in (50, 95, 99)]
        assert check.kpi_rtt == pytest.approx(want, abs=5e-4)
        assert check.report_rtt == pytest.approx(want, rel=1e-9)
    else:
        assert check.kpi_rtt == check.report_rtt == [None, None, None]
    # 1 s stamps (G-NetTrack): the span is known to a second
    assert check.report_hours * 3600 == pytest.approx(check.raw_hours * 3600,
                                                      abs=1.0 if fmt == "gnettrack" else 1e-3)
    # availability is the hub's judgement of the replayed link states: graded (or too little
    # data) on every trace; RTT budgets only where the file has round trips
    rtt_budgets = {"site-rtt-p95", "tr22856-ul-rtt"}
    assert check.graded == (rtt_budgets if check.raw_rtt else set()) | {"site-availability"}
    assert check.verdict != "pass" or check.graded


@pytest.mark.parametrize(("fmt", "path"), [t for t in TRACES if "absent" not in t.id])
def test_a_renamed_and_perturbed_trace_is_judged_by_its_own_rows(
        fmt: Fmt, path: Path, tmp_path: Path) -> None:
    """Each trace under a name that says nothing, with a block of rows dropped (an outage)
    and a later stretch moved to a cell no file names (two more changes): every check above
    holds on it, against the raw parse of the edited file. The copy stays in tmp_path (the
    G-NetTrack files are GPL-3.0)."""
    edited, done = drive_truth.perturbed_copy(
        fmt, path, tmp_path / "in" / f"drive{path.suffix}")
    report, records = replay_trace(fmt, edited, tmp_path / "work")
    cmp = compare(read_raw(fmt, edited), records)
    _assert_changes_found(report, cmp)
    assert len(cmp.raw.changes) == len(compare(read_raw(fmt, path), []).raw.changes) + 2
    assert any(m.record["to_cell"] == drive_truth.NEW_CELL for m in cmp.matched)
    _assert_interruptions_agree(fmt, cmp)
    _assert_kinds_follow(cmp)
    # the dropped rows are a silence the trace now shows, and a failure record covers it
    gap = cmp.raw.kept[done.dropped.start - 1].lo, cmp.raw.kept[done.dropped.start].lo
    assert any(cmp.raw.kept[a].lo <= gap[0] and gap[1] <= cmp.raw.kept[b].lo
               for _, (a, b) in cmp.failures), gap
    _assert_report_agrees(fmt, report_trace(fmt, edited, tmp_path / "work"))
