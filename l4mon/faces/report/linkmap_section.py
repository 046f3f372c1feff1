"""The link map section: what past drives say about each stretch of road, conditions side
by side.

A map (``l4mon linkmap build``, docs/linkmap.md) holds per cell, link and condition how the
links behaved on past passes. Every stretch is judged here by the hub's own look-ahead rule
with the hub config's ``[linkmap]`` settings (``LookAhead``: threshold, min_passes, measure),
so a stretch the report calls weak is one the live ``weak_link_ahead`` warning warns of, and
junction names and the camera-bitrate advice are the warning's own words.

Conditions are never pooled here, since comparing them is the point: a stretch is judged on
its own condition's passes only, where the live warning falls back to every condition pooled
when its own has too few. Absence is not failure: a condition without passes is "not
mapped", a source without throughput leaves the uplink "not measured", never 0.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Final

from l4mon.config import HubConfig
from l4mon.faces.report.charts import _nice_step
from l4mon.faces.report.differences import Marks, compare
from l4mon.faces.report.inputs import ReportError, condition_label
from l4mon.faces.report.model import Column, LinkMapSection, Table
from telemetry.linkmap import CellStats, LinkMap, read_map
from telemetry.linkmap.ahead import Outlook
from telemetry.linkmap.grid import CellIndex
from telemetry.linkmap.outlook import NEAR_JUNCTION_M, LinkAhead, LookAhead, advice, measure_words
from telemetry.site import DEMO_SITE_PATH, Site, load_site

#: Stretches listed per link and condition in the worst-stretch table.
WORST: Final = 10
#: Rectangles one map may draw: past it, cells are drawn in k×k blocks (a map may hold tens
#: of thousands of cells; the page must stay a few MB at most and print).
MAX_DRAWN: Final = 2_000
#: A block narrower than this is invisible on screen and on paper: coarsen instead.
MIN_BLOCK_PX: Final = 2.0
#: Weak stretches per map that carry their own tooltip; the rest share one path per colour.
MAX_TITLED: Final = 300
PANEL_W, PANEL_H, MAX_CELL_PX = 340.0, 230.0, 30.0
PAD, TOP, BOTTOM = 8.0, 24.0, 40.0
#: ColorBrewer YlOrRd, light to dark: a sequential scale that stays ordered in grey print.
RISK_COLOURS: Final = ("#fed976", "#feb24c", "#fd8d3c", "#e31a1c", "#800026")
THIN_COLOUR: Final = "#adb5bd"
ROUTE_COLOUR: Final = "#dee2e6"
JUNCTION_COLOUR: Final = "#1864ab"

CONDITION, LINK = Column("condition", "Condition", "text"), Column("link", "Link", "text")
NOT_MEASURED_WORDS: Final = "not measured"


def load(path: str) -> LinkMap:
    """The map at ``path``, or a ``ReportError`` naming it: read before any input is scanned,
    so a wrong path fails in a second, not after the report's work."""
    try:
        return read_map(path)
    except (ValueError, OSError, KeyError, TypeError) as error:  # LinkMapError is a ValueError
        reason = str(error)
        for prefix in (f"{path}: ", f"{path.rstrip('/')}: "):
            reason = reason.removeprefix(prefix)
        raise ReportError(f"--linkmap {path}: cannot read the link map: {reason}") from None


def plan(linkmap: LinkMap, given: Site | None, report_site: Site | None) -> Site | None:
    """The site plan to draw junctions from and name stretches by: the one given, else the
    report's own when the map's drives are from that site, else the demo's for its drives."""
    if given is not None:
        return given
    names = {d.site for d in linkmap.drives.values() if d.site}
    if report_site is not None and names == {report_site.name}:
        return report_site
    demo = load_site(DEMO_SITE_PATH)
    return demo if demo.name in names else None


@dataclass(frozen=True)
class _Condition:
    label: str
    #: The map's (weather, light); None: the map holds no drive of it (the report's inputs do).
    key: tuple[str, str] | None


def _conditions(linkmap: LinkMap, report_conditions: list[str],
                order: Callable[[set[str]], list[str]]) -> list[_Condition]:
    """The map's conditions named as the report names them, plus the report's own that the
    map lacks (shown "not mapped": the reader should see the map does not know them)."""
    keys = set(linkmap.conditions()) | {(d.weather, d.light) for d in linkmap.drives.values()}
    labels = {k: condition_label({"weather": k[0], "light": k[1]}) for k in keys}
    clashes = Counter(labels.values())
    by_label: dict[str, tuple[str, str] | None] = {}
    for key, label in labels.items():
        # clear/daylight and cloudy/daylight are both "daylight" to the report, but two sets
        # of rows to the live rule: keep them apart under their tags.
        by_label[label if clashes[label] == 1 else f"{key[0]}-{key[1]}"] = key
    for label in report_conditions:
        if label not in by_label and label not in clashes:
            by_label[label] = None
    return [_Condition(label, by_label[label]) for label in order(set(by_label))]


def _tables(threshold: float, min_passes: int, words: str) -> tuple[Table, Table]:
    summary = Table("linkmap_conditions", "Link map: each link per condition", [
        LINK, CONDITION, Column("status", "Status", "text"),
        Column("stretches_driven", "Stretches passed", "int"),
        Column("stretches_mapped", f"Stretches mapped (≥ {min_passes} passes)", "int"),
        Column("stretches_thin", f"Stretches with too few passes (< {min_passes})", "int"),
        Column("stretches_weak", f"Weak stretches (≥ {threshold:.0%} failing)", "int"),
        Column("weak_share", "Weak share of mapped stretches", "pct", digits=1,
               better="lower", missing="no stretch mapped"),
        Column("passes", "Passes (a link entering a stretch)", "int"),
        Column("drives", "Drives under the condition", "int"),
        Column("time_down_share", "Judged time down or stale", "pct", digits=2,
               better="lower", missing="not judged"),
        Column("outage_starts", "Outage starts", "int"),
        Column("rtt_p95_median_ms", "RTT p95, median stretch", unit="ms", digits=0,
               better="lower", missing=NOT_MEASURED_WORDS),
        Column("rtt_p95_worst_ms", "RTT p95, worst stretch", unit="ms", digits=0,
               better="lower", missing=NOT_MEASURED_WORDS),
        Column("ul_p5_median_kbps", "Usable uplink p5, median stretch", unit="kbit/s",
               digits=0, better="higher", missing=NOT_MEASURED_WORDS),
        Column("ul_p5_worst_kbps", "Usable uplink p5, worst stretch", unit="kbit/s",
               digits=0, better="higher", missing=NOT_MEASURED_WORDS),
    ], note=f"Over the stretches (grid cells) the link was driven through under the "
            f"condition. Mapped: at least {min_passes} passes; weak: at least {threshold:.0%} "
            f"of them {words}. RTT p95 and usable uplink p5 are each mapped stretch's own "
            "percentile, then the median over the stretches (the typical stretch) and the "
            "worst one. Time down: (down + stale) ÷ the time the hub had a verdict.")
    worst = Table("linkmap_worst", "Link map: worst stretches per link and condition", [
        LINK, CONDITION, Column("rank", "#", "int"),
        Column("cell_x", "Cell x", "int"), Column("cell_y", "Cell y", "int"),
        Column("lat", "Lat", digits=5), Column("lon", "Lon", digits=5),
        Column("junction", f"Junction (≤ {NEAR_JUNCTION_M:.0f} m)", "text", missing="—"),
        Column("passes", "Passes", "int"), Column("drives", "Drives", "int"),
        Column("failing_share", "Passes failing", "pct", digits=0),
        Column("down_share", "Judged time down", "pct", digits=0, missing="not judged"),
        Column("outage_starts", "Outage starts", "int"),
        Column("rtt_p95_ms", "RTT p95", unit="ms", digits=0, missing=NOT_MEASURED_WORDS),
        Column("ul_p5_kbps", "Usable UL p5, this link", unit="kbit/s", digits=0,
               missing=NOT_MEASURED_WORDS),
        Column("ul_p5_links_kbps", "Usable UL p5, links together", unit="kbit/s", digits=0,
               missing=NOT_MEASURED_WORDS),
        Column("advice", "Advice", "text", missing=""),
    ], note=f"Mapped stretches that failed on at least one pass, by share failing then "
            f"passes, at most {WORST} per link and condition; position = the cell's centre. "
            f"Usable uplink 0: the link was down on every pass there. "
            f"Links together: each of the map's links' usable uplink p5 there summed (a link "
            f"down on every pass counts 0), as the live warning computes its advice; the "
            f"advice appears where that is under the vehicles' requirement but not near 0 (a "
            f"stretch that carries nothing needs the other link or a stop, not a lower "
            f"bitrate).")
    return summary, worst


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


Judged = tuple[CellIndex, CellStats, float | None]  # a driven cell and its risk (None: thin)


def build_section(linkmap: LinkMap, *, path: str, config: HubConfig, site: Site | None,
                  conditions: list[str], order: Callable[[set[str]], list[str]],
                  baseline: str | None) -> tuple[LinkMapSection, list[Table], Marks]:
    """The section's views, its two tables and their worse/better marks against the
    baseline condition column."""
    settings = config.linkmap
    look = LookAhead(linkmap, settings, site=site)
    rule = look.rule
    words = measure_words(rule.measure)
    required = config.requirements.ul_required_kbps or None
    links = linkmap.links()
    conds = _conditions(linkmap, conditions, order)
    summary, worst = _tables(settings.threshold, settings.min_passes, words)
    groups: dict[tuple[str, str, str], list[tuple[CellIndex, CellStats]]] = defaultdict(list)
    for key, stats in linkmap.items():
        groups[(key[2], key[3], key[4])].append(((key[0], key[1]), stats))
    drives = Counter((d.weather, d.light) for d in linkmap.drives.values())
    # Links whose source reported uplink somewhere: only there does "no usable sample" mean 0.
    ul_links = {key[2] for key, stats in linkmap.rows.items() if stats.ul.n}
    judged: dict[str, list[list[Judged]]] = {}
    for link in links:
        judged[link] = []
        for cond in conds:
            rows = groups.get((link, *cond.key), []) if cond.key else []
            cells = [(cell, s, rule.risk(s)) for cell, s in rows if s.passes > 0]
            judged[link].append(cells)
            if not cells:
                summary.rows.append({"link": link, "condition": cond.label,
                                     "status": "not mapped"})
                continue
            summary.rows.append(_summary_row(link, cond, cells, drives, settings.threshold,
                                             link in ul_links))
            worst.rows += _worst_rows(link, cond, cells, look, links, required,
                                      link in ul_links)
    mapped = {r["condition"] for r in summary.rows if r["status"] == "mapped"}
    base = next((c for c in ("daylight", baseline) if c in mapped),
                next((c.label for c in conds if c.label in mapped), None))
    _, marks = compare([summary], base)
    maps: dict[str, list[str]] = {}
    notes: list[str] = []
    counter = iter(range(1_000_000))  # clip path ids, unique on the page
    for link in links:
        frame = _frame([{c for c, _, _ in cells} for cells in judged[link]])
        if frame.k > 1:
            notes.append(f"{link}: drawn in blocks of {frame.k}×{frame.k} cells "
                         f"({frame.k * linkmap.grid.cell_m:g} m), each coloured by its worst "
                         f"mapped stretch, to keep each map under {MAX_DRAWN:,} shapes; the "
                         "tables count every stretch.")
        maps[link] = [_panel(link, cond.label, cells, frame, linkmap, site, settings.threshold,
                             words, next(counter)) for cond, cells in zip(conds, judged[link],
                                                                         strict=True)]
    section = LinkMapSection(
        path=path, about=_about(linkmap, path, config, site, words, required), links=links,
        conditions=[c.label for c in conds], baseline=base, maps=maps,
        legend=_legend(settings.threshold, settings.min_passes, words, site), notes=notes)
    return section, [summary, worst], marks


def _ul_p5(stats: CellStats, measured: bool) -> float | None:
    """The link's usable uplink p5 in the cell; 0 where it was down on every pass of a
    source that measures uplink (nothing usable, as the live advice counts it); None (not
    measured) where the source reports no throughput."""
    p5 = stats.ul.percentiles(5)[0]
    if p5 is None and measured and stats.passes and stats.passes_down == stats.passes:
        return 0.0
    return p5


def _summary_row(link: str, cond: _Condition, cells: list[Judged],
                 drives: Counter[tuple[str, str]], threshold: float,
                 ul_measured: bool) -> dict[str, object]:
    mapped = [(c, s, r) for c, s, r in cells if r is not None]
    judged_s = sum(s.time_judged_s for _, s, _ in cells)
    down_s = sum(s.time_down_s + s.time_stale_s for _, s, _ in cells)
    rtt = [p for _, s, _ in mapped if (p := s.rtt.percentiles(95)[0]) is not None]
    ul = [p for _, s, _ in mapped if (p := _ul_p5(s, ul_measured)) is not None]
    weak = sum(1 for _, _, r in mapped if r is not None and r >= threshold)
    return {
        "link": link, "condition": cond.label, "status": "mapped",
        "stretches_driven": len(cells), "stretches_mapped": len(mapped),
        "stretches_thin": len(cells) - len(mapped), "stretches_weak": weak,
        "weak_share": weak / len(mapped) if mapped else None,
        "passes": sum(s.passes for _, s, _ in cells),
        "drives": drives.get(cond.key) if cond.key else None,
        "time_down_share": down_s / judged_s if judged_s > 0 else None,
        "outage_starts": sum(s.outage_starts for _, s, _ in cells),
        "rtt_p95_median_ms": _median(rtt), "rtt_p95_worst_ms": max(rtt, default=None),
        "ul_p5_median_kbps": _median(ul), "ul_p5_worst_kbps": min(ul, default=None)}


def _worst_rows(link: str, cond: _Condition, cells: list[Judged], look: LookAhead,
                links: list[str], required: float | None,
                ul_measured: bool) -> list[dict[str, object]]:
    assert cond.key is not None
    failing = [(c, s, r) for c, s, r in cells if r]
    failing.sort(key=lambda x: (-(x[2] or 0.0), -x[1].passes, -(x[1].share_down() or 0.0),
                                x[0]))
    # The vehicle's links ride together: judged as the warning judges them, under this
    # condition (or every condition pooled where this one has too few passes there).
    ahead = LinkAhead(link, Outlook(None, True), 0.0, cond.key[0], cond.key[1], tuple(links))
    out = []
    for rank, (cell, s, risk) in enumerate(failing[:WORST], 1):
        lat, lon = look.linkmap.grid.centre(cell)
        place = look.place(cell)
        together = look.usable_p05_kbps(cell, ahead)
        out.append({
            "link": link, "condition": cond.label, "rank": rank, "cell_x": cell[0],
            "cell_y": cell[1], "lat": lat, "lon": lon, "junction": place,
            "passes": s.passes, "drives": s.drive_count, "failing_share": risk,
            "down_share": s.share_down(), "outage_starts": s.outage_starts,
            "rtt_p95_ms": s.rtt.percentiles(95)[0], "ul_p5_kbps": _ul_p5(s, ul_measured),
            "ul_p5_links_kbps": together, "advice": _action(together, required, place)})
    return out


def _action(together: float | None, required: float | None, place: str | None) -> str | None:
    """The live warning's advice without its figures, which the row shows in columns."""
    text = advice(together, required, place)
    return None if text is None else (text.partition(": ")[2] or text)


def _about(linkmap: LinkMap, path: str, config: HubConfig, site: Site | None, words: str,
           required: float | None) -> str:
    s = config.linkmap
    per = Counter(condition_label({"weather": d.weather, "light": d.light})
                  for d in linkmap.drives.values())
    drives = ", ".join(f"{n} {c}" for c, n in sorted(per.items())) or "none"
    where = (f"junctions from the site plan {site.name} (a stretch is named by the junction "
             f"it lies in or within {NEAR_JUNCTION_M:.0f} m of)") if site else \
        "no site plan known for the map's drives, so no junction names"
    need = f"{required:,.0f} kbit/s" if required else "none ([requirements] ul_required_kbps 0)"
    return (f"Map {path}: {len(linkmap.drives)} drive(s) ({drives}), {linkmap.grid.cell_m:g} m "
            f"cells, {len(linkmap.rows):,} rows (cell, link, condition); {where}. A stretch "
            f"(one cell) is mapped for a link under a condition with at least {s.min_passes} "
            f"past passes there, and weak when at least {s.threshold:.0%} of them were "
            f"{words} (measure {s.measure}): the rule and [linkmap] settings of the live "
            f"weak_link_ahead warning. Here each condition is judged on its own passes; the "
            f"live warning falls back to every condition pooled where its own has too few. "
            f"Uplink requirement: {need}.")


# -- maps ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Frame:
    """One link's drawing frame: the same extent and scale for every condition's map."""

    x0: int  # first cell column, aligned to k
    y1: int  # last cell row (the top edge), aligned to k
    nx: int  # columns drawn
    ny: int
    k: int  # cells per block side
    px: float  # pixels per cell

    @property
    def width(self) -> float:
        return self.nx * self.px


def _frame(per_condition: list[set[CellIndex]]) -> _Frame:
    """The extent of every condition's cells, one cell of margin, and the smallest block
    size that keeps each map under ``MAX_DRAWN`` shapes of at least ``MIN_BLOCK_PX``."""
    every = set().union(*per_condition)
    if not every:
        return _Frame(0, 0, 1, 1, 1, MAX_CELL_PX)
    xs, ys = [c[0] for c in every], [c[1] for c in every]
    lo_x, hi_x, lo_y, hi_y = min(xs) - 1, max(xs) + 1, min(ys) - 1, max(ys) + 1
    busiest = max(len(s) for s in per_condition)
    k = max(1, math.ceil(math.sqrt(busiest / MAX_DRAWN)))
    while True:
        x0, y0 = math.floor(lo_x / k) * k, math.floor(lo_y / k) * k
        x1, y1 = (math.floor(hi_x / k) + 1) * k - 1, (math.floor(hi_y / k) + 1) * k - 1
        nx, ny = x1 - x0 + 1, y1 - y0 + 1
        px = min(PANEL_W / nx, PANEL_H / ny, MAX_CELL_PX)
        blocks = max(len({(x // k, y // k) for x, y in s}) for s in per_condition)
        if blocks <= MAX_DRAWN and px * k >= MIN_BLOCK_PX:
            return _Frame(x0, y1, nx, ny, k, px)
        k += 1


def _colour(risk: float | None, threshold: float) -> str:
    if risk is None:
        return THIN_COLOUR
    return RISK_COLOURS[min(len(RISK_COLOURS) - 1,
                            max(0, bisect_right(_edges(threshold), risk) - 1))]


def _edges(threshold: float) -> list[float]:
    """Lower bounds of the colour classes: the weak line (``threshold``) is a class edge, so
    the two darkest colours are exactly the stretches the warning calls weak."""
    t = threshold
    return [0.0, t / 5, t / 2, t, t + (1 - t) / 2]


def _panel(link: str, condition: str, cells: list[Judged], frame: _Frame, linkmap: LinkMap,
           site: Site | None, threshold: float, words: str, serial: int) -> str:
    """One link's map under one condition: the route, the cells coloured by risk, the
    junctions, north, a scale bar and the counts."""
    cm, k, px = linkmap.grid.cell_m, frame.k, frame.px
    width, height = frame.width + 2 * PAD, TOP + frame.ny * px + BOTTOM
    area_h = frame.ny * px
    clip = f"lm{serial}"
    body = [f'<text x="{PAD}" y="15" class="h">{escape(link)} · {escape(condition)}</text>',
            f'<defs><clipPath id="{clip}"><rect x="{PAD}" y="{TOP}" width="{frame.width:.1f}" '
            f'height="{area_h:.1f}"/></clipPath></defs>',
            f'<rect x="{PAD}" y="{TOP}" width="{frame.width:.1f}" height="{area_h:.1f}" '
            f'class="frame"/>', f'<g clip-path="url(#{clip})">']
    if site is not None:
        body += _panel_routes(site, frame, linkmap)
    body += _panel_cells(cells, frame, threshold, words)
    if not cells:
        body.append(f'<text x="{PAD + frame.width / 2:.1f}" y="{TOP + area_h / 2:.1f}" '
                    f'class="t" text-anchor="middle">not mapped: no passes under '
                    f'{escape(condition)}</text>')
    if site is not None:
        body += _panel_junctions(site, frame, linkmap)
    body.append("</g>")
    counts = _panel_counts(cells, threshold, k)
    body += _north_and_scale(frame, cm, counts)
    label_text = (f"Link map of {link} under {condition}: {counts}; cells of {cm:g} m coloured "
                  f"by the share of past passes {words}")
    return (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" class="lmap" '
            f'role="img" aria-label="{escape(label_text)}">' + "".join(body) + "</svg>")


def _panel_at(frame: _Frame, cm: float, x_m: float, y_m: float) -> tuple[float, float]:
    """Where a point of the map's metre grid is drawn in a panel."""
    px = frame.px
    return PAD + (x_m / cm - frame.x0) * px, TOP + (frame.y1 + 1 - y_m / cm) * px


def _panel_routes(site: Site, frame: _Frame, linkmap: LinkMap) -> list[str]:
    cm, frame_xy = linkmap.grid.cell_m, linkmap.grid.frame
    road = max(2.0, min(0.7 * frame.px * frame.k, 8.0))
    body = []
    for route in site.routes:
        pts = " ".join("{:.1f},{:.1f}".format(*_panel_at(frame, cm,
                                                         *frame_xy.to_xy(lat, lon)))
                       for lat, lon in (*route.waypoints, route.waypoints[0]))
        body.append(f'<polyline points="{pts}" fill="none" stroke="{ROUTE_COLOUR}" '
                    f'stroke-width="{road:.1f}" stroke-linejoin="round"/>')
    return body


def _panel_cells(cells: list[Judged], frame: _Frame, threshold: float, words: str) -> list[str]:
    """The cells in blocks of k×k, each coloured by its riskiest cell: one path per colour,
    and the first ``MAX_TITLED`` weak blocks each their own titled square."""
    k, px = frame.k, frame.px
    blocks: dict[CellIndex, list[float | None]] = defaultdict(list)
    for (x, y), _, risk in cells:
        blocks[(x // k, y // k)].append(risk)
    paths: dict[str, list[str]] = defaultdict(list)
    titled = []
    size = k * px
    for (bx, by), risks in sorted(blocks.items()):
        known = [r for r in risks if r is not None]
        risk = max(known) if known else None
        x, y = PAD + (bx * k - frame.x0) * px, TOP + (frame.y1 - (by * k + k - 1)) * px
        colour = _colour(risk, threshold)
        if risk is not None and risk >= threshold and len(titled) < MAX_TITLED:
            edge = ' stroke="#212529" stroke-width="0.7"' if size >= 5 else ""
            titled.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{size:.1f}" '
                          f'height="{size:.1f}" fill="{colour}"{edge}><title>{risk:.0%} of '
                          f'passes {escape(words)}</title></rect>')
        else:
            paths[colour].append(f"M{x:.1f},{y:.1f}h{size:.1f}v{size:.1f}h{-size:.1f}z")
    return [f'<path d="{"".join(d)}" fill="{colour}"/>' for colour, d in paths.items()] + titled


def _panel_junctions(site: Site, frame: _Frame, linkmap: LinkMap) -> list[str]:
    """Each junction inside the panel: its zone and name."""
    cm, frame_xy, px = linkmap.grid.cell_m, linkmap.grid.frame, frame.px
    area_h = frame.ny * px
    body = []
    for ix in site.intersections:
        cx, cy = _panel_at(frame, cm, *frame_xy.to_xy(*ix.centre))
        if not (PAD <= cx <= PAD + frame.width and TOP <= cy <= TOP + area_h):
            continue
        r = max(3.0, (ix.radius_m or 30.0) / cm * px)
        ly = cy - r - 3 if cy - r - 12 > TOP else cy + r + 10
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="none" '
                    f'stroke="{JUNCTION_COLOUR}" stroke-width="1.4" '
                    f'stroke-dasharray="3 2"/><text x="{cx:.1f}" y="{ly:.1f}" class="s" '
                    f'text-anchor="middle" style="paint-order:stroke;stroke:#fff;'
                    f'stroke-width:3px">{escape(ix.name)}</text>')
    return body


def _panel_counts(cells: list[Judged], threshold: float, k: int) -> str:
    """How many cells are weak, mapped, and too thinly passed to say."""
    weak = mapped = thin = 0
    for _, _, risk in cells:
        if risk is None:
            thin += 1
        else:
            mapped += 1
            weak += 1 if risk >= threshold else 0
    counts = (f"{weak} weak of {mapped} mapped · {thin} with too few passes" if cells
              else "not mapped")
    if k > 1:
        counts += f" · {k}×{k}-cell blocks"
    return counts


def _north_and_scale(frame: _Frame, cm: float, counts: str) -> list[str]:
    """North is up: say so, since a grid of squares has no other cue; then a scale bar and
    the counts under the map."""
    px, area_h = frame.px, frame.ny * frame.px
    nx_ = PAD + frame.width - 10
    body = [f'<path d="M{nx_:.1f},{TOP + 4} l4,9 h-8 z" fill="#495057"/>'
            f'<text x="{nx_:.1f}" y="{TOP + 22}" class="s" text-anchor="middle">N</text>']
    metres = _nice_step(frame.nx * cm / 4)
    bar = metres / cm * px
    yb = TOP + area_h + 14
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    body.append(f'<path d="M{PAD},{yb - 4} v4 h{bar:.1f} v-4" fill="none" stroke="#212529" '
                f'stroke-width="1.4"/><text x="{PAD + bar + 5:.1f}" y="{yb + 1}" '
                f'class="s">{label}</text>')
    body.append(f'<text x="{PAD}" y="{yb + 18}" class="s">{escape(counts)}</text>')
    return body


def _legend(threshold: float, min_passes: int, words: str, site: Site | None) -> str:
    edges = [*_edges(threshold), 1.0]
    items: list[tuple[str, str]] = []
    for i, colour in enumerate(RISK_COLOURS):
        lo, hi = edges[i], edges[i + 1]
        if hi <= lo and i < len(RISK_COLOURS) - 1:
            continue
        text = f"≥ {lo:.0%}" if i == len(RISK_COLOURS) - 1 else f"{lo:.0%}–{hi:.0%}"
        items.append((colour, text + (" weak" if lo >= threshold else "")))
    items.append((THIN_COLOUR, f"< {min_passes} passes"))
    title = f"Share of past passes {words} (weak: ≥ {threshold:.0%})"
    body = [f'<text x="4" y="14" class="t">{escape(title)}</text>']
    x = 4.0
    for colour, text in items:
        edge = ' stroke="#212529" stroke-width="0.7"' if "weak" in text else ""
        body.append(f'<rect x="{x:.0f}" y="22" width="14" height="12" fill="{colour}"{edge}/>'
                    f'<text x="{x + 18:.0f}" y="32" class="t">{escape(text)}</text>')
        x += 34 + 7.0 * len(text)
    if site is not None:
        body.append(f'<circle cx="{x + 7:.0f}" cy="28" r="6" fill="none" '
                    f'stroke="{JUNCTION_COLOUR}" stroke-width="1.4" stroke-dasharray="3 2"/>'
                    f'<text x="{x + 18:.0f}" y="32" class="t">junction</text>')
        x += 80
        body.append(f'<line x1="{x:.0f}" y1="28" x2="{x + 20:.0f}" y2="28" '
                    f'stroke="{ROUTE_COLOUR}" stroke-width="5"/><text x="{x + 26:.0f}" '
                    f'y="32" class="t">site route</text>')
        x += 100
    width = max(x, 7.0 * len(title))
    return (f'<svg viewBox="0 0 {width:.0f} 40" width="{width:.0f}" class="lmap-legend" '
            f'role="img" aria-label="{escape(title)}">' + "".join(body) + "</svg>")
