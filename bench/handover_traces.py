"""Handover detection on the real drive-test traces: every serving-cell change found?

Run: ``.venv/bin/python bench/handover_traces.py [--data ../shared/data]``

Each trace in ``cicv5g/`` and ``gnettrack-5g/`` is imported with the project's importer and
replayed through the live pipeline (``scenarios.scenario.run_log``: ``Hub.ingest``/``Hub.tick``
under a virtual clock, handover detection on). Its records are then compared with what a
minimal parse of the raw file, written here and sharing nothing with the importer or the
detector, says: the serving-cell changes, the outages (no useful round trip for over 1 s,
no row for over three seconds), and the stall in the ``delay(ms)`` column around each change.
Prints the markdown table of docs/handover.md ("On the real traces"); tests/test_handover_traces.py
asserts the same comparison trace by trace.

The imported logs go to a temporary directory and are deleted: the G-NetTrack files are
GPL-3.0, and neither they nor anything derived from them but figures may enter the project.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from scenarios.importers import import_files
from scenarios.scenario import run_log

Fmt = Literal["cicv5g", "gnettrack"]
Key = tuple[str, str]  # (rat, cell id): the serving cell, as docs/handover.md defines it

FOLDERS: Final[dict[Fmt, tuple[str, str]]] = {
    "cicv5g": ("cicv5g", "*.txt"), "gnettrack": ("gnettrack-5g", "*.csv")}
#: docs/handover.md defaults the comparison follows (rtt_k, baseline_n, rlf_threshold_s,
#: ping_pong_window_s, max_per_window, frequency_window_s) and the outage rule for rare samples.
RTT_K: Final = 3.0
BASELINE_N: Final = 20
RLF_S: Final = 1.0
PING_PONG_S: Final = 1.0
MAX_PER_WINDOW: Final = 3
WINDOW_S: Final = 10.0
#: An outage must also pass this many of the link's usual sample intervals (docs/handover.md).
OUTAGE_INTERVALS: Final = 3
DUBLIN: Final = "Europe/Dublin"


def shared_data() -> Path:
    """``$L4MON_SHARED_DATA``, or ``../shared/data`` beside the repository."""
    env = os.environ.get("L4MON_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def trace_files(data: Path) -> list[tuple[Fmt, Path]]:
    out: list[tuple[Fmt, Path]] = []
    for fmt, (folder, pattern) in FOLDERS.items():
        out += [(fmt, p) for p in sorted((data / folder).glob(pattern))]
    return out


# --- the raw files, read here and nowhere else ---------------------------------------------


@dataclass
class RawRow:
    """One row the importer keeps. Its receive time is known to within [lo, hi]: exact for
    CICV5G (ms), the stamped second for G-NetTrack (1 s resolution)."""

    lo: float
    hi: float
    key: Key
    delay_ms: float | None  # CICV5G's delay(ms); G-NetTrack has none
    ping_ms: float | None = None  # G-NetTrack's PINGAVG where its ping test gave a number


@dataclass
class RawTrace:
    path: Path
    fmt: Fmt
    network: str
    rows: int  # data rows in the file
    kept: list[RawRow]

    @property
    def duration_s(self) -> float:
        return self.kept[-1].lo - self.kept[0].lo

    @property
    def changes(self) -> list[int]:
        """Indices of the kept rows whose serving cell differs from the row before."""
        return [i for i in range(1, len(self.kept)) if self.kept[i].key != self.kept[i - 1].key]

    def normal(self) -> list[bool]:
        """CICV5G: a round trip is normal (delivered) when its delay is within 3x the median of
        the 20 before it (docs/handover.md, "useful sample"); without delays, every row is."""
        out = []
        delays = [r.delay_ms for r in self.kept]
        for i, d in enumerate(delays):
            before = [x for x in delays[max(0, i - BASELINE_N):i] if x is not None]
            out.append(d is None or not before or d <= RTT_K * median(before))
        return out

    def outages(self) -> list[tuple[int, int]]:
        """(a, b): consecutive normal rows with an outage between them. CICV5G: more than 1 s
        (rows may arrive in between, but slowly). G-NetTrack: stamps of two consecutive rows
        further apart than 1 s and than three of the usual spacing of its stamps (the logger
        writes about one row a second: 3 s)."""
        if self.fmt == "gnettrack":
            usual = median(b.lo - a.lo for a, b in pairwise(self.kept))
            silence = max(RLF_S, OUTAGE_INTERVALS * usual)
            return [(i - 1, i) for i in range(1, len(self.kept))
                    if self.kept[i].lo - self.kept[i - 1].lo > silence]
        good = [i for i, ok in enumerate(self.normal()) if ok]
        return [(a, b) for a, b in pairwise(good)
                if self.kept[b].lo - self.kept[a].lo > RLF_S]


_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_cicv5g(path: Path) -> RawTrace:
    """Rows as the importer keeps them: at least the ten named fields, first (the ``W2S`` runs
    add two unnamed ones: README), numbers where numbers belong and a hex ``cellid`` (it skips
    the rest; the real files have none). The serving cell is ("nr", cellid); the row's
    receive time is sub_time."""
    lines = path.read_text().splitlines()
    kept: list[RawRow] = []
    rows = 0
    for line in lines[1:]:
        f = line.split()
        if not f:
            continue
        rows += 1
        if len(f) < 10 or not _HEX.match(f[7]) or not all(map(_finite, f[:7] + f[8:10])):
            continue
        t = int(f[1]) / 1000.0
        kept.append(RawRow(t, t, ("nr", f[7]), float(f[2])))
    band = re.search(r"_n(\d+)_", path.name)
    network = {"8": "n8, private", "78": "n78, public"}.get(band.group(1) if band else "", "?")
    return RawTrace(path, "cicv5g", network, rows, kept)


def _rat(mode: str) -> str | None:
    """G-NetTrack's NetworkMode as a RAT family; None for one the importer does not know."""
    mode = mode.strip().upper()
    if mode.startswith(("5G", "NR")):
        return "nr"
    if mode.startswith(("LTE", "4G")):
        return "lte"
    if mode.startswith(("HS", "UMTS", "WCDMA", "3G")):
        return "umts"
    if mode in ("GSM", "EDGE", "GPRS", "2G"):
        return "gsm"
    return None


def read_gnettrack(path: Path) -> RawTrace:
    """Rows as the importer keeps them: a parsable Timestamp, a known NetworkMode, a position
    and a speed (it skips the rest; the UCC files have none). The serving cell is (RAT of
    NetworkMode, RAWCELLID, or CellID where RAWCELLID is '-'); the receive time lies within
    the stamped second (rows sharing a second are spread within it)."""
    zone = ZoneInfo(DUBLIN)
    kept: list[RawRow] = []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        rat = _rat(row.get("NetworkMode") or "")
        try:
            second = datetime.strptime(row["Timestamp"].strip(), "%Y.%m.%d_%H.%M.%S").replace(
                tzinfo=zone).timestamp()
        except (ValueError, KeyError, AttributeError):
            continue
        if rat is None or any((row.get(c) or "-").strip() in ("-", "")
                              for c in ("Latitude", "Longitude", "Speed")):
            continue
        raw = (row.get("RAWCELLID") or "-").strip()
        cell = raw if raw not in ("-", "") else (row.get("CellID") or "-").strip()
        ping = (row.get("PINGAVG") or "-").strip()
        kept.append(RawRow(second, second + 1.0, (rat, cell), None,
                           float(ping) if _finite(ping) else None))
    shares = ", ".join(f"{name} {100 * sum(r.key[0] == rat for r in kept) / len(kept):.0f} %"
                       for rat, name in (("nr", "5G"), ("lte", "LTE"), ("umts", "3G"))
                       if any(r.key[0] == rat for r in kept))
    return RawTrace(path, "gnettrack", f"NSA 5G, Cork: {shares}", len(rows), kept)


def read_raw(fmt: Fmt, path: Path) -> RawTrace:
    return read_cicv5g(path) if fmt == "cicv5g" else read_gnettrack(path)


# --- the pipeline ---------------------------------------------------------------------------


def replay_trace(fmt: Fmt, path: Path, workdir: Path) -> tuple[Any, list[dict[str, Any]]]:
    """Import ``path`` into ``workdir`` and replay it; (import report, handover records)."""
    out = workdir / "log"
    report = import_files(fmt, [path], out)
    results = run_log(out)
    return report.files[0], results["handovers"]


# --- import -> replay -> report against the raw file ---------------------------------------


def round_trips(raw: RawTrace) -> list[float]:
    """Every round trip the raw file measured: CICV5G's delay column, G-NetTrack's numeric
    PINGAVG (most G-NetTrack drives have none)."""
    return [r.delay_ms if r.delay_ms is not None else r.ping_ms for r in raw.kept
            if r.delay_ms is not None or r.ping_ms is not None]  # type: ignore[misc]


@dataclass
class ReportCheck:
    """What ``l4mon replay`` and ``l4mon report`` said of one trace, next to the raw file."""

    raw_rtt: list[float]  # the raw round trips
    kpi_rtt: list[float | None]  # replay KPIs p50 / p95 / p99
    report_rtt: list[float | None]  # report's latency table p50 / p95 / p99
    raw_hours: float  # the drive's own span
    report_hours: float
    graded: set[str]  # budgets the report graded (pass or fail)
    verdict: str


def report_trace(fmt: Fmt, path: Path, workdir: Path) -> ReportCheck:
    """Import, replay and report one trace with the project's own commands' code."""
    from l4mon.faces.report import build_report
    from scenarios.scenario import run_log

    out = workdir / "log"
    if not out.exists():
        import_files(fmt, [path], out)
    raw = read_raw(fmt, path)
    kpis = run_log(out)["kpis"]
    (vehicle,) = kpis.values()
    (link,) = vehicle["links"].values()
    report = build_report([out])
    (row,) = report.tables["latency"].rows
    rtts = round_trips(raw)
    return ReportCheck(
        raw_rtt=rtts, kpi_rtt=[link[f"rtt_p{q}_ms"] for q in (50, 95, 99)],
        report_rtt=[row[f"rtt_p{q}_ms"] for q in (50, 95, 99)],
        raw_hours=raw.duration_s / 3600, report_hours=report.hours,
        graded={r["budget"] for r in report.tables["budgets"].rows if r["result"] != "n/a"},
        verdict=report.verdict)


# --- the comparison -------------------------------------------------------------------------


@dataclass
class Match:
    """A raw serving-cell change and the record (or failure) that accounts for it."""

    row: int  # index of the first kept row on the new cell
    record: dict[str, Any]
    stall_ms: float | None = None  # the stall the raw delays / row spacing show around it
    expected_kind: str | None = None  # None where the raw times cannot decide it


@dataclass
class Comparison:
    raw: RawTrace
    records: list[dict[str, Any]]
    matched: list[Match] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)  # raw change rows with no record
    invented: list[dict[str, Any]] = field(default_factory=list)  # records nothing explains
    outages: list[tuple[int, int]] = field(default_factory=list)  # raw outages
    failures: list[tuple[dict[str, Any], tuple[int, int]]] = field(default_factory=list)
    missed_outages: list[tuple[int, int]] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.raw.changes)

    def kinds(self) -> dict[str, int]:
        out = {k: 0 for k in ("success", "ping_pong", "too_frequent", "failure")}
        for r in self.records:
            out[r["kind"]] += 1
        return out


def _path(record: dict[str, Any]) -> list[Key]:
    """The serving cells a record goes through: from, every cell in ``via``, to."""
    via = [(str(rat), str(cell)) for rat, cell in record.get("via") or ()]
    return [(record["from_rat"], record["from_cell"]), *via,
            (record["to_rat"], record["to_cell"])]


def _steps(record: dict[str, Any]) -> list[tuple[Key, Key]]:
    p = _path(record)
    return [(a, b) for a, b in pairwise(p) if a != b]


def compare(raw: RawTrace, records: list[dict[str, Any]]) -> Comparison:
    """Match the records with the raw trace: each raw change with one step of one record
    (same from and to, at the time of the first row on the new cell, or inside a failure's
    outage), each failure with a raw outage; whatever is left over is missed or invented."""
    cmp = Comparison(raw, sorted(records, key=lambda r: r["at"]), outages=raw.outages())
    rows = raw.kept
    resolution = rows[0].hi - rows[0].lo
    eps = 1e-6
    # Raw changes and record steps, both in time order, aligned by a two-pointer walk.
    steps = [(r, a, b) for r in cmp.records for a, b in _steps(r)]
    changes = raw.changes
    i = j = 0
    while i < len(changes) or j < len(steps):
        if j == len(steps):
            cmp.missed.append(changes[i])
            i += 1
            continue
        record, a, b = steps[j]
        if record["kind"] == "failure":
            window = (record["at"] - resolution - eps,
                      record["at"] + record["interruption_ms"] / 1000.0 + resolution + eps)
        else:
            window = (record["at"] - eps, record["at"] + eps)
        if i == len(changes):
            cmp.invented.append(record)
            j += 1
            continue
        c = changes[i]
        row = rows[c]
        if (rows[c - 1].key, row.key) == (a, b) and row.lo - eps <= window[1] \
                and window[0] <= row.hi:
            cmp.matched.append(Match(c, record))
            i += 1
            j += 1
        elif row.hi < window[0]:
            cmp.missed.append(c)
            i += 1
        else:
            cmp.invented.append(record)
            j += 1
    # Failures against raw outages (a failure is one record per outage, changes or not).
    for record in (r for r in cmp.records if r["kind"] == "failure"):
        start = record["at"]
        end = start + record["interruption_ms"] / 1000.0
        hit = next(((a, b) for a, b in cmp.outages
                    if rows[a].lo - resolution - eps <= end
                    and start <= rows[b].hi + eps), None)
        if hit is None:
            if record not in cmp.invented:
                cmp.invented.append(record)
        else:
            cmp.failures.append((record, hit))
    found = {hit for _, hit in cmp.failures}
    cmp.missed_outages = [o for o in cmp.outages if o not in found]
    _stalls(cmp)
    _expected_kinds(cmp)
    return cmp


def _stalls(cmp: Comparison) -> None:
    """The stall the raw trace shows around each matched change. CICV5G: from the last
    normal round trip before the change to the first normal one from it on (the delay
    column's own view of "nothing useful delivered"). G-NetTrack: the spacing of the stamps
    of the last row on the old cell and the first on the new one (basis ``gap``)."""
    rows = cmp.raw.kept
    if cmp.raw.fmt == "gnettrack":
        for m in cmp.matched:
            m.stall_ms = (rows[m.row].lo - rows[m.row - 1].lo) * 1000.0
        return
    normal = cmp.raw.normal()
    for m in cmp.matched:
        a = m.row - 1
        while a > 0 and not normal[a]:
            a -= 1
        b = m.row
        while b < len(rows) - 1 and not normal[b]:
            b += 1
        m.stall_ms = (rows[b].lo - rows[a].lo) * 1000.0


def _expected_kinds(cmp: Comparison) -> None:
    """What docs/handover.md says each change is, from the raw times alone: failure inside
    an outage, else ping-pong if the next change returns within 1 s, else too frequent if
    it is the 4th or later change within (at - 10 s, at], else success. Where the raw times'
    resolution straddles a window edge (G-NetTrack's 1 s stamps), left undecided (None)."""
    rows = cmp.raw.kept
    changes = cmp.raw.changes
    spans_change = any(r["kind"] == "failure" and _steps(r) for r, _ in cmp.failures)
    index = {c: n for n, c in enumerate(changes)}
    for m in cmp.matched:
        n = index[m.row]
        if m.record["kind"] == "failure":
            m.expected_kind = "failure"
            continue
        if spans_change:
            continue  # a failure through several cells counts once towards "too frequent"
        row = rows[m.row]
        kind: str | None = "success"
        # Ping-pong: the next change goes back to the cell this one left.
        if n + 1 < len(changes):
            nxt = rows[changes[n + 1]]
            if nxt.key == rows[m.row - 1].key:
                lo, hi = nxt.lo - row.hi, nxt.hi - row.lo
                if hi <= PING_PONG_S:
                    m.expected_kind = "ping_pong"
                    continue
                if lo <= PING_PONG_S:
                    m.expected_kind = None
                    continue
        # Too frequent: more than MAX_PER_WINDOW changes within (at - 10 s, at].
        sure = maybe = 0
        for k in range(n + 1):
            earlier = rows[changes[k]]
            if row.hi - earlier.lo < WINDOW_S:
                sure += 1
            elif row.lo - earlier.hi < WINDOW_S:
                maybe += 1
        if sure > MAX_PER_WINDOW:
            kind = "too_frequent"
        elif sure + maybe > MAX_PER_WINDOW:
            kind = None
        m.expected_kind = kind


# --- the table ------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (as the replay's KPIs compute it)."""
    v = sorted(values)
    if not v:
        return None
    rank = (len(v) - 1) * q / 100.0
    low = int(rank)
    if low >= len(v) - 1:
        return v[-1]
    return v[low] + (v[low + 1] - v[low]) * (rank - low)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def row_of(cmp: Comparison) -> str:
    raw = cmp.raw
    kinds = cmp.kinds()
    moves = [r for r in cmp.records if _steps(r)]
    gaps = [r["interruption_ms"] for r in cmp.records if r["kind"] != "failure"]
    basis = sorted({r["interruption_basis"] for r in cmp.records}) or ["–"]
    outages = ", ".join(f"{r['interruption_ms'] / 1000:.1f} s" for r, _ in cmp.failures)
    failure = f"{kinds['failure']}" + (f" ({outages})" if outages else "")
    per10 = 600.0 * len(moves) / raw.duration_s
    rat_only = sum(1 for c in raw.changes if raw.kept[c - 1].key[1] == raw.kept[c].key[1])
    changes = f"{cmp.changes}" + (f" ({rat_only} RAT only)" if rat_only else "")
    return (f"| {raw.path.name} | {raw.network} | {raw.duration_s / 60:.1f} min | {raw.rows} "
            f"| {changes} | {kinds['success']} | {kinds['ping_pong']} "
            f"| {kinds['too_frequent']} | {failure} | {len(cmp.missed)} "
            f"| {len(cmp.invented)} | {per10:.1f} "
            f"| {_ms(_pct(gaps, 50))} / {_ms(_pct(gaps, 95))} / {_ms(max(gaps, default=None))}"
            f" ({'/'.join(basis)}) |")


HEADER: Final = (
    "| trace | network (band) | duration | rows | cell changes in the raw trace | success "
    "| ping-pong | too frequent | failure | missed | invented | handovers / 10 min "
    "| interruption p50 / p95 / max, ms (basis) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


REPORT_HEADER: Final = (
    "| trace | round trips in the file | RTT p50 / p95 / p99, ms: numpy on the file | "
    "replay KPIs | report | drive, h: file / report | budgets graded | verdict |\n"
    "|---|---|---|---|---|---|---|---|")


def report_row(path: Path, check: ReportCheck) -> str:
    import numpy as np

    def three(values: list[float | None]) -> str:
        return " / ".join("–" if v is None else f"{v:.1f}" for v in values)

    raw = [float(np.percentile(check.raw_rtt, q)) for q in (50, 95, 99)] \
        if check.raw_rtt else [None, None, None]
    return (f"| {path.name} | {len(check.raw_rtt)} | {three(raw)} | {three(check.kpi_rtt)} "  # type: ignore[arg-type]
            f"| {three(check.report_rtt)} | {check.raw_hours:.3f} / {check.report_hours:.3f} "
            f"| {', '.join(sorted(check.graded)) or 'none (nothing they judge is measured)'} "
            f"| {check.verdict} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    args = parser.parse_args(argv)
    files = trace_files(args.data)
    if not files:
        print(f"no traces under {args.data}", file=sys.stderr)
        return 2
    lines = [HEADER]
    reports = [REPORT_HEADER]
    with tempfile.TemporaryDirectory() as tmp:
        for n, (fmt, path) in enumerate(files):
            work = Path(tmp) / str(n)
            work.mkdir()
            _, records = replay_trace(fmt, path, work)
            lines.append(row_of(compare(read_raw(fmt, path), records)))
            reports.append(report_row(path, report_trace(fmt, path, work)))
    print("\n".join(lines))
    print()
    print("\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
