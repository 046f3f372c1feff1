// The fleet table: one <tbody> per vehicle, updated in place, ordered by need.

import { $, AgeField, Field, chg, connClass, fmt, h, pill } from "./dom.js";
import { incidentSummary } from "./alert-words.js";
import { FLEET_STATES, filterActive, matches, rankOf, stateOf } from "./fleet-query.js";
import { S, alertMarks, takeoverVehicles } from "./store.js";
import { select } from "./selection.js";
import { codeWords, connWords, modeWords, ratWords, reasonsWords, serviceWords,
  stateWords } from "./words.js";

// One <tbody> per vehicle, built once and then updated in place (a state frame carries the
// whole fleet twice a second: rebuilding 100 rows each time would cost more than the rest).
// Order: whoever needs a human first (open takeover alert, no usable link, a link down,
// degraded, unknown, ok), then by id, and the vehicles out of service last, apart; rows move
// only when a vehicle's rank changed.
const rowEls = new Map();   // vehicle id -> row record {tb, key, rank, refs...}
let fleetOrder = [];        // ids in the table's order, as last laid out


// What the connectivity cell shows: a vehicle out of service is that, whatever its links.
const shownConn = (v) => (serviceWords(v) ? "out_of_service" : v.connectivity);

export function renderFleet(ids) {
  $("fleet-empty").hidden = S.vehicles.size > 0;
  for (const [id, r] of rowEls) {
    if (!S.vehicles.has(id)) { r.tb.remove(); rowEls.delete(id); }
  }
  const takeover = takeoverVehicles();
  const uncovered = new Set((S.duty && S.duty.unassigned) || []);
  for (const id of ids ? ids : S.vehicles.keys()) {
    const v = S.vehicles.get(id);
    if (!v) continue;
    let r = rowEls.get(id);
    if (!r) { r = makeRow(id); rowEls.set(id, r); }
    // A row scrolled out of sight gets its figures when it comes into view (rowSeen);
    // what decides its place and colour-coding is kept current for every row.
    if (r.visible || r.key === null) fillRow(r, v, takeover.has(id), uncovered.has(id));
    else { r.dirty = true; markRow(r, v, takeover.has(id), uncovered.has(id)); }
  }
  if (!ids) {   // after an alert or duty change: marks that only alerts move
    for (const [id, r] of rowEls) {
      if (chg(r, "take", takeover.has(id))) r.tb.classList.toggle("takeover", r.take);
      if (chg(r, "sel", id === S.selected)) r.tb.classList.toggle("selected", r.sel);
      incidentBadge(r);
    }
  }
  orderFleet(takeover);
  const count = $("fleet-count");
  if (count.textContent !== String(S.vehicles.size)) count.textContent = String(S.vehicles.size);
}

// Ranks every row, hides those the filter leaves out and counts the fleet per state (the
// counts are of the whole fleet, so a filter never hides where the trouble is).
function orderFleet(takeover) {
  const ranks = new Map(), counts = Object.fromEntries(FLEET_STATES.map((k) => [k, 0]));
  const f = S.fleetFilter;
  let shown = 0;
  for (const [id, r] of rowEls) {
    const v = S.vehicles.get(id), state = stateOf(v, takeover), rank = rankOf(state);
    counts[state] += 1;
    ranks.set(id, rank);
    if (chg(r, "rank", rank)) { r.tb.dataset.rank = String(rank); r.tb.dataset.state = state; }
    const show = matches(v, f, state);
    if (show) shown += 1;
    if (chg(r, "shown", show)) r.tb.hidden = !show;
  }
  renderCounts(counts, shown);
  const want = [...rowEls.keys()].sort(
    (a, b) => ranks.get(a) - ranks.get(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (want.length === fleetOrder.length && want.every((id, i) => id === fleetOrder[i])) return;
  // Move as few rows as possible: those outside the longest run already in order.
  const table = $("fleet-empty").parentElement;
  const at = new Map(fleetOrder.map((id, i) => [id, i]));
  const keep = stayers(want.map((id) => (at.has(id) ? at.get(id) : -1)));
  let next = null;
  for (let i = want.length - 1; i >= 0; i -= 1) {
    const tb = rowEls.get(want[i]).tb;
    if (!keep[i] || tb.parentNode !== table) table.insertBefore(tb, next);
    next = tb;
  }
  fleetOrder = want;
}

// The counts per state (buttons that filter by it) and how many rows the filter shows.
function renderCounts(counts, shown) {
  const f = S.fleetFilter;
  for (const k of FLEET_STATES) {
    const b = $(`state-count-${k}`);
    if (!b) continue;
    const n = String(counts[k]);
    if (b.dataset.count !== n) { b.dataset.count = n; b.querySelector(".n").textContent = n; }
    b.classList.toggle("zero", counts[k] === 0);
    const on = f.state === k;
    if (b.getAttribute("aria-pressed") !== String(on)) b.setAttribute("aria-pressed", String(on));
  }
  const total = S.vehicles.size;
  const words = filterActive(f) ? `${shown} of ${total} shown` : `all ${total} shown`;
  const out = $("fleet-shown");
  if (out && out.textContent !== words) { out.textContent = words; out.dataset.shown = String(shown); }
  $("fleet-none").hidden = !(total > 0 && shown === 0);
}

// Which positions of `seq` (old indices, -1 for new rows) form a longest increasing
// subsequence: those rows can stay where they are while the others move around them.
function stayers(seq) {
  const tails = [], tailIdx = [], prev = new Array(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i += 1) {
    const v = seq[i];
    if (v < 0) continue;
    let lo = 0, hi = tails.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < v) lo = mid + 1; else hi = mid; }
    tails[lo] = v; tailIdx[lo] = i;
    prev[i] = lo > 0 ? tailIdx[lo - 1] : -1;
  }
  const keep = new Array(seq.length).fill(false);
  for (let i = tails.length ? tailIdx[tails.length - 1] : -1; i >= 0; i = prev[i]) keep[i] = true;
  return keep;
}

// Rows in view of the table's scroll box; the others are brought up to date on entering it.
let rowWatch = null;
function rowSeen(entries) {
  const takeover = takeoverVehicles();
  const uncovered = new Set((S.duty && S.duty.unassigned) || []);
  for (const en of entries) {
    const r = rowEls.get(en.target.dataset.vehicle);
    if (!r) continue;
    r.visible = en.isIntersecting;
    const v = r.visible && r.dirty && S.vehicles.get(r.id);
    if (v) fillRow(r, v, takeover.has(r.id), uncovered.has(r.id));
  }
}

function makeRow(id) {
  const tb = h("tbody", { class: "vrow", "data-testid": `vehicle-row-${id}` });
  tb.dataset.vehicle = id;
  tb.addEventListener("click", () => select(id));
  if (!rowWatch && window.IntersectionObserver) {
    rowWatch = new IntersectionObserver(rowSeen, { root: $("fleet-view"), rootMargin: "200px 0px" });
  }
  if (rowWatch) rowWatch.observe(tb);
  return { id, tb, key: null, rank: null, shown: true, take: false, sel: false, inc: null, conn: null, connCls: null,
           teleCls: null, teleTitle: null, unseen: null, takeShown: null, uncov: null,
           visible: !rowWatch, dirty: false };
}

// What an out-of-sight row keeps current: the attributes and classes others may look for.
function markRow(r, v, takeover, uncovered) {
  markConn(r, v);
  if (chg(r, "takeShown", takeover)) r.takeEl.hidden = !takeover;
  if (chg(r, "uncov", uncovered && !serviceWords(v))) r.uncovEl.hidden = !r.uncov;
  if (chg(r, "take", takeover)) r.tb.classList.toggle("takeover", takeover);
}

// The connectivity pill, or "out of service" (the row dimmed): its words depend on how many
// links the vehicle has and how many are down, so the key is the words themselves.
function markConn(r, v) {
  const conn = shownConn(v);
  const words = conn === "out_of_service" ? "out of service" : connWords(conn, v);
  if (!chg(r, "conn", `${conn}:${words}`)) return;
  r.connEl.className = `pill ${connClass(conn)}`;
  r.connText.set(words);
  r.connEl.title = serviceWords(v) ?? "";
  r.tb.dataset.connectivity = String(v.connectivity);
  r.tb.dataset.service = String((v.service && v.service.status) || "unknown");
  r.tb.classList.toggle("out-of-service", conn === "out_of_service");
}

// The row's cells, for a vehicle with these links (rebuilt only when its links change).
function buildRow(r, v, names) {
  const td = (cls) => h("td", cls ? { class: cls } : null);
  const tr0 = h("tr");
  const vid = h("div", { class: "vid", text: v.id });
  const mode = h("div", { class: "vsub" });
  r.mode = new Field(mode);
  r.modeEl = mode;
  r.telePill = h("span");
  r.teleText = new Field(r.telePill);
  const teleAge = h("span");
  r.teleAge = new AgeField(teleAge);
  r.tele = h("div", { class: "vsub" }, r.telePill, teleAge, " s");
  r.connEl = h("span", { class: "pill" });
  r.connText = new Field(r.connEl);
  r.unseenEl = h("div", { class: "vsub unseen", "data-testid": `unseen-${v.id}`,
                          text: "not seen by the hub" });
  r.takeEl = h("div", null, pill("c-all_links_down", "TAKEOVER", "an open takeover alert"));
  r.uncovEl = h("div", { class: "uncovered", text: "no operator",
                         title: "no operator on duty covers this vehicle" });
  r.incEl = h("div", { class: "inc-badge", "data-testid": `incident-badge-${v.id}`, text: "incident" });
  r.incEl.hidden = true;
  const span = Math.max(1, names.length);
  tr0.append(h("td", { rowspan: span, title: v.id }, vid, mode, r.tele),
             h("td", { rowspan: span }, h("div", null, r.connEl), r.unseenEl, r.takeEl, r.incEl,
               r.uncovEl));
  r.links = [];
  const rows = [tr0];
  if (!names.length) {
    tr0.append(h("td", { text: "–" }), h("td", { colspan: 9, class: "dim", text: "no link heard" }));
  }
  names.forEach((name, i) => {
    const tr = i === 0 ? tr0 : h("tr");
    if (i > 0) rows.push(tr);
    const c = { tr, name, trCls: null, stateCls: null, stateTitle: null, clock: null, cellTitle: null };
    c.stateEl = h("span", { class: "pill" });
    c.state = new Field(c.stateEl);
    c.clockEl = h("span", { class: "clock-flag", text: " ⚠ clock",
                            title: "this link's clock offset is implausible: its delay figures are not trusted" });
    const rat = td(), cell = td(), rtt = td("num"), loss = td("num"), ul = td("num");
    const rsrp = td("num"), sinr = td("num"), age = td("num");
    c.cellEl = cell;
    c.rat = new Field(rat); c.cell = new Field(cell); c.rtt = new Field(rtt);
    c.loss = new Field(loss); c.ul = new Field(ul); c.rsrp = new Field(rsrp);
    c.sinr = new Field(sinr); c.age = new AgeField(age);
    tr.append(h("td", { text: name }), h("td", null, c.stateEl, c.clockEl), rat, cell, rtt,
              loss, ul, rsrp, sinr, age);
    r.links.push(c);
  });
  r.tb.replaceChildren(...rows);
  r.key = names.join("|");
  for (const k of ["conn", "connCls", "teleCls", "teleTitle", "unseen", "takeShown", "uncov", "modeTitle", "inc"]) r[k] = null;
  incidentBadge(r);
}

// "incident" under a member vehicle's connectivity: its alert is one of several with one cause.
function incidentBadge(r) {
  if (!r.incEl) return;
  const inc = alertMarks().incident.get(r.id) ?? null;
  if (!chg(r, "inc", inc)) return;
  r.incEl.hidden = inc === null;
  r.tb.dataset.incident = inc === null ? "" : String(inc);
  const sum = inc === null ? null : incidentSummary(inc);
  r.incEl.title = sum ? `part of an incident: ${sum.title} — ${sum.causeText}` : "";
}

function fillRow(r, v, takeover, uncovered) {
  r.dirty = false;
  const links = v.links || {};
  let key = "";
  for (const name in links) key = key ? `${key}|${name}` : name;
  if (r.key !== key) buildRow(r, v, Object.keys(links));
  r.mode.set(modeWords(v.mode));
  if (chg(r, "modeTitle", v.mode)) r.modeEl.title = v.mode == null ? "" : `mode: ${modeWords(v.mode)}`;
  const fresh = v.telemetry === "fresh";
  if (chg(r, "teleCls", fresh)) {
    r.telePill.className = fresh ? "" : "pill stale";
    r.tele.title = fresh ? "" : "telemetry stale: no state message lately";
  }
  r.teleText.set(fresh ? "fresh " : `${codeWords(v.telemetry ?? "?")} `);
  r.teleAge.at(v.age_s, v._rx, fresh ? 1 : 0);
  markConn(r, v);
  if (chg(r, "unseen", v.unseen || "")) {
    r.unseenEl.hidden = !v.unseen;
    r.unseenEl.title = v.unseen ? String(v.unseen) : "";
  }
  if (chg(r, "takeShown", takeover)) r.takeEl.hidden = !takeover;
  // a vehicle out of service needs no operator
  if (chg(r, "uncov", uncovered && !serviceWords(v))) r.uncovEl.hidden = !r.uncov;
  for (const c of r.links) {
    const l = links[c.name];
    if (chg(c, "trCls", l.state)) {
      c.tr.className = l.state === "stale" || l.state === "unknown" ? "stale-link" : "";
      c.stateEl.className = `pill s-${l.state}`;
      c.state.set(stateWords(l.state));
    }
    const why = l.reasons && l.reasons.length ? `${stateWords(l.state)}: ${reasonsWords(l)}` : "";
    if (chg(c, "stateTitle", why)) c.stateEl.title = why;
    if (chg(c, "clock", Boolean(l.clock_suspect))) c.clockEl.hidden = !l.clock_suspect;
    c.rat.set(ratWords(l.rat));
    const cell = l.cell_id ?? "–";
    c.cell.set(cell);
    if (chg(c, "cellTitle", cell)) c.cellEl.title = l.cell_id ?? "";
    c.rtt.set(fmt(l.rtt_p95_ms, 0));
    c.loss.set(l.loss_ratio == null ? "–" : fmt(l.loss_ratio * 100, 2));
    c.ul.set(l.ul_kbps == null ? "–" : fmt(l.ul_kbps / 1000, 1));
    c.rsrp.set(fmt(l.rsrp_dbm, 0));
    c.sinr.set(fmt(l.sinr_db, 1));
    c.age.at(l.age_s, v._rx, 1);
  }
  if (chg(r, "take", takeover)) r.tb.classList.toggle("takeover", takeover);
  if (chg(r, "sel", v.id === S.selected)) r.tb.classList.toggle("selected", r.sel);
}

