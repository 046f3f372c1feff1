"""Making a report: open the inputs, count the raw samples, run (or read) the pipeline, grade.

Which figure comes from where (docs/reports.md): distributions over raw samples from a
columnar scan of the Parquet (``aggregate``); link states, handovers and alerts from the live
pipeline (``pipeline``), replayed here for logs up to ``replay_max_rows`` messages, or read
from a results.json that ``l4mon replay`` wrote. Bigger logs get those sections marked "not
computed" with the reason, rather than a replay that would take hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

from l4mon.config import HubConfig
from l4mon.context import replay_context
from l4mon.faces.report import (
    charts,
    command_times,
    drive_views,
    linkmap_section,
    not_measured,
    tables_build,
    verdict,
)
from l4mon.faces.report.aggregate import BATCH_ROWS, Limits, RawFigures, scan
from l4mon.faces.report.budgets import budgets, thresholds
from l4mon.faces.report.differences import compare
from l4mon.faces.report.drive_data import VIEW_COLUMNS, DriveCollector, DriveData
from l4mon.faces.report.inputs import LogInput, ReportError, ResultsInput, resolve
from l4mon.faces.report.model import Column, Report, Table
from l4mon.faces.report.pipeline import StateRun, from_results, replay_log
from telemetry.site import DEMO_SITE_PATH, Site, load_site

ReplayMode = Literal["auto", "always", "never"]
_ORDER = ["daylight", "dusk", "night", "snow-daylight", "snow", "snow-dusk", "snow-night"]
MAP_POINTS = 4_000


@dataclass(frozen=True)
class ReportOptions:
    #: Thresholds and requirements to grade against; None: the defaults for the budgets, and
    #: each log's own (recorded or imported) config for its replay and its uplink requirement.
    config: HubConfig | None = None
    site: Site | None = None
    start: float | None = None
    end: float | None = None
    replay: ReplayMode = "auto"
    #: Logs with more messages than this are not replayed in "auto": a replay runs at ~42k
    #: messages/s on one core (docs/benchmarks.md), ~1 min per 2.5 M, ~1.7 h for a fleet-day.
    replay_max_rows: int = 2_000_000
    title: str = "Link reliability report"
    batch_rows: int = BATCH_ROWS
    #: A link map directory (l4mon linkmap build): the report gains a section on it.
    linkmap: str | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ReportError("the period's end must be after its start")
        if self.replay not in ("auto", "always", "never"):
            raise ReportError("replay must be auto, always or never")
        if self.replay_max_rows < 0 or self.batch_rows < 1:
            raise ReportError("replay_max_rows must be >= 0 and batch_rows >= 1")


def _order(conditions: set[str]) -> list[str]:
    return sorted(conditions, key=lambda c: (_ORDER.index(c) if c in _ORDER else len(_ORDER),
                                             c))


def _site_names(logs: list[LogInput], results: list[ResultsInput]) -> dict[str, list[str]]:
    """Site name → the inputs from it. A generator scenario's results name none: the
    generator drives on the demo site."""
    demo = load_site(DEMO_SITE_PATH).name
    out: dict[str, list[str]] = {}
    for log in logs:
        out.setdefault(log.manifest.site or "(unnamed)", []).append(str(log.path))
    for r in results:
        info = r.doc.get("input", {})
        generated = any(s.get("kind") == "generator" for s in info.get("sources", [])
                        if isinstance(s, dict))
        name = info.get("site") or (demo if generated else "(unnamed)")
        out.setdefault(name, []).append(str(r.path))
    return out


def _site(options: ReportOptions, logs: list[LogInput],
          results: list[ResultsInput]) -> Site | None:
    """The one site the inputs are from: figures of different places are never pooled."""
    names = _site_names(logs, results)
    if len(names) > 1:
        listed = "; ".join(f"{name}: {', '.join(paths)}" for name, paths in sorted(names.items()))
        raise ReportError(f"the inputs come from {len(names)} sites ({listed}); a report "
                          "covers one site, so make one report per site")
    if options.site is not None:
        return options.site
    planned = [log for log in logs if log.manifest.site_plan]
    if len({msgspec.json.encode(log.manifest.site_plan) for log in planned}) == 1:
        return replay_context(planned[0].manifest).site  # the plan the recording hub ran with
    demo = load_site(DEMO_SITE_PATH)
    return demo if demo.name in names else None


@dataclass
class LogPart:
    """One drive log's share of a report, made apart from the others (in any process)."""

    requirement: str  # its hub config's uplink requirement, in words
    figs: RawFigures
    state: str  # where its link states, handovers and alerts came from
    runs: list[StateRun]  # its replay by the report, if it had one
    notes: list[str]
    views: DriveData  # what the drive-test views need of it (drive_views.py)


#: ``map`` or an equivalent that returns results in the inputs' order (a campaign's engine).
LogMap = Callable[[Callable[[LogInput], LogPart], list[LogInput]], Iterable[LogPart]]


def log_part(log: LogInput, *, options: ReportOptions, site: Site | None,
             covered: set[Path], bounds: dict[str, tuple[float, ...]]) -> LogPart:
    """Scan one log (against ``bounds``, the budgets' thresholds), and replay it when the
    options say so."""
    th = bounds
    own = options.config or replay_context(log.manifest).config
    limits = Limits(rtt_ms=th["rtt"], delay_ms=th["delay"], ul_kbps=th["ul"],
                    dl_kbps=th["dl"], ul_required=own.requirements.ul_required)
    collector = DriveCollector()
    figs = scan(log, limits, site=site, start=options.start, end=options.end,
                batch_rows=options.batch_rows, extra_columns=VIEW_COLUMNS,
                on_batch=collector.add)
    notes: list[str] = []
    if figs.out_of_order:
        notes.append(f"{log.path}: {figs.out_of_order} samples arrived out of receive-time "
                     "order within their stream; their jitter and loss assume file order.")
    runs: list[StateRun] = []
    state = _state_for(log, figs, options, covered, site, runs, notes)
    return LogPart(requirement=_requirement(own), figs=figs, state=state, runs=runs,
                   notes=notes, views=collector.result())


def build_report(paths: list[str | Path], options: ReportOptions | None = None, *,
                 progress: Callable[[float], None] | None = None,
                 map_logs: LogMap | None = None) -> Report:
    """The report over ``paths``; ``progress`` hears how many drive logs are done.
    ``map_logs`` makes each log's part (default: one after another, here)."""
    options = options or ReportOptions()
    logs, results = resolve(paths)
    site = _site(options, logs, results)
    # Read now, with the inputs: a wrong map path fails before the scan, not after it.
    linkmap = linkmap_section.load(options.linkmap) if options.linkmap else None
    config = options.config or HubConfig()
    all_budgets = budgets(config)
    inputs = _inputs_table()
    read = _read_logs(logs, results, options, site, thresholds(all_budgets), inputs,
                      progress, map_logs)
    raw, runs, notes = read.raw, read.runs, read.notes
    notes += _results_rows(results, options, inputs)
    notes += not_measured.notes(logs, results, runs)
    if results and not logs:
        notes.append("Only results files were given: latency, throughput and V2I figures need "
                      "the drive logs themselves (results carry per-vehicle totals only).")
    conditions = _order(set(raw) | {run.condition for run in runs})
    baseline = "daylight" if "daylight" in conditions else (conditions[0] if conditions
                                                             else None)
    raw = {c: raw[c] for c in conditions if c in raw}
    link_avail, vehicle_avail = tables_build.availability(runs, conditions)
    alert_table, false_table = tables_build.alerts(runs)
    v2i_table = tables_build.v2i(raw, site, runs)
    per_vehicle = verdict.vehicle_rows(raw, runs, all_budgets, config.report, conditions)
    summary = verdict.summary(per_vehicle, all_budgets, conditions)
    built = [tables_build.latency(raw),
             tables_build.throughput(raw, _requirements(read.required)),
             link_avail, vehicle_avail, tables_build.handovers(runs, site),
             tables_build.zones(runs, site), v2i_table, alert_table,
             false_table, summary, per_vehicle, tables_build.link_checks(raw, all_budgets)]
    notes += _v2i_gaps(v2i_table)
    diff, marks = compare(built, baseline)
    # The drive-test views: descriptive, so kept out of the verdict and the differences.
    view_tables, view_charts, view_notes = drive_views.build(read.drives, runs, conditions,
                                                             site)
    notes += view_notes
    tables = {t.name: t for t in [*built, diff, inputs, *view_tables]}
    tables["command_times"] = command_times.table(runs)
    graded, detail = verdict.decide(summary, conditions, config.report)
    section = None
    if linkmap is not None and options.linkmap is not None:
        # Past drives, not these inputs: kept out of the verdict and the differences.
        section, map_tables, map_marks = linkmap_section.build_section(
            linkmap, path=options.linkmap, config=config,
            site=linkmap_section.plan(linkmap, options.site, site), conditions=conditions,
            order=_order, baseline=baseline)
        tables.update({t.name: t for t in map_tables})
        marks.update(map_marks)
    data_start, data_end = _data_span(raw, results)
    return Report(
        title=options.title, site=site.name if site else (
            ", ".join(sorted(n for n in _site_names(logs, results) if n != "(unnamed)"))
            or "—"),
        generated_at=time.time(), period=(options.start, options.end), verdict=graded,
        verdict_detail=detail, conditions=conditions, baseline=baseline, tables=tables,
        charts=_charts(raw, runs, link_avail, site, conditions) | view_charts, notes=notes,
        marks=marks, data_start=data_start, data_end=data_end,
        hours=sum(float(r["hours"] or 0.0) for r in inputs.rows),
        sessions=sum(int(r["sessions"] or 0) for r in inputs.rows), linkmap=section)


def _inputs_table() -> Table:
    """The table of what the report read, one row per drive log or results file."""
    return Table("inputs", "Inputs", [
        Column("input", "Input", "text"), Column("kind", "Kind", "text"),
        Column("condition", "Condition", "text"), Column("messages", "Messages", "int"),
        Column("hours", "Hours (drives' own)", digits=2),
        Column("sessions", "Drives", "int"),
        Column("span", "Period", "text"),
        Column("states", "States, handovers, alerts", "text"),
    ])


@dataclass
class _LogsRead:
    """The drive logs' parts merged in the logs' order (results files' runs first)."""

    raw: dict[str, RawFigures]
    runs: list[StateRun]
    notes: list[str]
    required: dict[str, set[str]]
    drives: list[drive_views.DriveInput]


def _read_logs(logs: list[LogInput], results: list[ResultsInput], options: ReportOptions,
               site: Site | None, bounds: dict[str, tuple[float, ...]], inputs: Table,
               progress: Callable[[float], None] | None,
               map_logs: LogMap | None) -> _LogsRead:
    """Each log's figures are its own (a scan, maybe a replay): ``map_logs`` may make them in
    other processes; they are merged here in the logs' order, as a serial run merges them,
    and each log gets its row in ``inputs``."""
    read = _LogsRead(raw={}, runs=[from_results(r) for r in results], notes=[], required={},
                     drives=[])
    covered = {r.log_path for r in results if r.log_path is not None}
    one_log = partial(log_part, options=options, site=site, covered=covered, bounds=bounds)
    for log, part in zip(logs, (map_logs or map)(one_log, logs), strict=True):
        figs = part.figs
        read.required.setdefault(part.requirement, set()).add(str(log.path))
        read.raw.setdefault(log.condition, RawFigures()).merge(figs)
        read.notes += part.notes
        read.runs += part.runs
        read.drives.append(drive_views.DriveInput(
            path=str(log.path), condition=log.condition,
            timezone=log.manifest.source.get("timezone"), data=part.views,
            fields_not_measured=log.manifest.fields_not_measured))
        if progress is not None:
            progress(len(inputs.rows) + 1)
        inputs.rows.append({"input": str(log.path), "kind": "drive log " + str(
            log.manifest.source.get("kind", "")), "condition": log.condition,
            "messages": figs.rows, "hours": figs.active_s / 3600, "sessions": figs.sessions,
            "span": _dates(figs.start, figs.end), "states": part.state})
    return read


def _results_rows(results: list[ResultsInput], options: ReportOptions, inputs: Table) -> list[str]:
    """Each results file's row in ``inputs``; the notes they call for."""
    notes = []
    for r in results:
        span = r.doc.get("span", {})
        inputs.rows.append({"input": str(r.path), "kind": "replay results",
                            "condition": r.condition, "messages": span.get("messages"),
                            "hours": float(span.get("duration_s") or 0) / 3600,
                            "sessions": len(r.doc.get("sessions") or []) or None,
                            "span": _dates(span.get("start"), span.get("end")),
                            "states": "from this file"})
        if options.start is not None or options.end is not None:
            notes.append(f"{r.path}: a results file covers its whole run; the period does not "
                         "narrow its figures.")
    return notes


def _v2i_gaps(v2i_table: Table) -> list[str]:
    """A note naming the RSUs whose V2I delivery could not be computed, and why."""
    gaps = sorted({(r["rsu"], r["not_computed"]) for r in v2i_table.rows if r["not_computed"]})
    if not gaps:
        return []
    return ["V2I delivery not computed for " + ", ".join(sorted({g[0] for g in gaps}))
            + ": " + "; ".join(sorted({g[1] for g in gaps})) + "."]


def _data_span(raw: dict[str, RawFigures],
               results: list[ResultsInput]) -> tuple[float | None, float | None]:
    """The first and last time any input covers."""
    starts = [t for f in raw.values() if (t := f.start) is not None] + [
        float(r.doc["span"]["start"]) for r in results if r.doc.get("span", {}).get("start")]
    ends = [t for f in raw.values() if (t := f.end) is not None] + [
        float(r.doc["span"]["end"]) for r in results if r.doc.get("span", {}).get("end")]
    return min(starts, default=None), max(ends, default=None)


def _dates(start: float | None, end: float | None) -> str:
    """The period as dates a reader can place: "2019-11-21 – 2019-11-26" (UTC)."""
    if start is None or end is None:
        return ""
    a, b = (time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (start, end))
    return a if a == b else f"{a} – {b}"


def _state_for(log: LogInput, figs: RawFigures, options: ReportOptions, covered: set[Path],
               site: Site | None, runs: list[StateRun], notes: list[str]) -> str:
    if log.path.resolve() in covered:
        return "from its results file"
    if options.replay == "never":
        return "not computed (--replay never)"
    if options.replay == "auto" and figs.rows > options.replay_max_rows:
        notes.append(f"{log.path}: {figs.rows:,} messages is more than --replay-max-rows "
                     f"({options.replay_max_rows:,}); link states, handovers and alerts were "
                     "not computed for it. Replay it once with `l4mon replay LOG --out "
                     "results.json` (streamed, in bounded memory; about "
                     f"{figs.rows / 42_000 / 60:,.0f} min at ~42k messages/s) and give the "
                     "results file alongside the log, or pass --replay always.")
        return "not computed (too big to replay here)"
    if not figs.rows:
        return "not computed (no messages in the period)"
    runs.append(replay_log(log, config=options.config, site=site, start=options.start,
                           end=options.end))
    return "replayed by the report"


def _requirement(config: HubConfig) -> str:
    """The uplink requirement a log's own hub config says, in words ("no requirement" for
    0, never the default in its place)."""
    req = config.requirements
    base = (f"{req.ul_required_kbps:,.0f} kbit/s" if req.ul_required_kbps > 0
            else "no requirement (ul_required_kbps = 0)")
    over = ", ".join(f"{v} {k:,.0f}" if k > 0 else f"{v} none"
                     for v, k in sorted(req.ul_required_kbps_by_vehicle.items()))
    return base + (f" (per vehicle: {over})" if over else "")


def _requirements(required: dict[str, set[str]]) -> str:
    if not required:
        return "none known (no drive log given)"
    if len(required) == 1:
        return f"[requirements] of the logs' hub config: {next(iter(required))}"
    return "[requirements] of each log's hub config: " + "; ".join(
        f"{text} for {', '.join(sorted(paths))}" for text, paths in sorted(required.items()))


def _charts(raw: dict[str, RawFigures], runs: list[StateRun], link_avail: Table,
            site: Site | None, conditions: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    link_names = sorted({n for f in raw.values() for n in f.links}
                        | {r["link"] for r in link_avail.rows})
    for key, attr, unit, log_x, title in (
            ("rtt_cdf", "rtt", "RTT, ms", True, "RTT: cumulative distribution per link and "
             "condition"),
            ("delay_cdf", "delay", "one-way delay, ms", False, "One-way delay (receive − "
             "sender time): cumulative distribution")):
        series = [charts.Series(f"{name} · {cond}", charts.link_colour(name, link_names),
                                charts.dash_for(cond, conditions),
                                charts.cdf_points(getattr(f.links[name], attr)))
                  for cond, f in raw.items() for name in sorted(f.links)
                  if getattr(f.links[name], attr).n]
        if series:
            out[key] = charts.cdf_chart(series, title=title, unit=unit, log_x=log_x)
    bars = [(f"{r['link']} · {r['condition']}", {k: r.get(k) or 0.0 for k in
                                                 ("ok", "degraded", "down", "unknown")})
            for r in link_avail.rows]
    if bars:
        out["availability_bars"] = charts.state_bars(bars, title="Share of time per link state")
    for i, run in enumerate([r for r in runs if r.timeline][:6]):
        svg = _timeline(run, link_names)
        if svg:
            out[f"timeline_{i}"] = svg
    if site is not None:
        points = [(h["lat"], h["lon"], h.get("kind", ""), h.get("link", ""))
                  for run in runs for h in run.doc.get("handovers", [])
                  if h.get("lat") is not None and h.get("lon") is not None]
        if len(points) > MAP_POINTS:  # every n-th: the map shows where, the table counts all
            points = points[:: len(points) // MAP_POINTS + 1]
        out["handover_map"] = charts.site_map(
            site, points, title=f"Handovers on the site plot ({site.name})",
            link_order=link_names)
    return out


def _timeline(run: StateRun, link_names: list[str]) -> str:
    span = run.doc.get("span", {})
    start, end = float(span.get("start") or 0.0), float(span.get("end") or 0.0)
    if end <= start:
        return ""
    buckets = 180
    edges = np.linspace(start, end, buckets + 1)
    width = (end - start) / buckets
    strips = []
    for name in link_names:
        count = sum(1 for kp in run.doc.get("kpis", {}).values() if name in kp.get("links", {}))
        if not count:
            continue
        acc = {"down": np.zeros(buckets), "degraded": np.zeros(buckets)}
        for _, link, state, t0, t1 in run.intervals:
            if link != name:
                continue
            lo = np.clip(edges[:-1], t0, t1)
            hi = np.clip(edges[1:], t0, t1)
            acc[state] += hi - lo
        strips.append((name, acc["down"] / (count * width), acc["degraded"] / (count * width)))
    return charts.timeline(strips, start, end, title=f"Link states over time · {run.condition}"
                           f" · {Path(run.label).name}")
