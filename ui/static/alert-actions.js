// Alert and incident actions: acknowledge, resolve, load what the frames do not carry. Each
// calls the API, writes the store and announces what changed; a refusal is thrown to the
// view that asked, which says it where the operator clicked.

import { api } from "./api.js";
import { RESOLVED_KEEP, STATE_RANK } from "./constants.js";
import { S, announce, upsertAlert } from "./store.js";

// An answer to our own POST: kept unless a frame already brought something newer.
export function applyOwnResult(a, tell = true) {
  if (!a || a.id === undefined) return;
  const cur = S.open.get(a.id) || S.resolved.find((x) => x.id === a.id);
  if (cur && (STATE_RANK[a.state] ?? 0) < (STATE_RANK[cur.state] ?? 0)) return;
  upsertAlert(a);
  if (tell) announce("alerts");
}

export async function loadResolved() {
  try {
    const list = await api("GET", "/api/alerts?state=resolved&limit=20");
    if (!Array.isArray(list)) return;
    const seen = new Map(S.resolved.map((a) => [a.id, a]));
    for (const a of list) if (!seen.has(a.id) && !S.open.has(a.id)) seen.set(a.id, a);
    S.resolved = [...seen.values()]
      .sort((x, y) => (y.resolved_at ?? 0) - (x.resolved_at ?? 0)).slice(0, RESOLVED_KEEP);
    announce("resolved");
  } catch { /* shown as not live elsewhere */ }
}

export async function acknowledge(id) {
  applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/ack`, {}));
}

export async function resolveAlert(id, reason, force = false) {
  applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/resolve`,
                           force ? { reason, force: true } : { reason }));
}

// An alert's transitions from the hub, merged with those the frames brought.
export async function loadAlertHistory(id) {
  const res = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
  const hist = (res && res.history) || [];
  const cached = S.histories.get(id) || [];
  const bySeq = new Map([...cached, ...hist].map((t) => [t.seq, t]));
  S.histories.set(id, [...bySeq.values()].sort((x, y) => x.seq - y.seq));
  if (res && res.alert && res.alert.state === "resolved" && S.open.has(id)) {
    applyOwnResult(res.alert);
  }
}

// Members resolved while this page was away (or before it was loaded), from the hub.
let incidentsLoading = false;
export async function loadIncidents() {
  if (incidentsLoading) return;
  incidentsLoading = true;
  try {
    const res = await api("GET", "/api/incidents");
    for (const g of (res && res.groups) || []) {
      if (g && g.name && !S.incidentGroups[g.name]) S.incidentGroups[g.name] = { title: g.title, by: g.by };
    }
    for (const inc of (res && res.open) || []) {
      const m = S.incidents.get(inc.id);
      if (!m) continue;
      for (const a of inc.alerts || []) if (a.state === "resolved" && !m.has(a.id)) m.set(a.id, a);
    }
    S.alertVer += 1;
    announce("alerts");
  } catch { /* the cards stand on the open alerts alone */ } finally {
    incidentsLoading = false;
  }
}

// One click acknowledges every member not yet acknowledged (each journaled as its own; each
// also arrives as an alert frame).
export async function acknowledgeIncident(iid) {
  const view = await api("POST", `/api/incidents/${encodeURIComponent(iid)}/ack`, { note: "" });
  for (const a of (view && view.alerts) || []) applyOwnResult(a, false);
  announce("alerts");
}

// Pages kept on screen: paging further back drops the newest (the journal still has them).
const KEEP_ROWS = 1000;

// One page of the journal's alerts (the History tab), newest first, or one further back
// (`older`); false when `current()` says a newer request took its place.
export async function loadJournalPage(path, older, current) {
  const H = S.alertHistory;
  try {
    const page = await api("GET", path);
    if (!current()) return false;
    const rows = (page && page.alerts) || [];
    H.rows = older ? [...H.rows, ...rows].slice(-KEEP_ROWS) : rows;
    H.next = page ? page.next_before : null;
    H.error = null;
  } catch (err) {
    if (!current()) return false;
    H.error = err.status === 503 ? "this hub keeps no journal" : err.message;
  }
  return true;
}
