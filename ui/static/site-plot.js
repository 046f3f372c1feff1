// The site plot: the site's geometry (or a frame fitted to the vehicles), a scale bar,
// and the vehicles as dots whose labels never overlap.

import { CONN_LABEL } from "./constants.js";
import { $, chg, fmt, setProps, svg, textWidth } from "./dom.js";
import { needRank } from "./fleet-query.js";
import { P, makeFrame, plotHooks, project } from "./geometry.js";
import { S, takeoverVehicles } from "./store.js";
import { select } from "./selection.js";
import { codeWords, connWords, ratWords } from "./words.js";

// The site came from the hub (site-data.js): its name, and the plot built for it.
export function siteLoaded() {
  $("site-name").textContent = S.site ? String(S.site.name ?? "") : "(no site file: fitted to vehicles)";
  buildPlot();
}

// The plot's user units are metres (x east, y south: SVG's y grows downwards). Vehicles,
// labels and the scale bar are sized in screen pixels (P.px metres per pixel), so a dense
// fleet on a big site stays legible at any panel size.
const LABEL_PX = 11;         // vehicle label font size
const STATIC_LABEL_PX = 10;  // cells, RSUs
const IX_LABEL_PX = 11;      // intersections
const DOT_PX = 5;            // vehicle dot radius
const SHORT_LABELS_FROM = 13;   // fleets this big drop their ids' common prefix on the plot
function extend(b, x, y, r = 0) {
  if (!b) return { x0: x - r, y0: y - r, x1: x + r, y1: y + r };
  return { x0: Math.min(b.x0, x - r), y0: Math.min(b.y0, y - r),
           x1: Math.max(b.x1, x + r), y1: Math.max(b.y1, y + r) };
}
function pad(b, frac, minSpan) {
  const cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2;
  const w = Math.max(minSpan, (b.x1 - b.x0) * (1 + 2 * frac));
  const hgt = Math.max(minSpan, (b.y1 - b.y0) * (1 + 2 * frac));
  return { x0: cx - w / 2, x1: cx + w / 2, y0: cy - hgt / 2, y1: cy + hgt / 2 };
}
const positioned = () => [...S.vehicles.values()].filter(
  (v) => Number.isFinite(v.lat) && Number.isFinite(v.lon));

// ---- collision boxes (px), bucketed on a grid so a placement test looks at its neighbours
const GRID_PX = 48;
function boxGrid() { return new Map(); }
function gridAdd(grid, b) {
  for (let gx = Math.floor(b.x0 / GRID_PX); gx <= Math.floor(b.x1 / GRID_PX); gx += 1) {
    for (let gy = Math.floor(b.y0 / GRID_PX); gy <= Math.floor(b.y1 / GRID_PX); gy += 1) {
      const k = gx * 100003 + gy;
      let cell = grid.get(k);
      if (!cell) grid.set(k, (cell = []));
      cell.push(b);
    }
  }
}
function gridHits(grid, x0, y0, x1, y1) {
  const gx1 = Math.floor(x1 / GRID_PX), gy1 = Math.floor(y1 / GRID_PX);
  for (let gx = Math.floor(x0 / GRID_PX); gx <= gx1; gx += 1) {
    for (let gy = Math.floor(y0 / GRID_PX); gy <= gy1; gy += 1) {
      const cell = grid.get(gx * 100003 + gy);
      if (cell === undefined) continue;
      for (let i = 0; i < cell.length; i += 1) {
        const o = cell[i];
        if (x0 < o.x1 && x1 > o.x0 && y0 < o.y1 && y1 > o.y0) return true;
      }
    }
  }
  return false;
}
// metres <-> plot pixels
const toPx = (x, y) => [(x - P.vb.x) / P.px, (y - P.vb.y) / P.px];
const toM = (px, py) => [P.vb.x + px * P.px, P.vb.y + py * P.px];

// The first of `cands` (flat [dx0, dy0, dx1, dy1, ...]: a w x h box's top-left from the
// anchor at ax, ay) that fits: inside the plot and clear of everything in `grid`; the
// `prefer`red one is tried first. Returns the candidate's index, or -1.
function firstFit(grid, ax, ay, w, hgt, cands, prefer) {
  const n = cands.length / 2, W = P.vb.W - 2, H = P.vb.H - 2;
  for (let i = -1; i < n; i += 1) {
    const k = i < 0 ? prefer : i;
    if (k < 0 || (i >= 0 && k === prefer)) continue;
    const x0 = ax + cands[2 * k], y0 = ay + cands[2 * k + 1];
    if (x0 < 2 || y0 < 2 || x0 + w > W || y0 + hgt > H) continue;
    if (!gridHits(grid, x0, y0, x0 + w, y0 + hgt)) return k;
  }
  return -1;
}

export function buildPlotIfNeeded() {
  if (S.site === undefined) return;     // wait for /api/site
  if (!P.built) { buildPlot(); return; }
  // Grow the box when a vehicle drives out of it: a vehicle off the plot is a vehicle unseen.
  if (!P.bounds) { buildPlot(); return; }
  const out = positioned().some((v) => {
    const [x, y] = project(v.lat, v.lon);
    return x < P.bounds.x0 || x > P.bounds.x1 || y < P.bounds.y0 || y > P.bounds.y1;
  });
  if (out) buildPlot();
}

function buildPlot() {
  const plot = $("plot");
  const site = S.site;
  P.vehEls.clear();
  P.built = false;
  P.statics = [];
  P.routes = [];
  let b = null;
  if (site && site.origin) {
    P.frame = makeFrame(site.origin.lat, site.origin.lon);
    for (const r of site.routes || []) for (const [lat, lon] of r.waypoints || []) {
      const [x, y] = project(lat, lon); b = extend(b, x, y);
    }
    for (const ix of site.intersections || []) {
      const [x, y] = project(ix.lat, ix.lon); b = extend(b, x, y, ix.radius_m || 0);
      for (const [lat, lon] of ix.polygon || []) { const [px, py] = project(lat, lon); b = extend(b, px, py); }
    }
    for (const r of site.rsus || []) { const [x, y] = project(r.lat, r.lon); b = extend(b, x, y); }
  }
  const vs = positioned();
  P.hoLayer = P.mapLayer = P.aheadLayer = null;
  if (!P.frame || (!site && vs.length)) {
    if (!vs.length) { plot.replaceChildren(); P.bounds = null; return; }
    if (!P.frame) P.frame = makeFrame(vs[0].lat, vs[0].lon);
  }
  for (const v of vs) { const [x, y] = project(v.lat, v.lon); b = extend(b, x, y); }
  if (!b) { plot.replaceChildren(); return; }
  P.bounds = pad(b, site ? 0.06 : 0.25, 150);
  P.u = Math.max(P.bounds.x1 - P.bounds.x0, P.bounds.y1 - P.bounds.y0) / 100;
  const u = P.u;
  const layer = svg("g", { class: "static" });
  const labels = svg("g", { class: "static-labels" });
  const addLabel = (kind, x, y, r, text, cls) => {
    const el = svg("text", { class: cls, "dominant-baseline": "central", text });
    labels.append(el);
    P.statics.push({ el, kind, x, y, r, text, prefer: -1 });
  };
  if (site) {
    P.routes = (site.routes || []).map((r) => (r.waypoints || []).map(([lat, lon]) => project(lat, lon)));
    for (const r of site.routes || []) {
      const pts = (r.waypoints || []).map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
      layer.append(svg("polyline", { class: "route", points: pts.join(" "), "stroke-width": 1.6 * u },
                       svg("title", { text: `route ${r.id}` })));
    }
    for (const ix of site.intersections || []) {
      const [x, y] = project(ix.lat, ix.lon);
      const title = svg("title", { text: `intersection ${ix.name || ix.id}` });
      if (ix.polygon && ix.polygon.length >= 3) {
        const pts = ix.polygon.map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
        layer.append(svg("polygon", { class: "ix", points: pts.join(" "), "stroke-width": 0.3 * u }, title));
      } else {
        layer.append(svg("circle", { class: "ix", cx: x, cy: y, r: ix.radius_m || 2 * u,
                                     "stroke-width": 0.3 * u }, title));
      }
      addLabel("ix", x, y, ix.radius_m || 2 * u, ix.name || ix.id, "ix-label");
    }
    for (const r of site.rsus || []) {
      const [x, y] = project(r.lat, r.lon);
      const s = 1.6 * u;
      layer.append(svg("rect", { class: "rsu", x: x - s / 2, y: y - s / 2, width: s, height: s },
                       svg("title", { text: `RSU ${r.id}` })));
      addLabel("rsu", x, y, s / 2, r.id, "rsu-label");
    }
    for (const c of site.cells || []) {
      if (!Number.isFinite(c.lat) || !Number.isFinite(c.lon)) continue;
      let [x, y] = project(c.lat, c.lon);
      const B = P.bounds, m = 2 * u;
      const off = x < B.x0 || x > B.x1 || y < B.y0 || y > B.y1;
      const dist = Math.hypot(x, y);
      if (off) {   // a far macro cell: pinned to the edge, pointing the way
        x = Math.min(B.x1 - m, Math.max(B.x0 + m, x));
        y = Math.min(B.y1 - m, Math.max(B.y0 + m, y));
      }
      const s = 1.4 * u;
      layer.append(svg("polygon", {
        class: off ? "cell offmap" : "cell", "stroke-width": 0.25 * u,
        points: `${x},${y - s} ${x - s},${y + s * 0.8} ${x + s},${y + s * 0.8}`,
      }, svg("title", { text: `cell ${c.id} (${ratWords(c.rat)})${off ? ` — off the plot, ${(dist / 1000).toFixed(1)} km from origin` : ""}` })));
      addLabel("cell", x, y, s, `${c.id}${off ? " ⇢" : ""}`, "cell-label");
    }
  }
  // The link map's cells over the zones and roads, handover marks above them, the weak
  // stretches ahead above those, vehicles above them, labels above everything.
  P.mapLayer = svg("g", { class: "linkmap", "data-testid": "linkmap-layer" });
  P.hoLayer = svg("g", { class: "handovers" });
  P.aheadLayer = svg("g", { class: "weak-ahead", "data-testid": "weak-ahead-layer" });
  P.vehLayer = svg("g", { class: "vehicles" });
  P.labelLayer = svg("g", { class: "veh-labels" });
  P.overlay = svg("g", { class: "scale-bar", "data-testid": "plot-scale-bar" });
  plot.replaceChildren(layer, P.mapLayer, labels, P.overlay, P.hoLayer, P.aheadLayer, P.vehLayer,
                       P.labelLayer);
  P.built = true;
  layoutPlot();
  for (const built of plotHooks.built) built();
  renderPlotVehicles();
}

// The viewBox follows the panel's aspect ratio, so the site fills it; then everything sized
// in pixels (dots, labels, the scale bar) is sized again.
export function layoutPlot() {
  const plot = $("plot");
  if (!P.bounds) return;
  const w = plot.clientWidth || 600, hgt = plot.clientHeight || 400;
  const B = P.bounds;
  let bw = B.x1 - B.x0, bh = B.y1 - B.y0;
  const cx = (B.x0 + B.x1) / 2, cy = (B.y0 + B.y1) / 2;
  if (bw / bh < w / hgt) bw = bh * w / hgt; else bh = bw * hgt / w;
  plot.setAttribute("viewBox", `${cx - bw / 2} ${cy - bh / 2} ${bw} ${bh}`);
  plot.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const same = P.vb && P.vb.W === w && P.vb.H === hgt && P.vb.w === bw && P.vb.h === bh
    && P.vb.x === cx - bw / 2 && P.vb.y === cy - bh / 2;
  if (same) return;
  P.vb = { x: cx - bw / 2, y: cy - bh / 2, w: bw, h: bh, W: w, H: hgt };
  P.px = bw / w;
  for (const e of P.vehEls.values()) sizeVehicle(e);
  drawScaleBar();
  placeStaticLabels();
  if (P.built) renderPlotVehicles();
}

// A round length near 110 px: "200 m", in a corner of the plot away from the roads (so no
// vehicle drives under it), below the vehicles; the note on shortened labels in another.
// The plot's x and y are metres of the site's local frame (equirectangular about its
// origin, WGS84 radii), so the bar is exact there.
function drawScaleBar() {
  const g = P.overlay;
  if (!g || !P.vb) return;
  const px = P.px, W = P.vb.W, H = P.vb.H;
  const target = 110 * px;
  const p = 10 ** Math.floor(Math.log10(target));
  const len = [5, 2, 1].map((m) => m * p).find((m) => m <= target) || p;
  const lenPx = len / px;
  const text = len >= 1000 ? `${len / 1000} km` : `${len} m`;
  const sample = P.prefix && P.vehEls.size ? [...P.vehEls.keys()].sort()[0] : "";
  const note = sample ? `label ${sample.slice(P.prefix.length)} = ${sample}` : "";
  const road = [];
  for (const pts of P.routes) {
    for (let i = 1; i < pts.length; i += 1) {
      const [x0, y0] = toPx(...pts[i - 1]), [x1, y1] = toPx(...pts[i]);
      const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / 4));
      for (let j = 0; j <= n; j += 1) road.push([x0 + ((x1 - x0) * j) / n, y0 + ((y1 - y0) * j) / n]);
    }
  }
  for (const s of P.statics) if (s.kind !== "ix") road.push(toPx(s.x, s.y));
  const pad = DOT_PX + 2, m = 6;
  const taken = [];
  const corner = (bw, bh) => {
    const cands = [[m, H - m - bh], [m, m], [W - m - bw, H - m - bh], [W - m - bw, m]]
      .filter(([x, y]) => !taken.some((t) => x < t.x1 && x + bw > t.x0 && y < t.y1 && y + bh > t.y0));
    let best = null, bestScore = Infinity;
    for (const [x, y] of cands) {
      const sc = road.filter(([rx, ry]) => rx > x - pad && rx < x + bw + pad
                                         && ry > y - pad && ry < y + bh + pad).length;
      if (sc < bestScore) { best = [x, y]; bestScore = sc; }
    }
    const b = best ? { x0: best[0], y0: best[1], x1: best[0] + bw, y1: best[1] + bh } : null;
    if (b) taken.push(b);
    return b;
  };
  const kids = [];
  const bar = corner(lenPx + 8, 24);
  if (bar) {
    const [mx, my] = toM(bar.x0 + 4, bar.y1 - 4);
    kids.push(
      svg("rect", { class: "sb-bg", x: bar.x0 * px + P.vb.x, y: bar.y0 * px + P.vb.y,
                    width: (bar.x1 - bar.x0) * px, height: 24 * px, rx: 3 * px }),
      svg("path", { class: "sb-bar", "stroke-width": 2 * px,
                    d: `M${mx},${my - 5 * px}V${my}H${mx + len}V${my - 5 * px}` }),
      svg("text", { class: "sb-text", x: mx + len / 2, y: my - 11 * px, "text-anchor": "middle",
                    "dominant-baseline": "central", "font-size": 10 * px, text }));
  }
  const nb = note ? corner(textWidth(note, 10, false) + 10, 16) : null;
  if (nb) {
    const [nx, ny] = toM(nb.x0 + 5, (nb.y0 + nb.y1) / 2);
    kids.push(
      svg("rect", { class: "sb-bg", x: nb.x0 * px + P.vb.x, y: nb.y0 * px + P.vb.y,
                    width: (nb.x1 - nb.x0) * px, height: 16 * px, rx: 3 * px }),
      svg("text", { class: "sb-note", x: nx, y: ny, "dominant-baseline": "central",
                    "font-size": 10 * px, text: note, "data-testid": "plot-label-note" },
          svg("title", { text: `Vehicle labels on the plot leave out “${P.prefix}”; ` +
                               "hover a vehicle for its full name." })));
  }
  g.replaceChildren(...kids);
  g.dataset.metres = String(len);
  P.overlayBoxes = taken;
}

// The site's own labels, placed once per layout: intersections first, then RSUs and cells,
// each beside its mark where nothing else is; one that fits nowhere is hidden (its mark
// keeps a tooltip).
function placeStaticLabels() {
  if (!P.vb) return;
  const grid = boxGrid();
  const boxes = [];
  for (const b of P.overlayBoxes) gridAdd(grid, b);
  // The site's icons are obstacles for every label.
  for (const s of P.statics) {
    if (s.kind === "ix") continue;
    const [ax, ay] = toPx(s.x, s.y);
    const rr = s.r / P.px + 1;
    const b = { x0: ax - rr, y0: ay - rr, x1: ax + rr, y1: ay + rr };
    gridAdd(grid, b);
    boxes.push(b);
  }
  // The roads too, for these labels only: the vehicles drive there and would cover them.
  const road = DOT_PX + 1;
  for (const pts of P.routes) {
    for (let i = 1; i < pts.length; i += 1) {
      const [x0, y0] = toPx(...pts[i - 1]), [x1, y1] = toPx(...pts[i]);
      const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / road));
      for (let j = 0; j <= n; j += 1) {
        const x = x0 + ((x1 - x0) * j) / n, y = y0 + ((y1 - y0) * j) / n;
        gridAdd(grid, { x0: x - road, y0: y - road, x1: x + road, y1: y + road });
      }
    }
  }
  const rank = { ix: 0, rsu: 1, cell: 2 };
  for (const s of [...P.statics].sort((a, b) => rank[a.kind] - rank[b.kind])) {
    const fs = s.kind === "ix" ? IX_LABEL_PX : STATIC_LABEL_PX;
    const w = textWidth(s.text, fs, s.kind === "ix") + 4, hgt = fs + 4;
    const [ax, ay] = toPx(s.x, s.y);
    const r = s.r / P.px + 3;
    const d = r * 0.72;
    const cands = s.kind === "ix"
      ? [[-w + d * 0.3, -d - hgt], [-d * 0.3, -d - hgt], [-w / 2, -r - hgt], [-w / 2, r],
         [d, d], [-w - d, d], [r, -hgt / 2], [-r - w, -hgt / 2]]
      : [[r, -hgt / 2], [-r - w, -hgt / 2], [-w / 2, r], [-w / 2, -r - hgt],
         [r * 0.7, r * 0.7], [r * 0.7, -r * 0.7 - hgt], [-r * 0.7 - w, r * 0.7],
         [-r * 0.7 - w, -r * 0.7 - hgt]];
    const k = firstFit(grid, ax, ay, w, hgt, cands.flat(), -1);
    if (k < 0) { s.el.style.display = "none"; continue; }
    const b = { x0: ax + cands[k][0], y0: ay + cands[k][1], x1: ax + cands[k][0] + w,
                y1: ay + cands[k][1] + hgt };
    gridAdd(grid, b);
    boxes.push(b);
    const [mx, my] = toM(b.x0 + 2, (b.y0 + b.y1) / 2);
    s.el.style.display = "";
    setProps(s.el, { x: mx, y: my, "font-size": fs * P.px, "stroke-width": 3 * P.px });
  }
  P.staticBoxes = boxes;
}

function plotColour(v) {
  if (v.service && v.service.status === "out_of_service") return "unknown";
  if (v.connectivity === "all_links_down") return "all_links_down";
  if (v.telemetry !== "fresh" || !(v.connectivity in CONN_LABEL)) return "unknown";
  return v.connectivity;
}

// The part of the ids every vehicle shares ("shuttle-"), up to a separator, for a big fleet.
function commonPrefix(ids) {
  if (ids.length < SHORT_LABELS_FROM) return "";
  let p = ids[0];
  for (const id of ids) { while (p && !id.startsWith(p)) p = p.slice(0, -1); }
  const cut = Math.max(p.lastIndexOf("-"), p.lastIndexOf("_"), p.lastIndexOf("."), p.lastIndexOf("/"));
  p = cut >= 0 ? p.slice(0, cut + 1) : "";
  return ids.every((id) => id.length > p.length) ? p : "";
}

function sizeVehicle(e) {
  const px = P.px;
  e.ring.setAttribute("r", 8 * px); e.ring.setAttribute("stroke-width", 2 * px);
  e.pulseC.setAttribute("r", 8 * px); e.pulseC.setAttribute("stroke-width", 2.5 * px);
  e.dot.setAttribute("r", DOT_PX * px); e.dot.setAttribute("stroke-width", 1.2 * px);
  e.head.setAttribute("y2", -10 * px); e.head.setAttribute("stroke-width", 1.6 * px);
  e.label.setAttribute("font-size", LABEL_PX * px);
  e.label.setAttribute("stroke-width", 3 * px);
  e.leader.setAttribute("stroke-width", 1 * px);
}

function makeVehicleEl(v) {
  const g = svg("g", { class: "veh-g", "data-testid": `plot-vehicle-${v.id}` });
  g.addEventListener("click", () => select(v.id));
  const ring = svg("circle", { class: "ring" });
  const pulseC = svg("circle", { class: "pulse" });
  const pulse = svg("g", null, ring, pulseC);
  const dot = svg("circle", { class: "veh" });
  const head = svg("line", { class: "heading", x1: 0, y1: 0, x2: 0 });
  const title = svg("title");
  // The label and its leader move with the vehicle: only a change of place rewrites them.
  const label = svg("text", { class: "veh-label", "data-testid": "plot-label",
                              "dominant-baseline": "central" });
  label.dataset.vehicle = v.id;
  const leader = svg("line", { class: "leader" });
  leader.style.display = "none";
  g.append(pulse, head, leader, dot, label, title);
  const e = { id: v.id, g, pulse, ring, pulseC, dot, head, title, label, leader, x: 0, y: 0, ax: 0, ay: 0,
              w: 0, cands: null, candsPx: 0, rank: 0, cand: -1, placed: false, hover: false,
              text: null, tf: null, conn: null, take: null, rot: null, pos: null, dotCls: null,
              tip: null, lcls: null, shown: true, leaderOn: false };
  // A label that found no room shows while the pointer is on its vehicle (drawn on top).
  g.addEventListener("mouseenter", () => {
    e.hover = true;
    vehicleTip(e);
    if (!e.placed) { showHoverLabel(e); P.vehLayer.append(g); }
  });
  g.addEventListener("mouseleave", () => { e.hover = false; if (!e.placed) hideLabel(e); });
  sizeVehicle(e);
  return e;
}

function vehicleTip(e) {
  const v = S.vehicles.get(e.id);
  if (!v) return;
  const tip = `${v.id}: ${connWords(v.connectivity, v)}, telemetry ${codeWords(v.telemetry)}, ` +
    `${fmt(v.speed_mps == null ? null : v.speed_mps * 3.6, 0)} km/h`;
  if (chg(e, "tip", tip)) e.title.textContent = tip;
}

export function renderPlotVehicles() {
  if (!P.built || !P.vehLayer || !P.vb) { buildPlotIfNeeded(); return; }
  const takeover = takeoverVehicles();
  const seen = new Set();
  let added = false;
  for (const v of S.vehicles.values()) {
    if (!Number.isFinite(v.lat) || !Number.isFinite(v.lon)) continue;
    seen.add(v.id);
    let e = P.vehEls.get(v.id);
    if (!e) {
      e = makeVehicleEl(v);
      P.vehLayer.append(e.g);
      P.vehEls.set(v.id, e);
      added = true;
    }
    const [x, y] = project(v.lat, v.lon);
    e.x = x; e.y = y;
    const tf = `translate(${x.toFixed(1)},${y.toFixed(1)})`;
    if (chg(e, "tf", tf)) e.g.setAttribute("transform", tf);
    const colour = plotColour(v);
    if (chg(e, "conn", v.connectivity)) e.g.dataset.connectivity = String(v.connectivity);
    const dcls = `veh f-${colour}${v.id === S.selected ? " selected" : ""}`;
    if (chg(e, "dotCls", dcls)) e.dot.setAttribute("class", dcls);
    const take = takeover.has(v.id);
    if (chg(e, "take", take)) {
      e.pulse.style.display = take ? "" : "none";
      e.g.dataset.takeover = take ? "true" : "false";
    }
    if (Number.isFinite(v.heading_deg)) {
      e.head.style.display = "";
      const rot = `rotate(${Math.round(v.heading_deg)})`;
      if (chg(e, "rot", rot)) e.head.setAttribute("transform", rot);
    } else {
      e.head.style.display = "none";
    }
    if (e.hover) vehicleTip(e);   // else written when the pointer comes (mouseenter)
  }
  let removed = false;
  for (const [id, e] of P.vehEls) {
    if (!seen.has(id)) { e.g.remove(); P.vehEls.delete(id); removed = true; }
  }
  if (added || removed) {
    const prefix = commonPrefix([...P.vehEls.keys()]);
    if (prefix !== P.prefix) { P.prefix = prefix; drawScaleBar(); placeStaticLabels(); }
    for (const e of P.vehEls.values()) e.text = null;   // labels follow the prefix
  }
  // Takeover vehicles and the selected one are drawn last, on top.
  for (const id of [...takeover, S.selected]) {
    const e = P.vehEls.get(id);
    if (e && P.vehLayer.lastChild !== e.g) P.vehLayer.append(e.g);
  }
  placeVehicleLabels(takeover);
  for (const drawn of plotHooks.drawn) drawn();
  // Grow the plot when a vehicle drives out of it: a vehicle off the plot is a vehicle unseen.
  const B = P.bounds;
  for (const e of P.vehEls.values()) {
    if (B && (e.x < B.x0 || e.x > B.x1 || e.y < B.y0 || e.y > B.y1)) { buildPlot(); break; }
  }
}

// Vehicle labels, greedily, most urgent first: beside the dot (8 places), else a little
// further out with a leader line (8 more); a label that fits nowhere is hidden and shows
// on hover. Each label tries its previous place first, so labels do not hop between frames.
// Nothing is measured in the page: positions are the projection, widths a canvas's.
function placeVehicleLabels(takeover) {
  if (!P.vb) return;
  const grid = boxGrid();
  for (const b of P.staticBoxes) gridAdd(grid, b);
  for (const b of P.overlayBoxes) gridAdd(grid, b);
  const list = [];
  const r = DOT_PX + 1.5;
  const vb = P.vb, px = P.px;
  for (const [id, e] of P.vehEls) {
    const ax = (e.x - vb.x) / px, ay = (e.y - vb.y) / px;
    e.ax = ax; e.ay = ay;
    gridAdd(grid, { x0: ax - r, y0: ay - r, x1: ax + r, y1: ay + r });
    const v = S.vehicles.get(id);
    e.rank = takeover.has(id) ? -2 : id === S.selected ? -1 : v ? needRank(v, takeover) : 9;
    list.push(e);
  }
  list.sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const hgt = LABEL_PX + 3;
  for (const e of list) {
    if (e.text === null) {
      e.text = P.prefix && e.id.startsWith(P.prefix) ? e.id.slice(P.prefix.length) : e.id;
      e.label.textContent = e.text;
      e.w = textWidth(e.text, LABEL_PX, true) + 3;
      e.cands = null;
    }
    if (e.cands === null) e.cands = labelCands(e.w, hgt);
    const k = firstFit(grid, e.ax, e.ay, e.w, hgt, e.cands, e.cand);
    if (k < 0) {
      e.placed = false;
      e.cand = -1;
      if (e.hover) showHoverLabel(e); else hideLabel(e);
      continue;
    }
    const x0 = e.ax + e.cands[2 * k], y0 = e.ay + e.cands[2 * k + 1];
    gridAdd(grid, { x0, y0, x1: x0 + e.w, y1: y0 + hgt });
    e.placed = true;
    e.cand = k;
    showLabelAt(e, k);
  }
}

// Where a w x h label may go, its top-left from the dot's centre (px), flat: beside the dot
// in 8 directions, then 8 more a little further out (those get a leader line).
const NEAR_CANDS = 8;
function labelCands(w, hgt) {
  const r = DOT_PX + 1.5, g = r + 1, d = r + 14, q = 0.72;
  return [
    g, -hgt / 2, -g - w, -hgt / 2, g * q, -g * q - hgt, g * q, g * q,
    -g * q - w, -g * q - hgt, -g * q - w, g * q, -w / 2, -g - hgt, -w / 2, g,
    d, -hgt / 2, -d - w, -hgt / 2, -w / 2, -d - hgt, -w / 2, d,
    d * q, -d * q - hgt, d * q, d * q, -d * q - w, -d * q - hgt, -d * q - w, d * q,
  ];
}

// Candidate k of the label, relative to the vehicle (its group is translated to the dot).
function showLabelAt(e, k, hover = false) {
  const px = P.px, hgt = LABEL_PX + 3;
  const dx = k < 0 ? DOT_PX + 2.5 : e.cands[2 * k], dy = k < 0 ? -hgt / 2 : e.cands[2 * k + 1];
  if (chg(e, "pos", `${k}|${px}|${e.w}`)) {
    e.label.setAttribute("x", ((dx + 1.5) * px).toFixed(2));
    e.label.setAttribute("y", ((dy + hgt / 2) * px).toFixed(2));
    const leader = k >= NEAR_CANDS;
    if (leader) {
      // From the dot's edge to the nearest point of the label's box.
      const tx = Math.max(dx, Math.min(0, dx + e.w)), ty = Math.max(dy, Math.min(0, dy + hgt));
      const len = Math.hypot(tx, ty) || 1;
      const s = (DOT_PX + 1) / len;
      setProps(e.leader, { x1: (tx * s * px).toFixed(2), y1: (ty * s * px).toFixed(2),
                           x2: (tx * px).toFixed(2), y2: (ty * px).toFixed(2) });
    }
    e.leaderOn = leader;
    e.leader.style.display = leader ? "" : "none";
  }
  if (!e.shown) { e.shown = true; e.label.style.display = ""; if (e.leaderOn) e.leader.style.display = ""; }
  const cls = hover ? "veh-label hover" : "veh-label";
  if (chg(e, "lcls", cls)) e.label.setAttribute("class", cls);
}

function hideLabel(e) {
  if (!e.shown) return;
  e.shown = false;
  e.label.style.display = "none";
  e.leader.style.display = "none";
}

function showHoverLabel(e) {
  if (!P.vb) return;
  showLabelAt(e, -1, true);
}
