"""The drive-test views' pictures as inline SVG: the route coloured by a measure, and a drive's
signal and RTT over time with its events marked.

One ``Scale`` per measure serves every condition's map, so the same colour is the same value
under snow and in daylight; a measure a condition has no value of is said in words, never
drawn as 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from l4mon.faces.report.charts import _nice_step
from telemetry.site import Site

#: Poor → good: red, orange, yellow, light green, green (colour-blind safe enough with the
#: value in each square's tooltip and the legend's numbers).
RAMP = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
EVENT_COLOURS = {"cell change": "#1864ab", "gap": "#868e96", "success": "#2b8a3e",
                 "ping_pong": "#f08c00", "failure": "#e03131", "too_frequent": "#862e9c"}


@dataclass(frozen=True)
class Scale:
    """A measure's colours: ``lo`` … ``hi`` (log for RTT), ``higher_is_better`` or not."""

    lo: float
    hi: float
    log: bool
    higher_is_better: bool
    unit: str

    def position(self, value: float) -> float:
        """0 (poor) … 1 (good), clipped."""
        f: Callable[[float], float] = (lambda x: math.log10(max(x, 1e-9))) if self.log \
            else float
        span = f(self.hi) - f(self.lo)
        x = 0.5 if span <= 0 else (f(value) - f(self.lo)) / span
        x = min(1.0, max(0.0, x))
        return x if self.higher_is_better else 1.0 - x

    def colour(self, value: float) -> str:
        return RAMP[min(len(RAMP) - 1, int(self.position(value) * len(RAMP)))]


def scale_for(values: np.ndarray, *, log: bool, higher_is_better: bool, unit: str) -> Scale:
    """The 2nd to 98th percentile of every condition's values together: one outlier square
    does not wash out the rest, and every condition is drawn on it."""
    lo, hi = (float(v) for v in np.percentile(values, [2, 98]))
    return Scale(lo=lo, hi=hi if hi > lo else lo + 1.0, log=log,
                 higher_is_better=higher_is_better, unit=unit)


class Projection:
    """Degrees to the page: the site's metre grid when known, else an equirectangular one
    about the route's middle; one for every map of the report (same extent, same scale)."""

    def __init__(self, lats: np.ndarray, lons: np.ndarray, site: Site | None,
                 size: float = 300.0) -> None:
        if site is not None:
            frame = site.frame()
            self._xy: Callable[[float, float], tuple[float, float]] = frame.to_xy
        else:
            k = math.cos(math.radians(float(np.mean(lats)))) * 111_320.0

            def xy(lat: float, lon: float) -> tuple[float, float]:
                return lon * k, lat * 110_540.0
            self._xy = xy
        pts = [self._xy(a, b) for a, b in zip(lats.tolist(), lons.tolist(), strict=True)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        self.x0, self.y1 = min(xs) - 20, max(ys) + 20
        span = max(max(xs) - self.x0 + 20, self.y1 - min(ys) + 20, 1.0)
        self.scale = size / span
        self.width = (max(xs) + 20 - self.x0) * self.scale
        self.height = (self.y1 - (min(ys) - 20)) * self.scale

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        x, y = self._xy(lat, lon)
        return (x - self.x0) * self.scale, (self.y1 - y) * self.scale


def route_map(squares: list[tuple[float, float, float, int]], projection: Projection,
              scale: Scale, *, title: str, square_m: float) -> str:
    """One condition's route: each square (lat, lon, mean, samples) in its colour."""
    top = 22
    w, h = projection.width + 8, projection.height + top + 8
    r = max(2.0, square_m * projection.scale / 2)
    body = [f'<text x="4" y="15" class="h">{escape(title)}</text>']
    for lat, lon, value, n in squares:
        x, y = projection(lat, lon)
        body.append(f'<rect x="{x + 4 - r:.1f}" y="{y + top - r:.1f}" width="{2 * r:.1f}" '
                    f'height="{2 * r:.1f}" fill="{scale.colour(value)}"><title>{value:.1f} '
                    f"{escape(scale.unit)} (mean of {n:,})</title></rect>")
    return (f'<svg viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" role="img" '
            f'aria-label="Route: {escape(title)}" class="rmap">' + "".join(body) + "</svg>")


def not_measured_box(projection: Projection, *, title: str, words: str) -> str:
    """Where a condition has no value of the measure: the words, not an empty (or 0) map."""
    top = 22
    w, h = projection.width + 8, projection.height + top + 8
    return (f'<svg viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" role="img" '
            f'aria-label="Route: {escape(title)}" class="rmap"><text x="4" y="15" class="h">'
            f'{escape(title)}</text><rect x="4" y="{top}" width="{w - 8:.0f}" '
            f'height="{h - top - 8:.0f}" fill="#f8f9fa" stroke="#ced4da"/>'
            f'<text x="{w / 2:.0f}" y="{top + (h - top) / 2:.0f}" class="t" '
            f'text-anchor="middle">{escape(words)}</text></svg>')


def legend(scale: Scale, label: str) -> str:
    """The shared scale: each colour with the values it stands for."""
    n = len(RAMP)
    f = (lambda x: math.log10(max(x, 1e-9))) if scale.log else float
    edges = [f(scale.lo) + (f(scale.hi) - f(scale.lo)) * i / n for i in range(n + 1)]
    values = [10 ** e if scale.log else e for e in edges]
    if not scale.higher_is_better:
        values = values[::-1]
    body = [f'<text x="4" y="14" class="t">{escape(label)} ({escape(scale.unit)}), one scale '
            "for every condition:</text>"]
    for i, colour in enumerate(RAMP):
        a, b = values[i], values[i + 1]
        x = 4 + i * 118
        body.append(f'<rect x="{x}" y="22" width="16" height="12" fill="{colour}"/>'
                    f'<text x="{x + 20}" y="32" class="t">{min(a, b):,.1f} – {max(a, b):,.1f}'
                    "</text>")
    return (f'<svg viewBox="0 0 {4 + n * 118} 40" width="{4 + n * 118}" role="img" '
            f'aria-label="Route colour scale: {escape(label)}" class="rlegend">'
            + "".join(body) + "</svg>")


W, PANEL, LEFT, TOP = 720, 120, 58, 24


def over_time(title: str, span: tuple[float, float],
              panels: Sequence[tuple[str, str, bool, list[tuple[str, np.ndarray, np.ndarray]]]],
              events: list[tuple[float, str]]) -> str:
    """Panels (label, unit, log scale, [(series label, drive-relative times, values)]) one
    under the other on a shared time axis (s from the drive's start), events as ticks."""
    t0, t1 = span
    if t1 <= t0:
        t1 = t0 + 1.0
    pw = W - LEFT - 150
    height = TOP + len(panels) * (PANEL + 16) + 40
    colours = ["#1864ab", "#d9480f", "#2b8a3e", "#862e9c"]

    def fx(t: float) -> float:
        return LEFT + pw * (t - t0) / (t1 - t0)
    body = [f'<text x="4" y="16" class="h">{escape(title)}</text>']
    for p, (label, unit, log, series) in enumerate(panels):
        y0 = TOP + p * (PANEL + 16)
        values = np.concatenate([v[~np.isnan(v)] for _, _, v in series] or [np.zeros(0)])
        body.append(f'<rect x="{LEFT}" y="{y0}" width="{pw}" height="{PANEL}" class="frame"/>'
                    f'<text x="{LEFT + 4}" y="{y0 - 3}" class="s">{escape(label)}, '
                    f"{escape(unit)}</text>")
        if not values.size:
            body.append(f'<text x="{LEFT + pw / 2}" y="{y0 + PANEL / 2}" class="t" '
                        f'text-anchor="middle">{escape(label)}: not measured on this drive'
                        "</text>")
            continue
        lo, hi = float(values.min()), float(values.max())
        if log:
            lo, hi = math.log10(max(lo, 0.01)), math.log10(max(hi, 0.02))
        if hi <= lo:
            hi = lo + 1.0

        def fy(v: float, lo: float = lo, hi: float = hi, y0: float = y0,
               log: bool = log) -> float:
            x = math.log10(max(v, 0.01)) if log else v
            return y0 + PANEL * (1 - (x - lo) / (hi - lo))
        for tick in (lo, (lo + hi) / 2, hi):
            v = 10 ** tick if log else tick
            body.append(f'<text x="{LEFT - 6}" y="{fy(v) + 4:.1f}" class="s" '
                        f'text-anchor="end">{v:,.4g}</text>')
        for i, (name, t, v) in enumerate(series):
            ok = ~np.isnan(v)
            if not ok.any():
                continue
            pts = " ".join(f"{fx(a):.1f},{fy(b):.1f}" for a, b in
                           zip(t[ok].tolist(), v[ok].tolist(), strict=True))
            colour = colours[i % len(colours)]
            body.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                        'stroke-width="1.3"/>'
                        f'<text x="{LEFT + pw + 8}" y="{y0 + 14 + 14 * i}" class="t" '
                        f'fill="{colour}">{escape(label)} · {escape(name)}</text>')
    bottom = TOP + len(panels) * (PANEL + 16) - 16
    for t, kind in events:
        x = fx(t)
        body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" '
                    f'stroke="{EVENT_COLOURS.get(kind, "#495057")}" stroke-width="1" '
                    f'stroke-opacity="0.7"><title>{escape(kind)} at {t:.1f} s</title></line>')
    step = _nice_step((t1 - t0) / 6)
    k = math.ceil(t0 / step)
    while k * step <= t1:
        body.append(f'<text x="{fx(k * step):.1f}" y="{bottom + 14}" class="t" '
                    f'text-anchor="middle">{k * step:g} s</text>')
        k += 1
    kinds = list(dict.fromkeys(kind for _, kind in events))
    for i, kind in enumerate(kinds):
        x = LEFT + i * 110
        body.append(f'<line x1="{x}" y1="{bottom + 26}" x2="{x + 14}" y2="{bottom + 26}" '
                    f'stroke="{EVENT_COLOURS.get(kind, "#495057")}" stroke-width="3"/>'
                    f'<text x="{x + 18}" y="{bottom + 30}" class="t">{escape(kind)}</text>')
    return (f'<svg viewBox="0 0 {W} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" class="chart">' + "".join(body) + "</svg>")
