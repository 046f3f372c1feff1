// The link map on the site plot (GET /api/linkmap): per 25 m cell, the share of past passes
// on which a link failed the measure the hub warns on (named in the legend), under one
// condition; a cell that passes that measure but fails another of the map's as often (a link
// degraded on every pass, never down) is drawn as strong, outlined "not warned on", so the
// map's worst stretches never look as fine as the rest. Above it, each weak stretch a
// vehicle is heading into (the vehicle brief's `ahead`), outlined and tied to its vehicle.
//
// Cost: the cells are drawn once per map, link, condition or plot rebuild, into their own
// <g> (P.mapLayer), never per state frame; the highlights (P.aheadLayer) are a few elements
// per weak vehicle, rewritten only where they changed. Without a map (404) the control, the
// legend and both layers stay empty and hidden.

import { $, chg, fmt, h, svg } from "./dom.js";
import { P, project } from "./geometry.js";
import { LMD, chooseCondition, chooseLink, followDrift } from "./linkmap-data.js";
import { S } from "./store.js";
import { select } from "./selection.js";
import { conditionWords, linkWords, measureWords, outlookWords } from "./words.js";

// Sequential, dim slate (never failed) → amber (the threshold) → hot crimson (always
// failed); kept clear of the vehicles' green and the warning's yellow outline.
const RAMP = [[0, [59, 74, 87]], [0.5, [222, 128, 40]], [1, [255, 40, 84]]];
// The legend's opacities; the cells' own are in console.css (.lm-cell.r-ok / .r-weak).
const FAINT = 0.3;             // cells under the threshold: there, but out of the way
const STRONG = 0.88;

const LM = {
  show: true,
  drawnKey: null,      // what P.mapLayer holds
  els: new Map(),      // "vehicle|link" -> highlight record
  focus: null,         // alert id the operator clicked (its stretch emphasised)
  alertsVer: -1,
  alerted: new Map(),  // "vehicle|link" -> open weak_link_ahead alert id
};

function riskColour(r) {
  const x = Math.max(0, Math.min(1, r));
  for (let i = 1; i < RAMP.length; i += 1) {
    const [x1, c1] = RAMP[i];
    if (x > x1 && i < RAMP.length - 1) continue;
    const [x0, c0] = RAMP[i - 1];
    const f = (x - x0) / (x1 - x0);
    const c = c0.map((v, k) => Math.round(v + (c1[k] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  return "rgb(255,40,84)";
}

const pct = (r) => (Number.isFinite(r) ? `${Math.round(r * 100)} %` : "–");
const measureOf = (d) => measureWords(d && d.rule ? d.rule.measure : "unfit");

// ------------------------------------------------------------------ the control and legend
function option(value, text, title) {
  return h("option", { value, text, title: title || null });
}

function renderBar() {
  const bar = $("lm-bar");
  if (!bar) return;
  const d = LMD.data;
  bar.hidden = LMD.status !== "loaded" || !d;
  if (bar.hidden) return;
  const linkSel = $("lm-link"), condSel = $("lm-cond");
  linkSel.replaceChildren(...(d.links || []).map((l) => option(l, linkWords(l), `link ${l}`)));
  linkSel.value = d.link;
  const cur = d.current || {};
  const curKey = `${cur.weather}/${cur.light}`;
  const known = (d.conditions || []).map((c) => `${c.weather}/${c.light}`);
  const nowInMap = known.includes(curKey);
  condSel.replaceChildren(
    option("", `now: ${conditionWords(cur.weather, cur.light)}`,
           `the hub's current condition (${curKey})` +
           (nowInMap ? "" : ": no drives under it, every condition pooled")),
    ...known.filter((k) => k !== curKey).map((k) => {
      const [w, l] = k.split("/");
      return option(k, conditionWords(w, l), `past drives under ${k}`);
    }));
  condSel.value = LMD.cond && known.includes(LMD.cond) && LMD.cond !== curKey ? LMD.cond : "";
  condSel.title = condSel.selectedOptions[0] ? condSel.selectedOptions[0].title : "";
  $("lm-toggle").checked = LM.show;
  renderNote(d);
  renderLegend(d);
}

function rampSvg(threshold) {
  const W = 80, Hh = 10, n = 20;
  const e = svg("svg", { class: "lm-ramp", width: W, height: Hh + 4, viewBox: `0 0 ${W} ${Hh + 4}`,
                         "aria-hidden": "true" });
  for (let i = 0; i < n; i += 1) {
    const r = (i + 0.5) / n;
    e.append(svg("rect", { x: (i * W) / n, y: 2, width: W / n + 0.3, height: Hh,
                           fill: riskColour(r), "fill-opacity": r >= threshold ? STRONG : FAINT }));
  }
  const tx = threshold * W;
  e.append(svg("line", { class: "lm-ramp-tick", x1: tx, x2: tx, y1: 0, y2: Hh + 4 }));
  return e;
}

function swatch(cls, fill) {
  const e = svg("svg", { class: "lm-swatch", width: 12, height: 12, viewBox: "0 0 12 12",
                         "aria-hidden": "true" });
  e.append(svg("rect", { class: `lm-cell ${cls}`, x: 0.5, y: 0.5, width: 11, height: 11, fill }));
  return e;
}

// What the layer rests on, when it is not simply the condition's own drives.
function renderNote(d) {
  const minPasses = d.rule.min_passes;
  const cond = conditionWords(d.condition.weather, d.condition.light);
  const parts = [], why = [];
  if (d.pooled_cells > 0) {
    parts.push(d.condition.in_map ? `${d.pooled_cells} cells pooled` : "all conditions pooled");
    why.push(d.condition.in_map
      ? `${d.pooled_cells} of the cells shown had fewer than ${minPasses} passes under ${cond}: ` +
        "they are judged on every condition's drives together, as the warning judges them"
      : `no past drive under ${cond}: every cell is judged on all conditions' drives together, ` +
        "as the warning judges it");
  }
  if (d.truncated) {
    parts.push(`nearest ${d.max_cells} cells`);
    why.push(`the map holds ${d.total_cells} cells for this link; the ${d.max_cells} nearest ` +
             "the site are drawn");
  }
  const note = $("lm-note");
  note.textContent = parts.join(" · ");
  note.title = why.join("\n");
  note.hidden = !parts.length;
}

function renderLegend(d) {
  const rule = d.rule || {};
  const th = Number.isFinite(rule.threshold) ? rule.threshold : 0.5;
  const minPasses = rule.min_passes ?? 2;
  $("lm-legend").replaceChildren(
    h("span", { class: "lm-key", title: `each square is ${fmt(d.grid.cell_m, 0)} m of road; ` +
      `from ${pct(th)} up (the tick: the warning's threshold) a stretch counts as weak and is ` +
      "drawn strong; under it, faint" },
      h("span", { class: "muted", text: "0" }), rampSvg(th), h("span", { class: "muted", text: "100 %" }),
      ` share of past passes ${measureOf(d)}`,
      h("span", { class: "muted", text: " (what the hub warns on)" })),
    d.unwarned_cells > 0 ? h("span", { class: "lm-key", "data-testid": "linkmap-unwarned-key",
      title: `${d.unwarned_cells} squares pass "${measureOf(d)}" but failed another of the ` +
        `map's measures on ${pct(th)} of their passes or more (each square's tooltip says which): ` +
        "the hub does not warn of them" },
      swatch("r-unwarned", riskColour(1)), ` weak by another measure: not warned on`) : null,
    h("span", { class: "lm-key", title: `a cell with fewer than ${minPasses} passes says ` +
      "nothing yet: neither weak nor safe" }, swatch("r-none"), ` fewer than ${minPasses} passes`));
}

// ------------------------------------------------------------------ the cells (once per change)
function keyOf(d) {
  return d ? `${d.fingerprint}|${d.link}|${d.condition.weather}/${d.condition.light}` : null;
}

function cellTip(d, i) {
  const c = d.cells;
  const risk = c.risk[i], passes = c.passes[i];
  const cond = conditionWords(d.condition.weather, d.condition.light);
  const lines = [];
  if (risk === null) {
    lines.push(`${linkWords(d.link)}: ${passes} past pass${passes === 1 ? "" : "es"} here — ` +
               `too few to say (${d.rule.min_passes} needed)`);
  } else {
    const failed = Math.round(risk * passes);
    lines.push(`${linkWords(d.link)}: ${measureOf(d)} on ${failed} of ${passes} past passes ` +
               `(${pct(risk)})${risk >= d.rule.threshold ? " — WEAK STRETCH" : ""}`);
    const worst = c.worst ? c.worst[i] : null;
    if (worst !== null && worst !== undefined && worst > risk) {
      const weak = risk < d.rule.threshold && worst >= d.rule.threshold;
      lines.push(`${measureWords(c.worst_measure[i])} on ${Math.round(worst * passes)} of ` +
                 `${passes} (${pct(worst)})` +
                 (weak ? " — WEAK by this measure, which the hub does not warn on" : ""));
    }
  }
  lines.push(c.pooled[i] ? `all conditions pooled: fewer than ${d.rule.min_passes} passes under ${cond}`
    : `from past passes under ${cond}`);
  lines.push(`${c.drives[i]} drive(s) · time down ${pct(c.share_down[i])} · ` +
             `${c.outage_starts[i]} outage start(s)`);
  lines.push(`RTT p95 ${c.rtt_p95_ms[i] === null ? "not measured" : `${fmt(c.rtt_p95_ms[i], 0)} ms`} · ` +
             `usable uplink p5 ${c.ul_p05_kbps[i] === null ? "not measured"
               : `${fmt(c.ul_p05_kbps[i] / 1000, 1)} Mbit/s`}`);
  lines.push(`(cell ${c.x[i]},${c.y[i]} · ${d.link} · ${d.condition.weather}/${d.condition.light})`);
  return lines.join("\n");
}

function drawCells() {
  const g = P.mapLayer;
  if (!g) return;
  const d = LMD.status === "loaded" ? LMD.data : null;
  g.style.display = d && LM.show ? "" : "none";
  g.dataset.state = d ? (LM.show ? "shown" : "hidden") : "none";
  const key = keyOf(d);
  if (key === LM.drawnKey) return;
  LM.drawnKey = key;
  if (!d || !P.frame) { g.replaceChildren(); return; }
  const c = d.cells, th = d.rule.threshold;
  const n = (c.x || []).length;
  // Only what the plot can show, whatever the panel's shape: its box and a box's span
  // around it (a map of a whole town need not cost the plot of one site).
  const B = P.bounds;
  const span = B ? Math.max(B.x1 - B.x0, B.y1 - B.y0) : Infinity;
  const weak = [], faint = [], thin = [], unwarned = [];
  let weakCount = 0;
  for (let i = 0; i < n; i += 1) {
    const [x0, y0] = project(c.north[i], c.west[i]);
    const [x1, y1] = project(c.south[i], c.east[i]);
    if (B && (x1 < B.x0 - span || x0 > B.x1 + span || y1 < B.y0 - span || y0 > B.y1 + span)) continue;
    const r = c.risk[i];
    const rect = svg("rect", { x: x0.toFixed(1), y: y0.toFixed(1), width: (x1 - x0).toFixed(1),
                               height: (y1 - y0).toFixed(1), "data-i": i });
    if (r === null) {
      rect.setAttribute("class", "lm-cell r-none");
      thin.push(rect);
    } else if (r >= th) {
      rect.setAttribute("class", "lm-cell r-weak");
      rect.setAttribute("fill", riskColour(r));
      rect.dataset.weak = "true";
      rect.dataset.lat = String(c.lat[i]);
      rect.dataset.lon = String(c.lon[i]);
      weak.push(rect);
      weakCount += 1;
    } else if (c.worst && c.worst[i] !== null && c.worst[i] >= th) {
      // Passes the warned measure, fails another as often: strong, outlined "not warned on".
      rect.setAttribute("class", "lm-cell r-unwarned");
      rect.setAttribute("fill", riskColour(c.worst[i]));
      rect.dataset.unwarned = String(c.worst_measure[i]);
      unwarned.push(rect);
    } else {
      rect.setAttribute("class", "lm-cell r-ok");
      rect.setAttribute("fill", riskColour(r));
      faint.push(rect);
    }
  }
  // The weak ones last: on top, where cells touch.
  g.replaceChildren(...thin, ...faint, ...unwarned, ...weak);
  Object.assign(g.dataset, { link: d.link, weather: d.condition.weather, light: d.condition.light,
                             cells: String(thin.length + faint.length + unwarned.length + weak.length),
                             weak: String(weakCount), unwarned: String(unwarned.length),
                             measure: String(d.rule.measure) });
}

function onCellHover(ev) {
  const t = ev.target;
  if (!(t instanceof SVGRectElement) || t.firstChild || !LMD.data) return;
  const i = Number(t.dataset.i);
  if (Number.isInteger(i)) t.append(svg("title", { text: cellTip(LMD.data, i) }));
}

// ------------------------------------------------------------------ weak stretches ahead (per frame)
function alertedStretches() {
  if (LM.alertsVer === S.alertVer) return LM.alerted;
  const m = new Map();
  for (const a of S.open.values()) {
    if (a.rule === "weak_link_ahead" && a.vehicle) m.set(`${a.vehicle}|${a.link}`, a.id);
  }
  LM.alerted = m;
  LM.alertsVer = S.alertVer;
  if (LM.focus !== null && ![...m.values()].includes(LM.focus)) LM.focus = null;
  return m;
}

function makeHighlight(vid, link) {
  const g = svg("g", { class: "lm-ahead", "data-testid": `weak-ahead-${vid}-${link}` });
  const line = svg("line", { class: "lm-ahead-line" });
  const box = svg("rect", { class: "lm-ahead-cell" });
  const title = svg("title");
  g.append(line, box, title);
  g.addEventListener("click", () => select(vid));
  Object.assign(g.dataset, { vehicle: vid, link });
  return { g, line, box, title, cls: null, pos: null, cell: null, tip: null, alert: null };
}

export function renderAhead() {
  const layer = P.aheadLayer;
  if (!layer || !P.frame) return;
  const alerted = alertedStretches();
  const cellM = LMD.data && LMD.data.grid ? LMD.data.grid.cell_m : 25;
  const seen = new Set();
  let drift = null;
  for (const v of S.vehicles.values()) {
    const ahead = v.ahead;
    if (!ahead || !Number.isFinite(v.lat) || !Number.isFinite(v.lon)) continue;
    for (const [link, a] of Object.entries(ahead)) {
      if (LMD.data && !LMD.cond && a && a.weather
          && (a.weather !== LMD.data.condition.weather || a.light !== LMD.data.condition.light)) {
        drift = `${a.weather}/${a.light}`;
      }
      if (!a || !a.weak || !Number.isFinite(a.lat) || !Number.isFinite(a.lon)) continue;
      const k = `${v.id}|${link}`;
      seen.add(k);
      let e = LM.els.get(k);
      if (!e) { e = makeHighlight(v.id, link); LM.els.set(k, e); layer.append(e.g); }
      const alertId = alerted.get(k) ?? null;
      const emph = v.id === S.selected || (alertId !== null && alertId === LM.focus);
      const cls = `lm-ahead l-${link === "lte" ? "lte" : "l5g"}${alertId !== null ? " alerted" : ""}` +
        `${emph ? " emph" : ""}`;
      if (chg(e, "cls", cls)) {
        e.g.setAttribute("class", cls);
        e.g.dataset.emphasis = emph ? "true" : "false";
      }
      if (chg(e, "alert", alertId)) e.g.dataset.alert = alertId === null ? "" : String(alertId);
      const [cx, cy] = project(a.lat, a.lon);
      const cell = `${a.lat},${a.lon}`;
      if (chg(e, "cell", cell)) {
        const half = cellM / 2;
        e.box.setAttribute("x", (cx - half).toFixed(1));
        e.box.setAttribute("y", (cy - half).toFixed(1));
        e.box.setAttribute("width", cellM.toFixed(1));
        e.box.setAttribute("height", cellM.toFixed(1));
        e.line.setAttribute("x2", cx.toFixed(1));
        e.line.setAttribute("y2", cy.toFixed(1));
        e.g.dataset.cell = Array.isArray(a.cell) ? a.cell.join(",") : "";
      }
      const [vx, vy] = project(v.lat, v.lon);
      const pos = `${vx.toFixed(1)},${vy.toFixed(1)}`;
      if (chg(e, "pos", pos)) { e.line.setAttribute("x1", vx.toFixed(1)); e.line.setAttribute("y1", vy.toFixed(1)); }
      const tip = `${v.id} · ${outlookWords(link, a)}` +
        (alertId !== null ? " · alert open" : "") + `\n(${link}: in_s ${a.in_s}, share ${a.share}, ` +
        `passes ${a.passes}, ${a.weather}/${a.light}${a.pooled ? ", pooled" : ""})`;
      if (chg(e, "tip", tip)) e.title.textContent = tip;
    }
  }
  for (const [k, e] of LM.els) {
    if (!seen.has(k)) { e.g.remove(); LM.els.delete(k); }
  }
  // The emphasised ones on top.
  for (const e of LM.els.values()) {
    if (e.cls && e.cls.includes(" emph") && layer.lastChild !== e.g) layer.append(e.g);
  }
  layer.dataset.count = String(LM.els.size);
  // "Now" moved on (the sun set, an RSU reports snow): the layer showing "now" follows, at
  // most every 30 s, and once per condition the vehicles moved to (a vehicle a few km off
  // may see dusk a minute before the site's origin does).
  if (drift !== null) {
    followDrift(drift);
  }
}

// ------------------------------------------------------------------ what other modules call
export function installLinkmap() {
  $("lm-link").addEventListener("change", (ev) => chooseLink(ev.target.value));
  $("lm-cond").addEventListener("change", (ev) => chooseCondition(ev.target.value));
  $("lm-toggle").addEventListener("change", (ev) => { LM.show = ev.target.checked; drawCells(); });
}

// What the render step calls (render.js).
export const linkmap = {
  // The map came (or went): the control, the cells and the highlights.
  loaded() {
    renderBar();
    drawCells();
    renderAhead();
  },
  // The plot was rebuilt: new (empty) groups to draw into.
  plotBuilt() {
    // The plot's own layout may already have drawn highlights into the new group (through
    // renderAhead): forget them *and* take them out, or they stay behind as frozen copies.
    for (const e of LM.els.values()) e.g.remove();
    LM.els.clear();
    LM.drawnKey = null;
    if (P.mapLayer) P.mapLayer.addEventListener("mouseover", onCellHover);
    drawCells();
    renderAhead();
  },
  // An alert card was clicked: its stretch stands out (again: back to normal).
  focusAlert(a) {
    if (!a || a.rule !== "weak_link_ahead") return;
    LM.focus = LM.focus === a.id ? null : a.id;
    renderAhead();
  },
};
