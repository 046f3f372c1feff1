// The selected vehicle's RTT and uplink charts (SVG), redrawn once a second.

import { CHART_SPAN_S, RTT_DEGRADED_MS, RTT_DOWN_MS } from "./constants.js";
import { $, fmt, svg, textWidth } from "./dom.js";
import { S, hubNow } from "./store.js";

// A round axis maximum and a tick count that gives round steps.
function niceScale(v) {
  if (!(v > 0)) return [1, 5];
  const p = 10 ** Math.floor(Math.log10(v));
  for (const [m, ticks] of [[1, 5], [2, 4], [2.5, 5], [3, 3], [4, 4], [5, 5], [6, 3], [8, 4]]) {
    if (m * p >= v) return [m * p, ticks];
  }
  return [10 * p, 5];
}

export function renderCharts() {
  const rings = S.selected && S.rings.get(S.selected);
  const names = rings ? [...rings.keys()].sort() : [];
  const series = (key) => names.map((n) => ({ name: n, points: rings.get(n), key }));
  const hist = S.hist && S.hist.id === S.selected && S.hist.state === "loaded" ? S.hist : null;
  const deg = hist ? hist.rtt_degraded_ms : RTT_DEGRADED_MS;
  const down = hist ? hist.rtt_down_ms : RTT_DOWN_MS;
  drawChart($("chart-rtt"), series("rtt"), {
    log: true, floor: 10, unit: "ms",
    lines: [{ value: deg, cls: "th-degraded", kind: "rtt_degraded", label: `degraded > ${fmt(deg, 0)} ms` },
            { value: down, cls: "th-down", kind: "rtt_down", label: `down > ${fmt(down, 0)} ms` }],
  });
  const ul = series("ul");
  if (names.length > 1) {
    ul.push({ name: "Σ usable", points: usableTotal(names.map((n) => rings.get(n))), key: "ul",
              total: true });
  }
  const req = hist && hist.ul_required_kbps ? hist.ul_required_kbps / 1000 : null;
  drawChart($("chart-ul"), ul, {
    floor: 1, unit: "Mbit/s",
    lines: req ? [{ value: req, cls: "th-req", kind: "ul_required",
                    label: `vehicle needs ${fmt(req, 1)} Mbit/s` }] : [],
  });
}

// The uplink the vehicle's usable links (ok or degraded) carry together, at each moment
// both were sampled: what the uplink requirement is judged against (docs/alerts.md).
function usableTotal(rings) {
  const t0 = hubNow() - CHART_SPAN_S - 5;
  const at = new Map();
  for (const ring of rings) {
    for (const p of ring) {
      if (p.t < t0) continue;
      let s = at.get(p.t);
      if (!s) at.set(p.t, (s = { t: p.t, ul: 0, state: "ok" }));
      if (p.state !== "ok" && p.state !== "degraded") continue;   // not usable: adds nothing
      s.ul = Number.isFinite(p.ul) && s.ul !== null ? s.ul + p.ul : null;   // unknown stays so
    }
  }
  return [...at.values()].sort((a, b) => a.t - b.t);
}

// 1-2-5 steps: the round value at or above (up) / at or below (down) v.
function round125(v, up) {
  const p = 10 ** Math.floor(Math.log10(v));
  const steps = up ? [1, 2, 5, 10] : [10, 5, 2, 1];
  for (const m of steps) if (up ? m * p >= v - 1e-9 : m * p <= v + 1e-9) return m * p;
  return up ? 10 * p : p;
}

// Chart sizes from a ResizeObserver: reading clientWidth once a second would force a layout
// of the whole page (100 table rows) just to draw two charts.
export const chartSize = new Map();
function drawChart(el, list, opts) {
  let size = chartSize.get(el);
  if (!size) chartSize.set(el, (size = { w: el.clientWidth || 300, h: el.clientHeight || 130 }));
  const W = size.w || 300, H = size.h || 130;
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const banded = list.filter((s) => !s.total);
  const L = 34, R = 8, T = 6, bandH = 3, B = 16 + banded.length * (bandH + 1);
  const pw = W - L - R, ph = H - T - B;
  const t1 = hubNow(), t0 = t1 - CHART_SPAN_S;
  let max = opts.floor, min = Infinity, first = Infinity, count = 0;
  for (const s of list) for (const p of s.points) {
    const v = p[s.key];
    if (p.t < t0 || !Number.isFinite(v)) continue;
    if (v > max) max = v;
    if (v > 0 && v < min) min = v;
    if (!s.total) { count += 1; if (p.t < first) first = p.t; }
  }
  const kids = [];
  let Y;
  if (opts.log) {
    // Latency on a log axis: 20 ms and 80 ms stay apart, and the 1 s "down" line still fits.
    for (const l of opts.lines) max = Math.max(max, l.value * 1.5);
    const lo = round125(Math.min(opts.floor, min), false), hi = round125(max, true);
    const span = Math.log10(hi) - Math.log10(lo);
    Y = (v) => T + ph - ((Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / span) * ph;
    const ticks = [];
    for (let d = lo; d <= hi * 1.001; d = round125(d * 1.01, true)) ticks.push(d);
    const shown = ticks.length > 7 ? ticks.filter((d) => Math.abs(Math.log10(d) % 1) < 1e-6) : ticks;
    for (const v of shown) {
      kids.push(svg("line", { class: "grid-line", x1: L, x2: L + pw, y1: Y(v), y2: Y(v) }));
      kids.push(svg("text", { class: "axis-text", x: L - 4, y: Y(v) + 3, "text-anchor": "end",
                              text: fmt(v, 0) }));
    }
  } else {
    for (const l of opts.lines) max = Math.max(max, l.value * 1.15);
    let ticks;
    [max, ticks] = niceScale(max * 1.05);
    Y = (v) => T + ph - (Math.min(Math.max(v, 0), max) / max) * ph;
    for (let i = 0; i <= ticks; i += 1) {
      const v = (max * i) / ticks, y = Y(v);
      kids.push(svg("line", { class: "grid-line", x1: L, x2: L + pw, y1: y, y2: y }));
      kids.push(svg("text", { class: "axis-text", x: L - 4, y: y + 3, "text-anchor": "end",
                              text: fmt(v, Number.isInteger(v) ? 0 : 1) }));
    }
  }
  const X = (t) => L + ((t - t0) / CHART_SPAN_S) * pw;
  const step = pw >= 380 ? 120 : 300;   // a label every 2 min where they fit, else 5
  for (let s = 0; s <= CHART_SPAN_S; s += step) {
    const x = X(t1 - s);
    kids.push(svg("line", { class: "grid-line", x1: x, x2: x, y1: T, y2: T + ph }));
    kids.push(svg("text", { class: "axis-text", x, y: H - 3,
                            "text-anchor": s === 0 ? "end" : s === CHART_SPAN_S ? "start" : "middle",
                            text: s === 0 ? "now" : `−${s / 60} min` }));
  }
  list.forEach((s, i) => {
    const cls = s.total ? "series-total" : `series-${i}`;
    // Gaps: a missing figure, or no figure for a while, breaks the line.
    let run = [];
    const flush = () => {
      if (run.length > 1) kids.push(svg("polyline", { class: cls, points: run.join(" ") }));
      else if (run.length === 1) {
        const [x, y] = run[0].split(",");
        kids.push(svg("circle", { class: s.total ? "key-total" : `key-${i}`, cx: x, cy: y, r: 1.5 }));
      }
      run = [];
    };
    let prevT = null;
    for (const p of s.points) {
      if (p.t < t0 - 2) { prevT = p.t; continue; }
      const v = p[s.key];
      if (!Number.isFinite(v) || (prevT !== null && p.t - prevT > 5)) flush();
      if (Number.isFinite(v)) run.push(`${X(Math.max(p.t, t0)).toFixed(1)},${Y(v).toFixed(1)}`);
      prevT = p.t;
    }
    flush();
  });
  // State bands under the plot, one per link: ok / degraded / down / no data, as runs.
  banded.forEach((s, i) => {
    const by = T + ph + 3 + i * (bandH + 1);
    const pts = s.points.filter((p) => p.t >= t0 - 5);
    let a = null, state = null, last = null;
    const emit = (end) => {
      if (a !== null && end > a) {
        kids.push(svg("rect", { class: `band-${state}`, x: X(a), y: by,
                                width: Math.max(0.5, X(end) - X(a)), height: bandH }));
      }
    };
    for (const p of pts) {
      const t = Math.max(p.t, t0);
      if (a === null) { a = t; state = p.state; last = p.t; continue; }
      if (p.t - last > 5) { emit(last); a = t; state = p.state; }
      else if (p.state !== state) { emit(t); a = t; state = p.state; }
      last = p.t;
    }
    if (a !== null) emit(t1 - last <= 5 ? t1 : last);
  });
  // Threshold and requirement lines, labelled, above the data.
  for (const l of opts.lines) {
    const y = Y(l.value);
    const g = svg("g", { class: `thresh ${l.cls}`, "data-testid": "chart-threshold" },
      svg("line", { x1: L, x2: L + pw, y1: y, y2: y }),
      svg("text", { class: "thresh-label", x: L + 4, y: y - 3, text: l.label }));
    g.dataset.kind = l.kind;
    g.dataset.value = String(l.value);
    kids.push(g);
  }
  // Keys, right-aligned at the top.
  let kx = L + pw - 4;
  for (let i = list.length - 1; i >= 0; i -= 1) {
    const s = list[i];
    const tw = textWidth(s.name, 10, false);
    kx -= tw;
    kids.push(svg("text", { class: "axis-text key-text", x: kx, y: T + 10, text: s.name }));
    kx -= 11;
    kids.push(svg("rect", { class: s.total ? "key-total" : `key-${i}`, x: kx, y: T + 2,
                            width: 8, height: 8 }));
    kx -= 8;
  }
  if (!count) {
    const loading = S.hist && S.hist.id === S.selected && S.hist.state === "loading";
    kids.push(svg("text", { class: "axis-text", x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle",
                            text: !S.selected ? "no vehicle selected"
                              : loading ? "loading the last 10 min…" : "waiting for live figures…" }));
  }
  el.replaceChildren(...kids);
  el.dataset.vehicle = S.selected || "";
  el.dataset.points = String(count);
  if (Number.isFinite(first)) el.dataset.firstT = String(first); else delete el.dataset.firstT;
}
