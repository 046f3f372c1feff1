// The selected vehicle: choosing it, and loading what its panel shows (detail, history, its
// commands and handovers). Each load writes the store and announces what came.

import { api } from "./api.js";
import { loadCommands } from "./command-actions.js";
import { DETAIL_REFRESH_MS, RTT_DEGRADED_MS, RTT_DOWN_MS } from "./constants.js";
import { loadSelectedHandovers } from "./handover-data.js";
import { S, announce } from "./store.js";

// `byHand`: the operator picked it (it stays picked; a new takeover does not take it away).
export function select(id, byHand = true) {
  if (!S.vehicles.has(id)) return;
  if (byHand) S.pinned = true;
  S.selected = id;
  S.detail = null;
  announce("selection", { byHand });
  refreshDetailSoon();
  loadHistory();
  loadCommands();
  loadSelectedHandovers();
}

// An intersection alert's junction: shown in the Intersections tab.
export function focusIntersection(id) { announce("intersection-focus", id); }

// An alert card was clicked: a weak stretch ahead stands out on the plot (again: back).
export function focusAlert(a) { announce("alert-focus", a); }

// The hub's points where this page has no live ones of its own (before the page was
// loaded, or while it was disconnected); live points win where both exist.
function mergeHistory(hist, ring) {
  const out = [];
  let j = 0;
  for (const p of hist) {
    while (j < ring.length && ring[j].t <= p.t) out.push(ring[j++]);
    const before = j > 0 ? ring[j - 1].t : -Infinity;
    const after = j < ring.length ? ring[j].t : Infinity;
    if (p.t - before > 1.5 && after - p.t > 1.5) out.push(p);
  }
  while (j < ring.length) out.push(ring[j++]);
  return out;
}

// The selected vehicle's last 10 minutes from the hub (GET /api/vehicles/{id}/history):
// its points go before the live ones this page collected, so the charts show the whole
// span, not only what happened since the page was loaded.
export async function loadHistory() {
  const id = S.selected;
  if (!id || !S.token) return;
  if (S.hist && S.hist.id === id && S.hist.state === "loading") return;
  S.hist = { id, state: "loading" };
  let d;
  try {
    d = await api("GET", `/api/vehicles/${encodeURIComponent(id)}/history`);
  } catch (err) {
    if (S.hist && S.hist.id === id) S.hist = { id, state: "failed", error: err.message };
    announce("history");
    return;
  }
  if (id !== S.selected || !d) return;
  let rings = S.rings.get(id);
  if (!rings) S.rings.set(id, (rings = new Map()));
  let first = Infinity;
  for (const [name, c] of Object.entries(d.links || {})) {
    const ts = c.t || [];
    const hist = ts.map((t, i) => {
      const ul = c.ul_kbps ? c.ul_kbps[i] : null;
      return { t, rtt: c.rtt_p95_ms ? c.rtt_p95_ms[i] : null, ul: ul == null ? null : ul / 1000,
               state: c.state ? c.state[i] : "unknown" };
    });
    rings.set(name, mergeHistory(hist, rings.get(name) || []));
    if (ts.length && ts[0] < first) first = ts[0];
  }
  const th = (d.thresholds && d.thresholds.rtt_p95_ms) || {};
  S.hist = { id, state: "loaded", from: Number.isFinite(first) ? first : null,
             points: Object.values(d.links || {}).reduce((n, c) => n + ((c.t || []).length), 0),
             ul_required_kbps: d.ul_required_kbps ?? null,
             rtt_degraded_ms: Number.isFinite(th.degraded) ? th.degraded : RTT_DEGRADED_MS,
             rtt_down_ms: Number.isFinite(th.down) ? th.down : RTT_DOWN_MS };
  announce("history");
}

export function refreshDetailSoon() {
  clearInterval(S.detailTimer);
  if (!S.selected || !S.token) return;
  loadDetail();
  S.detailTimer = setInterval(loadDetail, DETAIL_REFRESH_MS);
}

async function loadDetail() {
  const id = S.selected;
  if (!id) return;
  try {
    const d = await api("GET", `/api/vehicles/${encodeURIComponent(id)}`);
    if (id !== S.selected) return;
    S.detail = d;
    announce("detail");
  } catch (err) {
    if (err.status === 404 && id === S.selected) { S.detail = null; announce("detail"); }
  }
}

