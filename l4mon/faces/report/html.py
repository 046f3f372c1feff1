"""The report as one self-contained HTML page: inline CSS and SVG, no script, prints well."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from l4mon.faces.report import drive_html
from l4mon.faces.report.model import Column, Report, Table

CSS = """
:root { --ok:#2b8a3e; --bad:#c92a2a; --muted:#495057; }
* { box-sizing: border-box; }
body { font: 13px/1.45 "DejaVu Sans", "Noto Sans", Arial, sans-serif; color:#212529;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
  border-bottom: 2px solid #dee2e6; padding-bottom: 3px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.meta { color: var(--muted); }
.verdict { border: 3px solid; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
.verdict.pass { border-color: var(--ok); background: #ebfbee; }
.verdict.fail { border-color: var(--bad); background: #fff5f5; }
.verdict.not-graded { border-color: #adb5bd; background: #f8f9fa; }
.verdict b.big { font-size: 20px; letter-spacing: .04em; }
table { border-collapse: collapse; margin: 6px 0 4px; width: 100%; font-size: 12px; }
th, td { border: 1px solid #dee2e6; padding: 3px 6px; vertical-align: top; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th { background: #f1f3f5; text-align: left; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.worse { background: #ffe3e3; color: #a61e1e; font-weight: 600; }
td.better { background: #d3f9d8; color: #1b5e20; }
td.pass { color: var(--ok); font-weight: 700; } td.fail { color: var(--bad); font-weight: 700; }
td.too-little-data { color: #e67700; font-weight: 700; }
td.src { font-size: 11px; color: var(--muted); max-width: 360px; }
.note { color: var(--muted); font-size: 11.5px; margin: 2px 0 10px; }
.empty { color: var(--muted); font-style: italic; }
svg.chart { max-width: 760px; display: block; margin: 8px 0 14px; }
svg .h { font: 600 13px sans-serif; } svg .t { font: 11px sans-serif; fill: #343a40; }
svg .s { font: 9px sans-serif; fill: #495057; } svg .g { stroke: #e9ecef; stroke-width: 1; }
svg .frame { fill: none; stroke: #ced4da; }
.legend span { display:inline-block; padding: 0 6px; margin-right: 6px; }
.lmaps { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 12px; }
svg.lmap { max-width: 100%; height: auto; } svg.lmap-legend { max-width: 100%; height: auto; }
td.nm { color: var(--muted); font-style: italic; text-align: center; vertical-align: middle; }
th.base { background: #e7f5ff; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5px; }
  table { font-size: 9.5px; page-break-inside: auto; } tr { page-break-inside: avoid; }
  h2 { page-break-after: avoid; } svg.chart, .verdict { page-break-inside: avoid; }
  .lmaps { page-break-inside: avoid; } svg.lmap { max-width: 48%; }
  td.worse, td.better, .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _time(t: float | None) -> str:
    if t is None:
        return "—"
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(t: float | None) -> str:
    if t is None:
        return "—"
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt(col: Column, value: Any) -> str:
    return escape(col.show(value))


def table_html(report: Report, table: Table, *, skip: tuple[str, ...] = ()) -> str:
    if not table.rows:
        return f'<p class="empty">{escape(table.title)}: nothing to show.</p>'
    cols = [c for c in table.columns if c.key not in skip]
    head = "".join(f"<th>{escape(c.title)}{' (' + escape(c.unit) + ')' if c.unit else ''}"
                   "</th>" for c in cols)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for c in cols:
            # "_shown" columns are numbers already formatted by their source table
            classes = [] if c.kind == "text" and not c.key.endswith("_shown") else ["n"]
            mark = report.marks.get((table.name, i, c.key))
            if mark:
                classes.append(mark)
            if c.key == "result":
                classes.append(str(row.get("result")).replace(" ", "-"))
            if c.key == "source":
                classes.append("src")
            if table.name == "differences" and c.key == "flag":
                classes.append(str(row.get("flag")))
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{fmt(c, row.get(c.key))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{note}")


#: Per-vehicle rows shown on the page below the matrix (all of them are in budgets.csv).
SHOWN_VEHICLE_ROWS = 60


def budget_matrix(report: Report) -> str:
    """One row per budget, one column per condition: the result with how many vehicles met,
    missed or could not be graded; then the vehicles that did not pass, each with its own
    figures. Each source is listed once below."""
    rows = report.tables["budget_summary"].rows
    if not rows:
        return '<p class="empty">No budgets graded: no vehicles in the inputs.</p>'
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    at = {(r["budget"], r["condition"]): r for r in rows}
    sources = {r["budget"]: r["source"] for r in report.tables["budgets"].rows}
    refs: dict[str, int] = {}
    head = "".join(f"<th>{escape(c)}</th>" for c in conditions)
    body = []
    for b in dict.fromkeys(r["budget"] for r in rows):
        first = next(r for r in rows if r["budget"] == b)
        ref = refs.setdefault(sources.get(b, ""), len(refs) + 1)
        cells = []
        for c in conditions:
            r = at.get((b, c))
            if r is None:
                cells.append('<td class="n">—</td>')
                continue
            counts = (f"{r['passed']} of {r['vehicles']} vehicles met"
                      + (f", {r['failed']} missed" if r["failed"] else "")
                      + (f", {r['too_little']} too little data" if r["too_little"] else "")
                      + (f", {r['not_graded']} N/A" if r["not_graded"] else ""))
            why = f"<br><small>{escape(r['detail'])}</small>" if r["detail"] else ""
            cells.append(f'<td class="n {escape(r["result"].replace(" ", "-"))}">'
                         f"<b>{escape(r['result'].upper())}</b><br>{escape(counts)}{why}</td>")
        body.append(f"<tr><td><b>{escape(b)}</b> [{ref}]<br>{escape(first['requirement'])}"
                    f"</td><td>{escape(first['binding'])}</td>{''.join(cells)}</tr>")
    ref_list = "".join(f"<li>[{n}] {escape(s)}</li>" for s, n in refs.items())
    matrix = (f"<table><caption>{escape(report.tables['budget_summary'].title)}</caption>"
              f"<thead><tr><th>Budget</th><th>Kind</th>{head}</tr></thead><tbody>"
              f"{''.join(body)}</tbody></table>"
              f'<p class="note">{escape(report.tables["budget_summary"].note)}</p>'
              f'<ol class="note" style="list-style:none;padding-left:0">{ref_list}</ol>')
    return matrix + _vehicle_exceptions(report)


def _vehicle_exceptions(report: Report) -> str:
    """The site budgets' per-vehicle rows that did not pass: who, on which figures, why."""
    table = report.tables["budgets"]
    keep = [r for r in table.rows if r["binding"] == "site" and r["result"] != "pass"]
    if not keep:
        return ('<p class="note">Every vehicle graded met every site budget in every '
                "condition (per-vehicle rows: budgets.csv).</p>")
    shown = Table(table.name, "Site budgets: vehicles that did not pass", [
        c for c in table.columns if c.key not in ("source", "binding", "value")],
        keep[:SHOWN_VEHICLE_ROWS], note=table.note + (
            f" {len(keep) - SHOWN_VEHICLE_ROWS:,} more rows in budgets.csv."
            if len(keep) > SHOWN_VEHICLE_ROWS else ""))
    return table_html(report, shown)


def _summary(report: Report) -> str:
    cls = report.verdict.replace(" ", "-")
    word = {"pass": "PASS", "fail": "FAIL", "not graded": "NOT GRADED"}[report.verdict]
    items = "".join(f"<li>{escape(d)}</li>" for d in report.verdict_detail)
    lat = report.tables["latency"].rows
    vehicles = {r["condition"]: r for r in report.tables["vehicle_availability"].rows}
    pct = Column("x", "", "pct", digits=3)
    rows = []
    for cond in report.conditions:
        links = [r for r in lat if r["condition"] == cond]
        figures = "; ".join(
            f"{r['link']}: RTT p95 {fmt(Column('x', ''), r['rtt_p95_ms'])} ms "
            f"({r['probes']:,} probes), loss "
            f"{fmt(Column('x', '', 'pct', digits=3), r['loss_ratio'])} "
            f"({r['samples']:,} samples, {r['vehicles']} vehicles, {r['hours']:.2f} h)"
            for r in links)
        v = vehicles.get(cond)
        reach = fmt(pct, v["availability"]) if v else "—"
        uplink = fmt(pct, v["ul_requirement_met"]) if v else "—"
        rows.append(f"<tr><td>{escape(cond)}</td><td>{escape(figures) or '—'}</td>"
                    f'<td class="n">{reach}</td><td class="n">{uplink}</td></tr>')
    table = ("<table><thead><tr><th>Condition</th><th>Links</th><th>Vehicles with a usable "
             "link</th><th>Usable links' uplink ≥ requirement</th></tr></thead><tbody>"
             f"{''.join(rows)}</tbody></table>")
    return (f'<div class="verdict {cls}"><b class="big">{word}</b> — the site\'s own budgets '
            "([links] and [requirements] of the hub config), held against every vehicle in "
            "every condition: a vehicle meets a link budget when one of its own links does, "
            "the uplink requirement when its usable links together carry it (as the alert "
            "rule judges it), availability on its own time in service. Vehicles' figures are "
            "never pooled."
            f'{"<ul>" + items + "</ul>" if items else ""}</div>{table}')


def linkmap_html(report: Report) -> str:
    """Per link: its figures with the conditions side by side, a map per condition at one
    scale, then its worst stretches; a condition without passes says "not mapped"."""
    sec = report.linkmap
    if sec is None:
        return ""
    summary, worst = report.tables["linkmap_conditions"], report.tables["linkmap_worst"]
    figures = [c for c in summary.columns if c.key not in ("link", "condition", "status")]
    parts = [f"<p>{escape(sec.about)}</p>", sec.legend]
    for link in sec.links:
        rows = {r["condition"]: (i, r) for i, r in enumerate(summary.rows) if r["link"] == link}
        head = "".join(f'<th{" class=base" if c == sec.baseline else ""}>{escape(c)}'
                       f'{" (baseline)" if c == sec.baseline else ""}</th>'
                       for c in sec.conditions)
        body = []
        for j, col in enumerate(figures):
            cells = []
            for cond in sec.conditions:
                i, row = rows[cond]
                if row["status"] != "mapped":
                    if j == 0:
                        cells.append(f'<td class="nm" rowspan="{len(figures)}">not mapped: '
                                     f"no passes of {escape(link)} under {escape(cond)}</td>")
                    continue
                mark = report.marks.get((summary.name, i, col.key))
                cells.append(f'<td class="n{" " + mark if mark else ""}">'
                             f"{fmt(col, row.get(col.key))}</td>")
            unit = f" ({escape(col.unit)})" if col.unit else ""
            body.append(f"<tr><th>{escape(col.title)}{unit}</th>{''.join(cells)}</tr>")
        parts.append(f"<h3>{escape(link)}</h3><table><caption>{escape(link)}: past passes "
                     f"per condition, side by side</caption><thead><tr><th>Figure</th>{head}"
                     f"</tr></thead><tbody>{''.join(body)}</tbody></table>")
        parts.append('<div class="lmaps">' + "".join(sec.maps.get(link, [])) + "</div>")
        mine = Table(worst.name, f"{link}: worst stretches", [c for c in worst.columns
                                                              if c.key != "link"],
                     [r for r in worst.rows if r["link"] == link])
        parts.append(table_html(report, mine, skip=("cell_x", "cell_y")) if mine.rows else
                     f'<p class="empty">{escape(link)}: no mapped stretch failed on a past '
                     "pass.</p>")
    parts.append(f'<p class="note">{escape(summary.note)} {escape(worst.note)}</p>')
    if sec.baseline:
        parts.append(f'<p class="note">Cells coloured red (worse) or green (better): a change '
                     f"of ≥ 10 % against {escape(sec.baseline)} on the same link.</p>")
    parts += [f'<p class="note">{escape(n)}</p>' for n in sec.notes]
    return "".join(parts)


def render(report: Report) -> str:
    c = report.charts
    t = report.tables
    start, end = report.period
    period = "all data" if start is None and end is None else f"{_time(start)} – {_time(end)}"
    drives = f"{report.sessions} drive{'s' if report.sessions != 1 else ''}, " \
        if report.sessions else ""
    data = (f"data {_day(report.data_start)} – {_day(report.data_end)} ({drives}"
            f"{report.hours:.2f} h of driving)") if report.data_start is not None else "no data"
    timelines = "".join(v for k, v in sorted(c.items()) if k.startswith("timeline_"))
    sections = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="meta">Site <b>{escape(report.site)}</b> · {escape(data)} · period '
        f"{escape(period)} · "
        f"conditions {escape(', '.join(report.conditions) or '—')} · generated "
        f"{_time(report.generated_at)} by l4mon</p>",
        "<h2>1. Summary</h2>", _summary(report),
        "<h2>2. Budgets</h2>", budget_matrix(report),
        "<h2>3. Links: latency, jitter, loss</h2>", table_html(report, t["latency"]),
        c.get("rtt_cdf", ""), c.get("delay_cdf", ""),
        "<h3>Throughput</h3>", table_html(report, t["throughput"]),
        "<h2>4. Availability</h2>", table_html(report, t["availability"]),
        c.get("availability_bars", ""), table_html(report, t["vehicle_availability"]),
        timelines or '<p class="empty">No availability timeline: the state timeline exists '
        "only for logs the report replays itself.</p>",
        "<h2>5. Handovers per intersection</h2>", table_html(report, t["handovers"]),
        c.get("handover_map", ""),
        table_html(report, t["intersection_links"]) if t["intersection_links"].rows else "",
        "<h2>6. V2I delivery</h2>", table_html(report, t["v2i"]),
        "<h2>7. Alerts</h2>", table_html(report, t["alerts"]),
        table_html(report, t["false_alarms"]),
        table_html(report, t["command_times"]) if t.get("command_times") and
        t["command_times"].rows else "",
        f"<h2>8. Differences by condition (against {escape(report.baseline or '—')})</h2>",
        table_html(report, t["differences"], skip=("baseline", "value")),
        *(["<h2>9. Link map: past drives per stretch of road</h2>", linkmap_html(report)]
          if report.linkmap else []),
        f"<h2>{10 if report.linkmap else 9}. Drive-test views: route, cells, drives, "
        "events</h2>", drive_html.section(report, table_html),
        f"<h2>{11 if report.linkmap else 10}. Inputs and method</h2>",
        table_html(report, t["inputs"]),
        "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>"
        if report.notes else "",
        '<p class="note">Raw-sample figures (latency, jitter, loss, throughput, V2I) are counted '
        "from the drive logs' Parquet; link states, handovers and alerts come from the live "
        "pipeline (a replay, or the given results.json). See docs/reports.md.</p>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(report.title)} — {escape(report.site)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n")
