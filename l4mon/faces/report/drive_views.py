"""The views drive-test engineers expect (TEMS, Nemo, G-NetTrack), as report tables and charts.

Made from each log's ``DriveData`` (gathered in the report's one scan, drive_data.py) and the
handover records of the pipeline (a replay by the report, or a results file). Tables:
``cells`` (per serving cell), ``route`` (the route's squares per condition and measure, with
the colour each was drawn in), ``series`` (each drive's buckets over time), ``events`` (each
drive's events in drive-relative and wall-clock time) and ``cell_changes`` (cell changes in the
data beside handover records). Charts: ``route::MEASURE::CONDITION`` and
``route_legend::MEASURE`` (one scale per measure for every condition), ``drive::N``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from l4mon.faces.report import drive_charts
from l4mon.faces.report.drive_data import (
    EVENTS_MAX,
    MEASURES,
    ROUTE_BIN_DEG,
    SERIES_POINTS,
    DriveData,
)
from l4mon.faces.report.model import Column, Table
from l4mon.faces.report.pipeline import StateRun
from l4mon.faces.report.tables_build import EXACT, EXACT_RULE
from telemetry.ranges import describe
from telemetry.site import Site

#: Drives drawn over time on the page (each one's buckets are all in series.csv).
DRIVES_DRAWN: Final = 8
#: Events listed on the page per drive; cells per table (all of them in the CSV files).
EVENTS_SHOWN: Final = 25
CELLS_SHOWN: Final = 40
#: A cell change and a handover record of one link are one event when this close (s) and to
#: the same cell.
MATCH_S: Final = 2.0
_SCALES = {"rsrp": (False, True), "sinr": (False, True), "rtt": (True, False),
           "ul": (False, True)}  # measure -> (log scale, higher is better)


@dataclass(frozen=True)
class DriveInput:
    """One drive log's share, as build.py hands it over."""

    path: str
    condition: str
    timezone: str | None  # the import's zone (manifest source); None: UTC
    data: DriveData
    fields_not_measured: dict[str, dict[str, int]]


def build(inputs: list[DriveInput], runs: list[StateRun], conditions: list[str],
          site: Site | None) -> tuple[list[Table], dict[str, str], list[str]]:
    """(tables, charts, notes) of the views."""
    records = _records(inputs, runs)
    covered = {i.path for i in inputs if i.path in records}
    notes: list[str] = []
    charts: dict[str, str] = {}
    tables = [_cells(inputs, records, covered)]
    route, route_charts = _route(inputs, conditions, site)
    tables.append(route)
    charts.update(route_charts)
    series, events, changes, drive_charts_ = _drives(inputs, records)
    tables += [series, events, changes]
    charts.update(drive_charts_)
    dropped = sum(i.data.events_dropped for i in inputs)
    if dropped:
        notes.append(f"Drive events: {dropped:,} cell changes and gaps beyond {EVENTS_MAX:,} "
                     "per log were counted (cell_changes.csv) but not listed (events.csv).")
    return tables, charts, notes


# --- handover records ---------------------------------------------------------------------


def _records(inputs: list[DriveInput], runs: list[StateRun]) -> dict[str, list[dict[str, Any]]]:
    """Log path -> the handover records its replay (or results file) holds."""
    paths = {str(Path(i.path).resolve()): i.path for i in inputs}
    out: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        info = run.doc.get("input", {})
        source = info.get("path") if info.get("kind") == "log" else None
        for candidate in (run.label, source):
            if candidate and str(Path(candidate).resolve()) in paths:
                out.setdefault(paths[str(Path(candidate).resolve())], []).extend(
                    run.doc.get("handovers") or [])
                break
    return out


# --- per cell -----------------------------------------------------------------------------


CELL_COLUMNS = [
    Column("cell", "Cell", "text"), Column("rat", "RAT", "text"),
    Column("links", "Links", "text"), Column("samples", "Samples", "int"),
    Column("served_s", "Time served", unit="s", digits=1),
    Column("rsrp_p50", "RSRP p50", unit="dBm"), Column("rsrp_p95", "RSRP p95", unit="dBm"),
    Column("rsrp_n", "RSRP n", "int"),
    Column("rtt_p50", "RTT p50", unit="ms"), Column("rtt_p95", "RTT p95", unit="ms"),
    Column("rtt_n", "RTT n", "int"), EXACT,
    Column("handovers_in", "Handovers in", "int", missing="not computed"),
    Column("handovers_out", "Handovers out", "int", missing="not computed"),
    Column("failures", "Failures", "int", missing="not computed"),
]


def _cells(inputs: list[DriveInput], records: dict[str, list[dict[str, Any]]],
           covered: set[str]) -> Table:
    merged: dict[str, Any] = {}
    for i in inputs:
        for cell, figures in i.data.cells.items():
            if cell in merged:
                merged[cell].merge(figures)
            else:
                merged[cell] = figures
    counts: dict[str, list[int]] = {}
    for recs in records.values():
        for h in recs:
            failed = h.get("kind") == "failure"
            if not failed:
                counts.setdefault(str(h.get("to_cell")), [0, 0, 0])[0] += 1
                counts.setdefault(str(h.get("from_cell")), [0, 0, 0])[1] += 1
            else:
                counts.setdefault(str(h.get("from_cell")), [0, 0, 0])[2] += 1
    known = bool(covered) and len(covered) == len(inputs)
    rows = []
    for cell, f in sorted(merged.items(), key=lambda kv: (-kv[1].samples, kv[0])):
        rsrp, rtt = f.rsrp.percentiles(50, 95), f.rtt.percentiles(50, 95)
        ho = counts.get(cell, [0, 0, 0])
        rows.append({"cell": cell, "rat": ", ".join(sorted(f.rats)),
                     "links": ", ".join(sorted(f.links)), "samples": f.samples,
                     "served_s": f.seconds, "rsrp_p50": rsrp[0], "rsrp_p95": rsrp[1],
                     "rsrp_n": f.rsrp.n, "rtt_p50": rtt[0], "rtt_p95": rtt[1],
                     "rtt_n": f.rtt.n, "exact": f.rsrp.exact and f.rtt.exact,
                     "handovers_in": ho[0] if known else None,
                     "handovers_out": ho[1] if known else None,
                     "failures": ho[2] if known else None})
    note = ("One row per serving cell, every drive together. Samples: link samples on the cell "
            "(a redelivered sample once); time served: from each sample to its stream's next, "
            "up to 5 s (a longer silence is a gap, not service). Percentiles over the samples "
            "that carried the figure (n). " + EXACT_RULE + " Handovers in / out and failures: "
            "the pipeline's handover records (a failure is counted on the cell it left)"
            + ("." if known else "; not computed: not every log was replayed (or given with "
               "its results file)."))
    return Table("cells", "Per serving cell", CELL_COLUMNS, rows, note=note)


# --- the route ----------------------------------------------------------------------------


def _route(inputs: list[DriveInput], conditions: list[str], site: Site | None
           ) -> tuple[Table, dict[str, str]]:
    table = Table("route", "The route per condition and measure", [
        Column("condition", "Condition", "text"), Column("measure", "Measure", "text"),
        Column("lat", "Latitude", digits=6), Column("lon", "Longitude", digits=6),
        Column("value", "Mean"), Column("unit", "Unit", "text"),
        Column("samples", "Samples", "int"), Column("colour", "Colour", "text")],
        note=f"The route in squares of {ROUTE_BIN_DEG:g}° (~11 m) of latitude and longitude: "
             "each square the mean of the link samples taken in it (a sample is placed at its "
             "vehicle's last position, at most 5 s old). One colour scale per measure for "
             "every condition: the 2nd to 98th percentile of all conditions' squares.")
    squares: dict[tuple[str, str], dict[tuple[int, int], list[float]]] = {}
    for i in inputs:
        for (measure, a, b), (s, n) in i.data.route.items():
            acc = squares.setdefault((i.condition, measure), {}).setdefault((a, b), [0.0, 0])
            acc[0] += s
            acc[1] += n
    charts: dict[str, str] = {}
    if not squares:
        return table, charts
    bins = np.array([k for sq in squares.values() for k in sq], dtype=np.float64)
    lats, lons = (bins[:, 0] + 0.5) * ROUTE_BIN_DEG, (bins[:, 1] + 0.5) * ROUTE_BIN_DEG
    projection = drive_charts.Projection(lats, lons, site)
    square_m = ROUTE_BIN_DEG * 110_540.0
    for measure, (_, label, unit) in MEASURES.items():
        means = [s / n for c in conditions for (a, b), (s, n) in
                 squares.get((c, measure), {}).items()]
        if not means:
            continue
        log, better = _SCALES[measure]
        values = np.array(means)
        if log:
            values = values[values > 0]
        scale = drive_charts.scale_for(values if values.size else np.array(means), log=log,
                                       higher_is_better=better, unit=unit)
        charts[f"route_legend::{measure}"] = drive_charts.legend(scale, label)
        for c in conditions:
            mine = squares.get((c, measure), {})
            title = f"{label} · {c}"
            if not mine:
                charts[f"route::{measure}::{c}"] = drive_charts.not_measured_box(
                    projection, title=title, words=_absent(inputs, c, measure))
                continue
            drawn = []
            for (a, b), (s, n) in sorted(mine.items()):
                lat, lon, value = (a + 0.5) * ROUTE_BIN_DEG, (b + 0.5) * ROUTE_BIN_DEG, s / n
                colour = scale.colour(value)
                table.rows.append({"condition": c, "measure": measure, "lat": lat, "lon": lon,
                                   "value": value, "unit": unit, "samples": int(n),
                                   "colour": colour})
                drawn.append((lat, lon, value, int(n)))
            charts[f"route::{measure}::{c}"] = drive_charts.route_map(
                drawn, projection, scale, title=title, square_m=square_m)
    return table, charts


def _absent(inputs: list[DriveInput], condition: str, measure: str) -> str:
    """Why a condition's map of a measure is empty, in words: not measured, or no position."""
    mine = [i for i in inputs if i.condition == condition]
    samples = sum(i.data.link_samples for i in mine)
    carried = sum(i.data.measured.get(measure, 0) for i in mine)
    label = MEASURES[measure][1]
    if carried:
        return f"{label}: {carried:,} samples, none with a position"
    column = MEASURES[measure][0]
    why = [line for i in mine for line in describe(
        {column: i.fields_not_measured[column]} if column in i.fields_not_measured else {})]
    return (f"{label} not measured: none of {samples:,} link samples carried it"
            + (f" ({'; '.join(why)})" if why else ""))


# --- per drive: over time, events, cell changes beside handover records --------------------


def _wall(t: float, zone: ZoneInfo | None) -> str:
    when = dt.datetime.fromtimestamp(t, tz=zone or dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + (f" {when.tzname()}")


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


EVENT_COLUMNS = [
    Column("drive", "Drive", "text"), Column("vehicle", "Vehicle", "text"),
    Column("link", "Link", "text"), Column("t_s", "Time into the drive", unit="s", digits=3),
    Column("wall", "Wall clock", "text"), Column("zone", "Time zone", "text"),
    Column("event", "Event", "text"), Column("from_cell", "From cell", "text", missing=""),
    Column("to_cell", "To cell", "text", missing=""), Column("detail", "Detail", "text",
                                                            missing=""),
    Column("source", "From", "text"),
]


def _drives(inputs: list[DriveInput], records: dict[str, list[dict[str, Any]]]
            ) -> tuple[Table, Table, Table, dict[str, str]]:
    series = Table("series", "Signal and RTT over time per drive", [
        Column("drive", "Drive", "text"), Column("link", "Link", "text"),
        Column("t_s", "Time into the drive", unit="s", digits=1),
        Column("rsrp_dbm", "RSRP", unit="dBm"), Column("sinr_db", "SINR", unit="dB"),
        Column("rtt_ms", "RTT", unit="ms")],
        note=f"Each drive's link samples in at most {2 * SERIES_POINTS} time buckets per link "
             "(a bucket's width doubles until the drive fits): each point is the mean of its "
             "bucket; a bucket without a value is no point, never 0.")
    events = Table("events", "Events per drive", EVENT_COLUMNS)
    changes = Table("cell_changes", "Cell changes beside handover records", [
        Column("drive", "Drive", "text"), Column("vehicle", "Vehicle", "text"),
        Column("link", "Link", "text"), Column("cell_changes", "Cell changes (data)", "int"),
        Column("handovers", "Handover records", "int", missing="not computed"),
        Column("changes_unmatched", "Changes without a record", "int",
               missing="not computed"),
        Column("records_unmatched", "Records without a change", "int",
               missing="not computed")],
        note=f"Cell changes: the serving cell id changing between two samples of a link that "
             f"name one (a sample without a cell is a gap, not a change). Handover records: "
             f"the pipeline's, failures included. A change and a record are one event when "
             f"they are within {MATCH_S:g} s and to the same cell (a failure: any cell).")
    charts: dict[str, str] = {}
    drawn = 0
    for i in inputs:
        zone = _zone(i.timezone)
        zone_name = i.timezone if zone is not None else "UTC"
        recs = records.get(i.path)
        vehicles = sorted({v for v, _ in i.data.series})  # RSUs and services are no drives
        for vehicle in vehicles:
            start, end = i.data.spans[vehicle]
            drive = f"{Path(i.path).name}: {vehicle}"
            mine = sorted((e for e in i.data.events if e[1] == vehicle), key=lambda e: e[0])
            listed = [{"drive": drive, "vehicle": vehicle, "link": link, "t_s": t - start,
                       "wall": _wall(t, zone), "zone": zone_name, "event": kind,
                       "from_cell": a, "to_cell": b, "detail": detail, "source": "data"}
                      for t, _, link, kind, a, b, detail in mine]
            mine_recs = [h for h in recs or [] if h.get("vehicle") == vehicle]
            listed += [{"drive": drive, "vehicle": vehicle, "link": h.get("link", ""),
                        "t_s": float(h["at"]) - start, "wall": _wall(float(h["at"]), zone),
                        "zone": zone_name, "event": f"handover {h.get('kind')}",
                        "from_cell": h.get("from_cell"), "to_cell": h.get("to_cell"),
                        "detail": f"interruption {float(h.get('interruption_ms') or 0):,.0f} "
                                  "ms", "source": "handover record"} for h in mine_recs]
            listed.sort(key=lambda r: (r["t_s"], r["source"]))
            events.rows += listed
            links = sorted({link for (v, link) in i.data.series if v == vehicle})
            for link in links:
                changes.rows.append(_compare(drive, vehicle, link, i.data, mine,
                                             None if recs is None else
                                             [h for h in mine_recs if h.get("link") == link]))
            panels = []
            for row, (label, unit, log) in enumerate((("RSRP", "dBm", False),
                                                      ("SINR", "dB", False),
                                                      ("RTT", "ms", True))):
                lines = []
                for link in links:
                    times, means = i.data.series[(vehicle, link)].means()
                    lines.append((link, times - start, means[row]))
                    if row == 0:
                        columns = [_nums(means[j]) for j in range(3)]
                        series.rows += [
                            {"drive": drive, "link": link, "t_s": t - start, "rsrp_dbm": a,
                             "sinr_db": b, "rtt_ms": c}
                            for t, a, b, c in zip(times.tolist(), *columns, strict=True)]
                panels.append((label, unit, log, lines))
            if drawn < DRIVES_DRAWN:
                marks = [(r["t_s"], r["event"].removeprefix("handover ")) for r in listed]
                charts[f"drive::{drawn}"] = drive_charts.over_time(
                    f"{drive} ({i.condition})", (0.0, end - start), panels, marks)
                drawn += 1
    return series, events, changes, charts


def _nums(values: np.ndarray) -> list[float | None]:
    """NaN (a bucket without a value) as None: an empty cell, never 0."""
    return [None if isnan else x for x, isnan in zip(values.tolist(),
                                                      np.isnan(values).tolist(), strict=True)]


def _compare(drive: str, vehicle: str, link: str, data: DriveData,
             events: list[tuple[float, str, str, str, str, str, str]],
             recs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One link of one drive: its cell changes, its handover records, and those of each
    without a partner in the other."""
    changes = [(t, b) for t, _, lk, kind, _, b, _ in events if lk == link and kind ==
               "cell change"]
    row: dict[str, Any] = {"drive": drive, "vehicle": vehicle, "link": link,
                           "cell_changes": data.changes.get((vehicle, link), 0),
                           "handovers": None, "changes_unmatched": None,
                           "records_unmatched": None}
    if recs is None:
        return row
    free = list(range(len(changes)))
    unmatched_records = 0
    for h in sorted(recs, key=lambda h: float(h["at"])):
        at, to = float(h["at"]), str(h.get("to_cell"))
        hit = next((j for j in free if abs(changes[j][0] - at) <= MATCH_S
                    and (changes[j][1] == to or h.get("kind") == "failure")), None)
        if hit is None:
            unmatched_records += 1
        else:
            free.remove(hit)
    matched = len(changes) - len(free)
    row.update(handovers=len(recs), changes_unmatched=row["cell_changes"] - matched,
               records_unmatched=unmatched_records)
    return row
