"""The drive-test views' section of the HTML page: the route per measure and condition (the
measure chosen with radio buttons, no script), the per-cell table, each drive over time, its
events and its cell changes beside its handover records. Long lists are cut with a pointer to
their CSV file, which holds every row."""

from __future__ import annotations

from html import escape

from l4mon.faces.report.drive_data import MEASURES
from l4mon.faces.report.drive_views import CELLS_SHOWN, DRIVES_DRAWN, EVENTS_SHOWN
from l4mon.faces.report.model import Report, Table

CSS = """
.measures input { position: absolute; opacity: 0; }
.measures label { display: inline-block; padding: 2px 10px; margin: 0 4px 6px 0;
  border: 1px solid #adb5bd; border-radius: 12px; cursor: pointer; }
.measures .mview { display: none; }
.rmaps { display: flex; flex-wrap: wrap; gap: 6px 14px; }
svg.rmap, svg.rlegend { height: auto; max-width: 100%; }
@media print { .measures .mview { display: block; } .measures label { display: none; } }
"""


def _css(measures: list[str]) -> str:
    shown = ", ".join(f"#m-{m}:checked ~ .mv-{m}" for m in measures)
    picked = ", ".join(f"#m-{m}:checked + label" for m in measures)
    return (CSS + (f"{shown} {{ display: block; }}" if shown else "")
            + (f"{picked} {{ background: #1864ab; color: #fff; }}" if picked else ""))


def _capped(report: Report, table: Table, rows: list[dict[str, object]], shown: int,
            table_html: object) -> str:
    cut = Table(table.name, table.title, table.columns, rows[:shown], note=table.note + (
        f" {len(rows) - shown:,} more in {table.name}.csv." if len(rows) > shown else ""))
    return table_html(report, cut)  # type: ignore[operator, no-any-return]


def section(report: Report, table_html: object) -> str:
    """The section's HTML; ``table_html`` is html.table_html (passed in: no import cycle)."""
    t, c = report.tables, report.charts
    if "cells" not in t:
        return ""
    measures = [m for m in MEASURES if f"route_legend::{m}" in c]
    parts = [f"<style>{_css(measures)}</style>", "<h3>The route, coloured by a measure</h3>"]
    if measures:
        views = []
        for n, m in enumerate(measures):
            label = MEASURES[m][1]
            maps = "".join(c.get(f"route::{m}::{cond}", "") for cond in report.conditions)
            views.append(f'<input type="radio" name="measure" id="m-{m}"'
                         f'{" checked" if n == 0 else ""}><label for="m-{m}">'
                         f"{escape(label)}</label>")
            views.append(f'<div class="mview mv-{m}">{c[f"route_legend::{m}"]}'
                         f'<div class="rmaps">{maps}</div></div>')
        # the inputs first, then the views: the CSS picks a view by its input (~)
        inputs = "".join(v for v in views if v.startswith("<input"))
        blocks = "".join(v for v in views if not v.startswith("<input"))
        parts.append(f'<div class="measures">{inputs}{blocks}</div>')
        parts.append(f'<p class="note">{escape(t["route"].note)} Every square: route.csv.</p>')
    else:
        parts.append('<p class="empty">No route: no link sample had a position.</p>')
    parts.append(_capped(report, t["cells"], t["cells"].rows, CELLS_SHOWN, table_html))
    parts.append("<h3>Signal and RTT over time, per drive</h3>")
    drawn = [v for k, v in sorted(c.items(), key=lambda kv: kv[0]) if k.startswith("drive::")]
    drives = list(dict.fromkeys(r["drive"] for r in t["cell_changes"].rows))
    parts += drawn
    if len(drives) > DRIVES_DRAWN:
        parts.append(f'<p class="note">{len(drives) - DRIVES_DRAWN:,} more drives in '
                     "series.csv.</p>")
    parts.append(f'<p class="note">{escape(t["series"].note)} Events are marked as ticks '
                 "(cell change, gap, handover records by kind).</p>")
    parts.append("<h3>Events per drive</h3>")
    events = t["events"]
    zones = sorted({str(r["zone"]) for r in events.rows})
    if zones:
        parts.append('<p class="note">Wall clock in ' + escape(", ".join(zones)) + " ("
                     "the import's time zone where the log names one, UTC otherwise).</p>")
    for drive in drives:
        rows = [r for r in events.rows if r["drive"] == drive]
        if rows:
            mine = Table(events.name, f"Events · {drive}", [
                col for col in events.columns if col.key not in ("drive", "vehicle", "zone")])
            parts.append(_capped(report, mine, rows, EVENTS_SHOWN, table_html))
    if not events.rows:
        parts.append('<p class="empty">No events: no cell change, gap or handover record.</p>')
    parts.append("<h3>Cell changes beside handover records</h3>")
    parts.append(_capped(report, t["cell_changes"], t["cell_changes"].rows, CELLS_SHOWN,
                         table_html))
    return "".join(parts)
