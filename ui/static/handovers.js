// l4mon operator console: handovers and intersections (issue 5).
//
// console.js calls installHandovers() once at boot; the render step (render.js) calls the
// hooks in `handovers` when the store changed. It draws:
//   - handover marks on the site plot (its own <g> between the site and the vehicles),
//   - the per-intersection table (the "Intersections" tab next to the fleet table),
//   - a handover timeline per link in the selected vehicle's panel,
//   - one detail box for a clicked mark (plot or timeline).
// Data: handover-data.js polls GET /api/handovers and /api/intersections
// (docs/console-api.md). Every server string reaches the page as text, never as HTML.

import { ixName } from "./alert-words.js";
import { FIRST_LIMIT, HO, TIMELINE_SPAN_S, keyOf, pollIntersections,
         sortedHandovers } from "./handover-data.js";
import { $, clock, duration, h, svg } from "./dom.js";
import { P, project } from "./geometry.js";
import { S, hubNow } from "./store.js";
import { installTab, showTab } from "./tabs.js";
import { select } from "./selection.js";

// ------------------------------------------------------------------ constants
const FADE_FROM_S = 120;         // plot marks older than this fade...
const FADE_TO_S = 1800;          // ...down to FADE_MIN at this age
const FADE_MIN = 0.35;
const TIMELINE_EVERY_MS = 5000;  // the timeline slides 1 px per ~2 s: no need for more
const BAD = { success_rate: 0.95, ping_pong_rate: 0.1, delivery_ratio: 0.9 };
// Each kind has its own shape as well as its own colour, and a word in every tooltip.
const KINDS = {
  success: { label: "success", shape: "ring" },
  ping_pong: { label: "ping-pong", shape: "diamond" },
  too_frequent: { label: "too frequent", shape: "triangle" },
  failure: { label: "failure", shape: "cross" },
};
const KIND_ORDER = ["success", "ping_pong", "too_frequent", "failure"];
// How an interruption was measured (docs/handover.md), in words.
const BASIS_WORDS = { rtt: "from probe round trips", gap: "from the gap between samples" };
const LINK_ORDER = ["l5g", "lte"];

const H = {
  show: true,            // marks on the plot
  detail: null,          // {key, anchor} of the open detail box
  lastFade: 0,
  lastTimeline: 0,
  ixHighlight: null,
  tlWidth: 0,            // the timeline's width, px (ResizeObserver)
};

// ------------------------------------------------------------------ small helpers
const dash = "—";
const num = (v, digits) => (v === null || v === undefined || !Number.isFinite(v) ? dash : v.toFixed(digits));
const pct = (r) => (r === null || r === undefined || !Number.isFinite(r) ? dash
  : (r === 1 || r === 0 ? (r * 100).toFixed(0) : (r * 100).toFixed(1)));
const secs = (v) => (v === null || v === undefined || !Number.isFinite(v) ? dash
  : v >= 10 ? v.toFixed(0) : v.toFixed(1));
const kindLabel = (k) => (KINDS[k] ? KINDS[k].label : String(k));
const linkSort = (a, b) => {
  const ia = LINK_ORDER.indexOf(a), ib = LINK_ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
};
function cellText(cell, rat) {
  return `${cell ?? "no cell"}${rat ? ` (${String(rat).toUpperCase()})` : ""}`;
}
function summary(r) {
  const where = r.intersection ? ` in ${ixName(r.intersection)}` : "";
  return `${kindLabel(r.kind).toUpperCase()} handover · ${r.vehicle} ${r.link}${where}\n` +
    `${cellText(r.from_cell, r.from_rat)} → ${cellText(r.to_cell, r.to_rat)}\n` +
    `interruption ${num(r.interruption_ms, 0)} ms · ${clock(r.at)} ` +
    `(${duration(hubNow() - r.at)} ago)`;
}

// One glyph per kind, centred on (x, y): a dark halo under the coloured shape keeps it
// legible on the route, the zones and other marks.
function glyph(kind, x, y, r, sw) {
  const shape = (KINDS[kind] || KINDS.success).shape;
  const make = (cls, width) => {
    const p = { class: cls, "stroke-width": width };
    switch (shape) {
      case "ring": return svg("circle", { ...p, cx: x, cy: y, r: r * 0.8 });
      case "diamond": return svg("polygon", { ...p,
        points: `${x},${y - r} ${x + r},${y} ${x},${y + r} ${x - r},${y}` });
      case "triangle": return svg("polygon", { ...p,
        points: `${x},${y - r} ${x + r * 0.95},${y + r * 0.75} ${x - r * 0.95},${y + r * 0.75}` });
      default: {
        const d = r * 0.75;
        return svg("path", { ...p,
          d: `M${x - d},${y - d}L${x + d},${y + d}M${x + d},${y - d}L${x - d},${y + d}` });
      }
    }
  };
  const fgWidth = shape === "cross" ? sw * 1.5 : sw;
  return svg("g", { class: `ho-glyph k-${kind in KINDS ? kind : "success"}` },
    make("halo", fgWidth + sw * 1.6), make("fg", fgWidth));
}

function legendIcon(kind) {
  const e = svg("svg", { class: "ho-icon", viewBox: "0 0 14 14", width: 14, height: 14,
                         "aria-hidden": "true" });
  e.append(glyph(kind, 7, 7, 5, 1.5));
  return e;
}

function renderRecords() {
  renderPlotMarks();
  renderTimeline();
  renderLegend();
  refreshDetail();
}

// ------------------------------------------------------------------ plot marks
function plotRecords() {
  return sortedHandovers().filter((r) => Number.isFinite(r.lat) && Number.isFinite(r.lon)).slice(-FIRST_LIMIT);
}

function fadeOf(age) {
  if (age <= FADE_FROM_S) return 1;
  const f = Math.min(1, (age - FADE_FROM_S) / (FADE_TO_S - FADE_FROM_S));
  return 1 - f * (1 - FADE_MIN);
}

// Handovers happen again and again at the same cell boundaries: marks of one kind that
// would be drawn on top of each other become one mark with a count ("×8"), which shows the
// newest of them (its time sets the fade) and lists the others in its tooltip.
function clusters(list, cellSize) {
  const byKey = new Map();
  for (const r of list) {
    const [x, y] = project(r.lat, r.lon);
    const k = `${r.kind}|${Math.round(x / cellSize)}|${Math.round(y / cellSize)}`;
    let c = byKey.get(k);
    if (!c) byKey.set(k, (c = { x, y, records: [] }));
    c.records.push(r);   // oldest first: the last one is the newest
  }
  return [...byKey.values()];
}

function renderPlotMarks() {
  const layer = P.hoLayer;
  if (!layer || !P.frame) return;
  if (!H.show) { layer.replaceChildren(); return; }
  const u = P.u, now = hubNow();
  // Oldest first, failures last: the newest and the worst are drawn on top.
  const list = clusters(plotRecords(), 1.6 * u).map((c) => ({ ...c, r: c.records[c.records.length - 1] }))
    .sort((a, b) => (a.r.kind === "failure") - (b.r.kind === "failure") || a.r.at - b.r.at);
  layer.replaceChildren(...list.map(({ x, y, r, records }) => {
    const g = glyph(r.kind, x, y, 1.3 * u, 0.33 * u);
    g.classList.add("ho-mark");
    g.setAttribute("data-testid", "plot-handover");
    Object.assign(g.dataset, { kind: r.kind, vehicle: r.vehicle, link: r.link, key: keyOf(r),
                               intersection: r.intersection ?? "", count: String(records.length) });
    g.style.opacity = String(fadeOf(now - r.at));
    let tip = summary(r);
    if (records.length > 1) {
      g.append(svg("text", { class: "ho-count", x: x + 1.5 * u, y: y - 1.0 * u, "font-size": 1.8 * u,
                             "stroke-width": 0.45 * u, text: `×${records.length}` }));
      const older = records.slice(0, -1).reverse();
      tip += `\n— and ${older.length} earlier ${kindLabel(r.kind)} handover(s) here:\n` +
        older.slice(0, 6).map((o) => `${clock(o.at)} ${o.vehicle} ${o.link} ${o.from_cell ?? "?"} → ${o.to_cell ?? "?"}`).join("\n") +
        (older.length > 6 ? `\n…${older.length - 6} more` : "");
    }
    g.append(svg("title", { text: tip }));
    g.addEventListener("click", (ev) => { ev.stopPropagation(); openDetail(keyOf(r), g, records.length); });
    return g;
  }));
  H.lastFade = Date.now();
}

function renderLegend() {
  const box = $("ho-legend");
  if (!box) return;
  box.hidden = false;
  const counts = {};
  for (const r of plotRecords()) counts[r.kind] = (counts[r.kind] || 0) + 1;
  const n = Object.values(counts).reduce((a, b) => a + b, 0);
  const toggle = h("input", { type: "checkbox", "data-testid": "handover-toggle",
                              "aria-label": "show handover marks on the plot" });
  toggle.checked = H.show;
  toggle.addEventListener("change", () => { H.show = toggle.checked; renderPlotMarks(); });
  box.replaceChildren(
    h("label", { class: "ho-legend-title", title: `the newest ${FIRST_LIMIT} at most; older ones fade` },
      toggle, ` Handovers: ${n} shown`),
    ...KIND_ORDER.map((k) => h("span", { class: "ho-key", "data-kind": k },
      legendIcon(k), ` ${KINDS[k].label} `, h("span", { class: "muted", text: String(counts[k] || 0) }))));
}

// ------------------------------------------------------------------ detail box
function openDetail(key, anchor, count = 1) {
  H.detail = { key, anchor, count };
  refreshDetail();
}

function closeDetail() {
  H.detail = null;
  $("ho-detail").hidden = true;
}

function refreshDetail() {
  const box = $("ho-detail");
  if (!H.detail) { box.hidden = true; return; }
  const r = HO.store.get(H.detail.key);
  if (!r) { closeDetail(); return; }
  const row = (label, ...value) => h("div", { class: "ho-d-row" },
    h("span", { class: "ho-d-label", text: label }), h("span", null, ...value));
  const vehicle = h("button", { type: "button", class: "linkish", text: r.vehicle,
                                title: "show this vehicle" });
  vehicle.addEventListener("click", () => { select(r.vehicle); });
  const close = h("button", { type: "button", class: "btn small ghost ho-d-close",
                              "aria-label": "close", "data-testid": "handover-detail-close", text: "×" });
  close.addEventListener("click", closeDetail);
  const icon = legendIcon(r.kind);
  const title = `${kindLabel(r.kind)} handover`;
  box.replaceChildren(...[   // (replaceChildren would write a null as the text "null")
    h("div", { class: "ho-d-head" }, icon,
      h("b", { class: `ho-d-kind k-${r.kind}`, text: title[0].toUpperCase() + title.slice(1) }), close),
    row("vehicle", vehicle, ` · link ${r.link}`),
    row("where", r.intersection ? ixName(r.intersection) : "outside the intersections"),
    row("cell", `${cellText(r.from_cell, r.from_rat)} → ${cellText(r.to_cell, r.to_rat)}`,
        r.inter_rat ? " · inter-RAT" : ""),
    (r.via && r.via.length) ? row("via", r.via.map((v) => (Array.isArray(v) ? `${v[1]} (${v[0]})` : String(v))).join(", ")) : null,
    row("interruption", `${num(r.interruption_ms, 0)} ms`,
        h("span", { class: "muted", text: r.interruption_basis ? ` (${BASIS_WORDS[r.interruption_basis] ?? r.interruption_basis})` : "" })),
    row("RSRP", `${num(r.rsrp_before, 0)} → ${num(r.rsrp_after, 0)} dBm`),
    row("SINR", `${num(r.sinr_before, 1)} → ${num(r.sinr_after, 1)} dB`),
    row("dwell", r.dwell_s == null ? "over 5 s" : `${num(r.dwell_s, 1)} s`,
        r.returned_after_s == null ? "" : ` · back after ${num(r.returned_after_s, 2)} s`),
    row("time", `${clock(r.at)} `, h("span", { class: "muted", text: `(${duration(hubNow() - r.at)} ago)` })),
    H.detail.count > 1 ? row("here", `${H.detail.count} ${kindLabel(r.kind)} handovers at this spot; ` +
                                     "the newest is shown (tooltip lists the others)") : null,
  ].filter(Boolean));
  box.dataset.kind = r.kind;
  box.dataset.vehicle = r.vehicle;
  box.hidden = false;
  // Beside the mark, inside the window.
  const a = H.detail.anchor && H.detail.anchor.isConnected ? H.detail.anchor.getBoundingClientRect() : null;
  const bw = box.offsetWidth, bh = box.offsetHeight;
  let left = a ? a.right + 10 : (window.innerWidth - bw) / 2;
  let top = a ? a.top - 12 : (window.innerHeight - bh) / 2;
  if (left + bw > window.innerWidth - 8) left = a ? a.left - bw - 10 : 8;
  left = Math.max(8, Math.min(left, window.innerWidth - bw - 8));
  top = Math.max(8, Math.min(top, window.innerHeight - bh - 8));
  box.style.left = `${Math.round(left)}px`;
  box.style.top = `${Math.round(top)}px`;
}

// ------------------------------------------------------------------ vehicle timeline
function renderTimeline() {
  const el = $("ho-timeline");
  if (!el) return;
  const id = S.selected;
  const v = id && S.vehicles.get(id);
  const links = new Set(v ? Object.keys(v.links || {}) : []);
  const t1 = hubNow(), t0 = t1 - TIMELINE_SPAN_S;
  const recs = id ? sortedHandovers().filter((r) => r.vehicle === id && r.at >= t0 - 1) : [];
  for (const r of recs) links.add(r.link);
  if (!links.size && id) { links.add("l5g"); links.add("lte"); }
  const lanes = [...links].sort(linkSort);
  const laneH = 30, T = 4, axisH = 15, L = 34, R = 8;
  if (!H.tlWidth) H.tlWidth = el.clientWidth;   // then kept by the ResizeObserver below
  const W = H.tlWidth || 320, Hgt = T + Math.max(1, lanes.length) * laneH + axisH;
  el.style.height = `${Hgt}px`;
  el.setAttribute("viewBox", `0 0 ${W} ${Hgt}`);
  const pw = W - L - R;
  const X = (t) => L + ((t - t0) / TIMELINE_SPAN_S) * pw;
  const kids = [];
  lanes.forEach((name, i) => {
    const y = T + i * laneH;
    kids.push(svg("rect", { class: "tl-lane", x: L, y: y + 1, width: pw, height: laneH - 2 }));
    kids.push(svg("text", { class: "tl-lane-label", x: L - 5, y: y + laneH * 0.68,
                            "text-anchor": "end", text: name }));
  });
  for (let s = 0; s <= TIMELINE_SPAN_S; s += 120) {
    const x = X(t1 - s);
    kids.push(svg("line", { class: "tl-grid", x1: x, x2: x, y1: T, y2: T + lanes.length * laneH }));
    kids.push(svg("text", { class: "tl-axis", x: Math.min(x, L + pw - 8), y: Hgt - 3,
                            "text-anchor": s === 0 ? "end" : "middle",
                            text: s === 0 ? "now" : `−${s / 60} min` }));
  }
  const lastLabelEnd = new Map();
  // Marks left to right; a junction's name is written above its mark where there is room.
  for (const r of recs) {
    const lane = lanes.indexOf(r.link);
    const x = X(Math.max(t0, r.at)), yc = T + lane * laneH + laneH * 0.66;
    if (r.intersection) {
      const name = ixName(r.intersection);
      const w = name.length * 5.4;
      const start = Math.max(L + 1, Math.min(x - w / 2, L + pw - w));
      if (start > (lastLabelEnd.get(lane) ?? -Infinity) + 4) {
        kids.push(svg("text", { class: "tl-ix", x: start, y: yc - 7.5, text: name }));
        lastLabelEnd.set(lane, start + w);
      }
    }
    const g = glyph(r.kind, x, yc, 5.5, 1.6);
    g.classList.add("ho-mark", "tl-mark");
    g.setAttribute("data-testid", "timeline-handover");
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
    Object.assign(g.dataset, { kind: r.kind, link: r.link, key: keyOf(r),
                               intersection: r.intersection ?? "" });
    g.append(svg("title", { text: summary(r) }));
    g.addEventListener("click", (ev) => { ev.stopPropagation(); openDetail(keyOf(r), g); });
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openDetail(keyOf(r), g); }
    });
    kids.push(g);
  }
  if (!recs.length) {
    kids.push(svg("text", { class: "tl-axis tl-empty", x: L + pw / 2, y: T + (lanes.length * laneH) / 2 + 3,
                            "text-anchor": "middle",
                            text: id ? "no handover in the last 10 min" : "no vehicle selected" }));
  }
  el.replaceChildren(...kids);
  H.lastTimeline = Date.now();
  el.dataset.vehicle = id || "";
  const counts = {};
  for (const r of recs) counts[r.kind] = (counts[r.kind] || 0) + 1;
  const inIx = recs.filter((r) => r.intersection).length;
  $("ho-tl-summary").textContent = !id ? "" : !recs.length ? "· none" :
    `· ${recs.length}: ` + KIND_ORDER.filter((k) => counts[k]).map((k) => `${counts[k]} ${KINDS[k].label}`).join(", ") +
    (inIx ? ` · ${inIx} in a junction` : "");
}

// ------------------------------------------------------------------ intersection table
// What is bad in one (intersection, link) row, by field: the reason, for a tooltip.
function badOf(k) {
  const bad = {};
  if (!k) return bad;
  if (k.failures > 0) bad.failures = `${k.failures} radio link failure(s) inside the zone`;
  if (Number.isFinite(k.success_rate) && k.success_rate < BAD.success_rate) {
    bad.success_rate = `success rate under ${BAD.success_rate * 100} %`;
  }
  if (Number.isFinite(k.ping_pong_rate) && k.ping_pong_rate > BAD.ping_pong_rate) {
    bad.ping_pong_rate = `ping-pong rate over ${BAD.ping_pong_rate * 100} %`;
  }
  return bad;
}
function v2iBad(v) {
  return v && Number.isFinite(v.delivery_ratio) && v.delivery_ratio < BAD.delivery_ratio
    ? `V2I delivery under ${BAD.delivery_ratio * 100} %` : null;
}

function td(text, why, extra) {
  const e = h("td", { class: `num${why ? " bad" : ""}`, text, title: why || null, ...extra });
  if (why) e.dataset.bad = "true";
  return e;
}

function renderIntersections() {
  const list = HO.ix || [];
  const table = $("ix-empty").parentElement;
  $("ix-empty").hidden = list.length > 0;
  if (!list.length) {
    $("ix-empty").querySelector("td").textContent = HO.ix ? "this site has no intersections" : "waiting for data…";
  }
  for (const tb of table.querySelectorAll("tbody.ixrow")) tb.remove();
  const linkNames = new Set();
  for (const v of S.vehicles.values()) for (const n of Object.keys(v.links || {})) linkNames.add(n);
  for (const ix of list) for (const n of Object.keys(ix.links || {})) linkNames.add(n);
  if (!linkNames.size) { linkNames.add("l5g"); linkNames.add("lte"); }
  const names = [...linkNames].sort(linkSort);
  let issues = 0;
  const why = [];
  for (const ix of list) {
    const tb = h("tbody", { class: "ixrow", "data-testid": `ix-row-${ix.id}` });
    tb.dataset.intersection = String(ix.id);
    if (H.ixHighlight === ix.id) tb.classList.add("highlight");
    const v2i = ix.v2i || {};
    const v2iWhy = v2iBad(v2i);
    let rowIssues = v2iWhy ? [v2iWhy] : [];
    names.forEach((name, i) => {
      const k = (ix.links || {})[name] || null;
      const bad = badOf(k);
      rowIssues = rowIssues.concat(Object.values(bad));
      const tr = h("tr", { "data-testid": `ix-row-${ix.id}-${name}` });
      tr.dataset.link = name;
      if (i === 0) {
        const zone = ix.vehicles_in_zone || [];
        tr.append(h("td", { rowspan: names.length, class: "ix-name" },
          h("div", { class: "vid", text: ix.name || ix.id }),
          h("div", { class: "vsub mono", text: ix.id }),
          zone.length ? h("div", { class: "vsub", text: `in zone: ${zone.join(", ")}` }) : null,
          ix.ping_pongs_recent > 0 ? h("div", { class: "hotspot", "data-testid": "ix-hotspot",
            text: `${ix.ping_pongs_recent} ping-pong(s) recently` +
              (ix.ping_pong_cells ? `: ${ix.ping_pong_cells.join(" ↔ ")}` : "") }) : null));
      }
      tr.append(h("td", { class: "ix-link", text: name }));
      if (!k) {
        tr.append(h("td", { colspan: 12, class: "dim", text: `${dash} no ${name} data inside this zone yet` }));
      } else {
        tr.append(
          td(String(k.handovers ?? dash), null),
          td(pct(k.success_rate), bad.success_rate),
          td(pct(k.ping_pong_rate), bad.ping_pong_rate),
          td(String(k.failures ?? dash), bad.failures),
          td(num(k.interruption_p50_ms, 0)), td(num(k.interruption_p95_ms, 0)),
          td(num(k.interruption_max_ms, 0)),
          td(num(k.min_rsrp_dbm, 0)), td(num(k.min_sinr_db, 0)),
          td(secs(k.time_in_zone_s)), td(secs(k.time_degraded_s)), td(secs(k.time_down_s)),
        );
      }
      if (i === 0) {
        tr.append(td(pct(v2i.delivery_ratio), v2iWhy, { rowspan: names.length }),
                  td(num(v2i.aoi_p95_s, 2), null, { rowspan: names.length }));
      }
      tb.append(tr);
    });
    tb.dataset.issues = String(rowIssues.length);
    if (rowIssues.length) { issues += 1; why.push(`${ix.name || ix.id}: ${rowIssues.join("; ")}`); }
    table.append(tb);
  }
  const count = $("ix-count");
  count.textContent = HO.ix ? (issues ? `${issues} !` : "0") : "–";
  count.classList.toggle("hot", issues > 0);
  count.title = issues ? why.join("\n") : "no intersection with a highlighted figure";
}

// ------------------------------------------------------------------ wiring
// Listeners on the page: installed once, at boot, before the console's own.
export function installHandovers() {
  installTab("fleet");
  installTab("ix", pollIntersections);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && H.detail) closeDetail(); });
  document.addEventListener("click", (ev) => {
    if (H.detail && !$("ho-detail").contains(ev.target)) closeDetail();
  });
  if (window.ResizeObserver && $("ho-timeline")) {
    // Its width from the observer: reading clientWidth every few seconds would force a
    // layout of the whole page (a fleet's table) only to draw the timeline.
    new ResizeObserver((entries) => {
      for (const en of entries) H.tlWidth = Math.round(en.contentRect.width);
      renderTimeline();
    }).observe($("ho-timeline"));
  }
}

// What the render step calls (render.js): each draws from the store and HO.
export const handovers = {
  // New records (or none any more): marks, timeline, legend and an open detail box.
  records() { renderRecords(); },
  stopped() { closeDetail(); },
  // The selected vehicle changed (or a snapshot arrived): its timeline.
  selected() { renderTimeline(); },
  plotBuilt() { renderPlotMarks(); },
  // Time moves: the timeline slides every few seconds, plot marks fade every 30 s; neither
  // while the pointer rests on it (replacing a mark would drop its tooltip).
  tick() {
    const tl = $("ho-timeline");
    if (Date.now() - H.lastTimeline > TIMELINE_EVERY_MS && !(tl && tl.matches(":hover"))) renderTimeline();
    if (Date.now() - H.lastFade > 30000 && !$("plot").matches(":hover")) renderPlotMarks();
  },
  intersections() { renderIntersections(); },
  showIntersection(id) {
    H.ixHighlight = id;
    showTab("ix");
    renderIntersections();
    const tb = document.querySelector(`tbody.ixrow[data-intersection="${CSS.escape(id)}"]`);
    if (tb) tb.scrollIntoView({ block: "nearest" });
  },
};
