// What each WebSocket frame does: snapshot, state, alert, duty, ha (the hub pair's roles).

import { loadIncidents, loadResolved } from "./alert-actions.js";
import { applyCommand, loadCommands } from "./command-actions.js";
import { BACKOFF_MIN_MS } from "./constants.js";
import { toast } from "./dom.js";
import { applyDuty } from "./duty-actions.js";
import { linkmapSnapshot } from "./linkmap-data.js";
import { loadMe } from "./me.js";
import { applyHa } from "./pair.js";
import { loadSelectedHandovers } from "./handover-data.js";
import { loadHistory, refreshDetailSoon, select } from "./selection.js";
import { S, announce, hubNow, noteMember, pruneIncidents, putVehicle, upsertAlert } from "./store.js";

// `link`: what the socket offers a frame that concerns the connection itself (socket.js):
// {reconnectNow, watchdog}. Passed in, so frames never import the socket that calls them.
export function handleFrame(f, link) {
  if (typeof f.now === "number") S.hubOffset = f.now - Date.now() / 1000;
  switch (f.type) {
    case "snapshot": applySnapshot(f, link); break;
    case "state": applyState(f, link); break;
    case "alert": applyAlert(f); break;
    case "duty": applyDuty(f.duty); break;
    case "command": applyCommand(f.command); break;
    case "ha": applyHa(f.ha, link.reconnectNow); break;
    case "bye": toast(`The hub closed the live connection: ${f.reason ?? "no reason"}`, true); break;
    default: break;   // pong, and anything newer than this page
  }
}

function applySnapshot(f, link) {
  S.gotSnapshot = true;
  S.backoff = BACKOFF_MIN_MS;
  S.attempts = 0;
  if (typeof f.seq === "number" && f.seq < S.lastSeq) {
    // The contract says seq never goes back; a hub with a fresh journal (a restarted demo)
    // does. Its alert ids start over too, so forget what we knew about the old ones.
    S.alertSeq.clear();
    S.histories.clear();
    S.resolved = [];
    S.incidents.clear();
    S.lastSeq = f.seq;
    loadResolved();
    toast("The hub's alert journal started over (new hub?): alert history reloaded.", true);
  }
  if (typeof f.seq === "number" && f.seq > S.lastSeq) S.lastSeq = f.seq;
  const now = typeof f.now === "number" ? f.now : hubNow();
  if (f.feed) S.feed = f.feed;
  S.vehicles = new Map();
  for (const v of f.vehicles || []) putVehicle(v, now);
  const before = S.open;
  S.open = new Map();
  for (const a of f.alerts || []) {
    S.open.set(a.id, a);
    S.alertSeq.set(a.id, Math.max(S.alertSeq.get(a.id) ?? 0, f.seq ?? 0));
  }
  // Alerts that were open here but are not any more were resolved while we were away.
  if ([...before.keys()].some((id) => !S.open.has(id))) loadResolved();
  if (f.incident_groups && typeof f.incident_groups === "object") S.incidentGroups = f.incident_groups;
  if (f.runbooks && typeof f.runbooks === "object") S.runbooks = f.runbooks;
  S.alertVer += 1;
  // Members: the open alerts; members resolved while we were away come from the hub.
  for (const m of S.incidents.values()) {
    for (const [id, a] of m) if (a.state !== "resolved" && !S.open.has(id)) m.delete(id);
  }
  for (const a of S.open.values()) noteMember(a);
  pruneIncidents();
  if (S.incidents.size) loadIncidents();
  if (f.duty) S.duty = f.duty;
  if (f.ha) applyHa(f.ha, link.reconnectNow);
  if (S.selected === null && S.vehicles.size) S.selected = [...S.vehicles.keys()].sort()[0];
  if (!S.me) loadMe();
  announce("snapshot");
  refreshDetailSoon();
  loadHistory();
  loadSelectedHandovers();
  loadCommands();   // answers that came while this page was away
  linkmapSnapshot();
}

function applyState(f, link) {
  const now = typeof f.now === "number" ? f.now : hubNow();
  if (f.feed) { S.feed = f.feed; link.watchdog(); }
  const changed = [];
  for (const v of f.vehicles || []) { putVehicle(v, now); changed.push(v.id); }
  announce("vehicles", changed);
}

function applyAlert(f) {
  const a = f.alert;
  if (!a || a.id === undefined) return;
  if (typeof f.seq === "number" && f.seq > S.lastSeq) S.lastSeq = f.seq;
  const newest = S.alertSeq.get(a.id);
  if (newest !== undefined && typeof f.seq === "number" && f.seq <= newest) return;  // old news
  if (typeof f.seq === "number") S.alertSeq.set(a.id, f.seq);
  // A vehicle joining an incident already on screen does not take the selection away.
  const joins = a.incident != null && [...(S.incidents.get(a.incident)?.keys() ?? [])]
    .some((id) => id !== a.id);
  upsertAlert(a);
  const t = f.transition;
  // A new takeover shows its vehicle, unless the operator is looking at one on purpose.
  if (t && (t.kind === "raised" || t.kind === "reopened") && a.severity === "takeover" && !joins
      && a.vehicle && !S.pinned && S.vehicles.has(a.vehicle) && a.vehicle !== S.selected) {
    select(a.vehicle, false);
  }
  if (t && S.histories.has(a.id)) {
    const hist = S.histories.get(a.id);
    if (!hist.some((x) => x.seq === t.seq)) {
      hist.push(t);
      hist.sort((x, y) => x.seq - y.seq);
    }
  }
  announce("alerts");
}
