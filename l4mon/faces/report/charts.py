"""Charts as inline SVG: readable without JavaScript or the internet, and sharp in print.

Small hand-written plots (no plotting library: nothing to install, nothing fetched, and the
output is a few kB of text that diff and grep can read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from l4mon.faces.report.histogram import Histogram
from telemetry.site import LocalFrame, Site

W, H = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 58, 170, 26, 40
LINK_COLOURS = {"l5g": "#1864ab", "lte": "#d9480f"}
OTHER_COLOURS = ["#2b8a3e", "#862e9c", "#5c940d", "#495057"]
DASHES = {"daylight": "", "night": "7 4", "snow-daylight": "2 3", "snow": "2 3",
          "snow-night": "9 3 2 3"}
STATE_COLOURS = {"ok": "#69db7c", "degraded": "#ffc078", "down": "#e03131",
                 "unknown": "#ced4da"}
KIND_COLOURS = {"success": "#2b8a3e", "ping_pong": "#f08c00", "failure": "#e03131",
                "too_frequent": "#862e9c"}


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    dash: str
    points: list[tuple[float, float]]


def link_colour(link: str, order: Sequence[str] = ()) -> str:
    if link in LINK_COLOURS:
        return LINK_COLOURS[link]
    i = list(order).index(link) if link in order else abs(hash(link))
    return OTHER_COLOURS[i % len(OTHER_COLOURS)]


def dash_for(condition: str, conditions: Sequence[str]) -> str:
    if condition in DASHES:
        return DASHES[condition]
    i = list(conditions).index(condition) if condition in conditions else 0
    return ["", "7 4", "2 3", "9 3 2 3", "4 2"][i % 5]


def cdf_points(h: Histogram) -> list[tuple[float, float]]:
    """The distribution at 111 quantiles, denser in the tail where budgets are judged."""
    qs = np.concatenate([np.linspace(0.0, 0.99, 100), 1 - np.logspace(-2.2, -3, 10),
                         [1.0]]).tolist()
    return [(x, q) for x, q in zip(h.quantiles(qs), qs, strict=True) if x is not None]


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="{escape(label)}" class="chart">'
            + "".join(body) + "</svg>")


def _legend(items: list[tuple[str, str, str]], x: float, y: float) -> list[str]:
    out = []
    for i, (label, colour, dash) in enumerate(items):
        yy = y + i * 16
        out.append(f'<line x1="{x}" y1="{yy}" x2="{x + 24}" y2="{yy}" stroke="{colour}" '
                   f'stroke-width="2.2" stroke-dasharray="{dash}"/>'
                   f'<text x="{x + 30}" y="{yy + 4}" class="t">{escape(label)}</text>')
    return out


def cdf_chart(series: list[Series], *, title: str, unit: str, log_x: bool) -> str:
    xs = [x for s in series for x, _ in s.points]
    if not xs:
        return ""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    if log_x:
        lo = 10 ** math.floor(math.log10(max(min(x for x in xs if x > 0) if any(
            x > 0 for x in xs) else 1.0, 0.1)))
        hi = 10 ** math.ceil(math.log10(max(*xs, lo * 10)))

        def fx(x: float) -> float:
            return LEFT + pw * (math.log10(max(x, lo)) - math.log10(lo)) / (
                math.log10(hi) - math.log10(lo))
        ticks = [m * 10 ** e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1)
                 for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]
    else:
        lo, hi = min(0.0, *xs), max(xs) * 1.05 or 1.0

        def fx(x: float) -> float:
            return LEFT + pw * (x - lo) / (hi - lo)
        step = _nice_step((hi - lo) / 6)
        ticks = [t * step for t in range(math.ceil(lo / step), math.floor(hi / step) + 1)]

    def fy(q: float) -> float:
        return TOP + ph * (1 - q)
    body = [f'<text x="{LEFT}" y="16" class="h">{escape(title)}</text>',
            f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>']
    for t in ticks:
        x = fx(t)
        body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" class="g"/>'
                    f'<text x="{x:.1f}" y="{TOP + ph + 14}" class="t" '
                    f'text-anchor="middle">{t:g}</text>')
    for q in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        y = fy(q)
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" class="g"/>'
                    f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="t" '
                    f'text-anchor="end">{q:g}</text>')
    body.append(f'<text x="{LEFT + pw / 2}" y="{H - 6}" class="t" text-anchor="middle">'
                f'{escape(unit)}{" (log scale)" if log_x else ""}</text>')
    for s in series:
        pts = " ".join(f"{fx(x):.1f},{fy(q):.1f}" for x, q in s.points)
        body.append(f'<polyline points="{pts}" fill="none" stroke="{s.colour}" '
                    f'stroke-width="1.8" stroke-dasharray="{s.dash}"/>')
    body += _legend([(s.label, s.colour, s.dash) for s in series], LEFT + pw + 14, TOP + 8)
    return _svg(W, H, body, title)


def _nice_step(raw: float) -> float:
    """The 1-2-5 step at least ``raw``: axis labels 0, 20, 40 rather than 0, 17.3, 34.6."""
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def state_bars(rows: list[tuple[str, dict[str, float]]], *, title: str) -> str:
    """One stacked bar per (condition, link): share of time ok / degraded / down / unknown."""
    if not rows:
        return ""
    bar, gap, label_w = 18, 8, 170
    height = TOP + len(rows) * (bar + gap) + 30
    pw = W - label_w - 20
    body = [f'<text x="4" y="16" class="h">{escape(title)}</text>']
    for i, (label, shares) in enumerate(rows):
        y = TOP + i * (bar + gap)
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" class="t" '
                    f'text-anchor="end">{escape(label)}</text>')
        x = float(label_w)
        for state in ("ok", "degraded", "down", "unknown"):
            w = pw * (shares.get(state) or 0.0)
            if w > 0:
                body.append(f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar}" '
                            f'fill="{STATE_COLOURS[state]}"><title>{state} '
                            f'{100 * (shares.get(state) or 0):.3f} %</title></rect>')
                x += w
        avail = (shares.get("ok") or 0.0) + (shares.get("degraded") or 0.0)
        body.append(f'<text x="{label_w + pw + 4}" y="{y + 13}" class="t">'
                    f'{100 * avail:.2f} %</text>')
    y = TOP + len(rows) * (bar + gap) + 8
    for j, state in enumerate(("ok", "degraded", "down", "unknown")):
        body.append(f'<rect x="{label_w + j * 110}" y="{y}" width="12" height="12" '
                    f'fill="{STATE_COLOURS[state]}"/><text x="{label_w + j * 110 + 16}" '
                    f'y="{y + 10}" class="t">{state if state != "down" else "down/stale"}'
                    f'</text>')
    return _svg(W + 40, height, body, title)


def timeline(strips: list[tuple[str, np.ndarray, np.ndarray]], start: float, end: float, *,
             title: str) -> str:
    """Per link name: the share of the fleet's links degraded (amber) and down (red) in each
    time bucket, stacked from the bottom; what is left is ok."""
    if not strips or end <= start:
        return ""
    strip_h, gap, label_w = 46, 14, 90
    pw = W - label_w - 20
    height = TOP + len(strips) * (strip_h + gap) + 24
    body = [f'<text x="4" y="16" class="h">{escape(title)}</text>']
    for i, (label, down, degraded) in enumerate(strips):
        y0 = TOP + i * (strip_h + gap)
        n = down.size
        bw = pw / n
        body.append(f'<rect x="{label_w}" y="{y0}" width="{pw}" height="{strip_h}" '
                    f'fill="{STATE_COLOURS["ok"]}"/>'
                    f'<text x="{label_w - 6}" y="{y0 + strip_h / 2 + 4}" class="t" '
                    f'text-anchor="end">{escape(label)}</text>')
        for j in range(n):
            x = label_w + j * bw
            hd = strip_h * min(1.0, float(down[j]))
            hg = strip_h * min(1.0 - min(1.0, float(down[j])), float(degraded[j]))
            if hd > 0.05:
                body.append(f'<rect x="{x:.2f}" y="{y0 + strip_h - hd:.2f}" width="{bw:.2f}" '
                            f'height="{hd:.2f}" fill="{STATE_COLOURS["down"]}"/>')
            if hg > 0.05:
                body.append(f'<rect x="{x:.2f}" y="{y0 + strip_h - hd - hg:.2f}" '
                            f'width="{bw:.2f}" height="{hg:.2f}" '
                            f'fill="{STATE_COLOURS["degraded"]}"/>')
    y = TOP + len(strips) * (strip_h + gap) + 2
    span = end - start
    scale, unit = (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 300 else (
        1.0, "s")
    step = _nice_step(span / scale / 5)
    k = 0
    while k * step <= span / scale + 1e-9:
        x = label_w + pw * (k * step * scale) / span
        body.append(f'<text x="{x:.1f}" y="{y + 10}" class="t" text-anchor="middle">'
                    f'{k * step:g} {unit}</text>')
        k += 1
    return _svg(W, height, body, title)


def site_map(site: Site, points: list[tuple[float, float, str, str]], *, title: str,
             link_order: Sequence[str] = ()) -> str:
    """The site plot: routes, intersection zones, cells, RSUs, and each handover where it
    happened (colour = kind, shape = link)."""
    frame = site.frame()
    geo = [frame.to_xy(lat, lon) for r in site.routes for lat, lon in r.waypoints]
    geo += [frame.to_xy(*ix.centre) for ix in site.intersections]
    geo += [frame.to_xy(lat, lon) for lat, lon, _, _ in points]
    # Macro cells a kilometre away would shrink the route to a dot: the frame is the route,
    # and cells outside it are pinned to its edge with their distance.
    if not geo:
        return ""
    plot = _Plot(frame, geo)
    links = list(link_order)
    body = [f'<text x="4" y="16" class="h">{escape(title)}</text>']
    body += _routes_and_zones(site, plot)
    body += _cells(site, plot)
    for r in site.rsus:
        cx, cy = plot.at(r.lat, r.lon)
        # A hollow diamond: the filled squares are handovers on the second link.
        body.append(f'<path d="M{cx:.1f},{cy - 6:.1f} l6,6 l-6,6 l-6,-6 z" fill="#fff" '
                    f'stroke="#212529" stroke-width="1.6"><title>{escape(r.id)}</title></path>')
    body += _handover_marks(plot, points, links)
    body += _site_legend(plot.width - 180, plot.top, links, bool(site.rsus))
    return _svg(plot.width, plot.height, body, title)


class _Plot:
    """The site map's frame: the route's extent with a margin, scaled to the plot's size."""

    def __init__(self, frame: LocalFrame, geo: list[tuple[float, float]]) -> None:
        self.frame = frame
        xs, ys = [p[0] for p in geo], [p[1] for p in geo]
        self.x0, self.x1 = min(xs) - 60, max(xs) + 60
        self.y0, self.y1 = min(ys) - 60, max(ys) + 60
        size, self.top = 560, 26
        self.scale = size / max(self.x1 - self.x0, self.y1 - self.y0)
        self.width = int((self.x1 - self.x0) * self.scale) + 190
        self.height = int((self.y1 - self.y0) * self.scale) + self.top + 10
        #: The inner extent, without the legend: cells beyond it are pinned to its edge.
        self.inner_w = (self.x1 - self.x0) * self.scale
        self.inner_h = self.top + (self.y1 - self.y0) * self.scale

    def at(self, lat: float, lon: float) -> tuple[float, float]:
        x, y = self.frame.to_xy(lat, lon)
        return (x - self.x0) * self.scale, self.top + (self.y1 - y) * self.scale


def _routes_and_zones(site: Site, plot: _Plot) -> list[str]:
    body = []
    for r in site.routes:
        pts = " ".join("{:.1f},{:.1f}".format(*plot.at(lat, lon)) for lat, lon in
                       (*r.waypoints, r.waypoints[0]))
        body.append(f'<polyline points="{pts}" fill="none" stroke="#adb5bd" '
                    f'stroke-width="5" stroke-linejoin="round"/>')
    for ix in site.intersections:
        cx, cy = plot.at(*ix.centre)
        r = (ix.radius_m or 30.0) * plot.scale
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="#4dabf7" '
                    f'fill-opacity="0.15" stroke="#1864ab" stroke-dasharray="3 2"/>'
                    f'<text x="{cx:.1f}" y="{cy - r - 4:.1f}" class="t" '
                    f'text-anchor="middle">{escape(ix.name)}</text>')
    return body


def _cells(site: Site, plot: _Plot) -> list[str]:
    """Each located cell, pinned to the frame's edge with its distance when outside it."""
    zones = [plot.at(*ix.centre) for ix in site.intersections]
    inner_w, inner_h, top = plot.inner_w, plot.inner_h, plot.top
    body = []
    for c in site.cells:
        if c.lat is None or c.lon is None:
            continue
        cx, cy = plot.at(c.lat, c.lon)
        label = c.id
        if not (0 <= cx <= inner_w and top <= cy <= inner_h):
            x, y = plot.frame.to_xy(c.lat, c.lon)
            label = f"{c.id} ({math.hypot(x, y) / 1000:.1f} km)"
            cx, cy = min(max(cx, 10.0), inner_w - 10), min(max(cy, top + 10.0), inner_h - 4)
        colour = LINK_COLOURS["l5g"] if c.rat == "nr" else LINK_COLOURS["lte"]
        anchor = "end" if cx > inner_w / 2 else "start"
        # A cell beside a junction: label away from it and below the triangle, clear of
        # the junction's name above its zone.
        near = [zx for zx, zy in zones if abs(zx - cx) < 90 and abs(zy - cy) < 50]
        ty = cy + 4
        if near:
            anchor = "start" if cx >= near[0] else "end"
            ty = cy + 14
        tx = cx - 8 if anchor == "end" else cx + 8
        body.append(f'<path d="M{cx:.1f},{cy - 7:.1f} l6,11 h-12 z" fill="{colour}"/>'
                    f'<text x="{tx:.1f}" y="{ty:.1f}" class="s" '
                    f'text-anchor="{anchor}">{escape(label)}</text>')
    return body


def _handover_marks(plot: _Plot, points: list[tuple[float, float, str, str]],
                    links: list[str]) -> list[str]:
    """Each handover where it happened: colour its kind, a dot on the first link, a square
    on the others."""
    body = []
    for lat, lon, kind, link in points:
        cx, cy = plot.at(lat, lon)
        colour = KIND_COLOURS.get(kind, "#495057")
        if links and link == links[0]:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.4" fill="{colour}" '
                        f'fill-opacity="0.75"/>')
        else:
            body.append(f'<rect x="{cx - 3:.1f}" y="{cy - 3:.1f}" width="6" height="6" '
                        f'fill="{colour}" fill-opacity="0.75"/>')
    return body


def _site_legend(lx: int, top: int, links: list[str], rsus: bool) -> list[str]:
    body = []
    items = [(f"{k.replace('_', '-')}", v) for k, v in KIND_COLOURS.items()]
    for i, (label, colour) in enumerate(items):
        body.append(f'<circle cx="{lx + 6}" cy="{top + 10 + i * 16}" r="4" fill="{colour}"/>'
                    f'<text x="{lx + 16}" y="{top + 14 + i * 16}" class="t">{label}</text>')
    yy = top + 14 + len(items) * 16 + 8
    if links:
        body.append(f'<circle cx="{lx + 6}" cy="{yy - 4}" r="4" fill="#495057"/>'
                    f'<text x="{lx + 16}" y="{yy}" class="t">{escape(links[0])}</text>')
        if len(links) > 1:
            body.append(f'<rect x="{lx + 2}" y="{yy + 8}" width="8" height="8" '
                        f'fill="#495057"/><text x="{lx + 16}" y="{yy + 16}" class="t">'
                        f'{escape(", ".join(links[1:]))}</text>')
    body.append(f'<path d="M{lx + 6},{yy + 27} l6,11 h-12 z" fill="#868e96"/>'
                f'<text x="{lx + 16}" y="{yy + 38}" class="t">cell (blue NR, orange LTE)'
                f'</text>')
    if rsus:
        body.append(f'<path d="M{lx + 6},{yy + 46} l6,6 l-6,6 l-6,-6 z" fill="#fff" '
                    f'stroke="#212529" stroke-width="1.6"/>'
                    f'<text x="{lx + 16}" y="{yy + 56}" class="t">roadside unit (RSU)</text>')
    return body
