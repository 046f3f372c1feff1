// The one state store: everything the console knows (`S`), and the mutations that more
// than one module makes (vehicles in, alerts in, incident membership). Modules read `S`
// directly; whoever writes announces what changed (`announce`, below), and the one render
// step (render.js) draws: a write alone never draws.

import { BACKOFF_MIN_MS, RESOLVED_KEEP, RING_KEEP_S, RING_KEEP_SELECTED_S,
         RING_MAX } from "./constants.js";

export const S = {
  token: null,
  me: null,
  vehicles: new Map(),     // id -> vehicle brief (+ _rx: local ms when received)
  open: new Map(),         // alert id -> alert (raised or acknowledged)
  alertSeq: new Map(),     // alert id -> seq of the newest transition applied
  resolved: [],            // recently resolved alerts, newest first
  // Incidents (l4mon/alerts/incidents.py): several vehicles' alerts with one cause, shown,
  // cued and acknowledged as one. What ties them is on the alerts (`incident`, its id).
  incidents: new Map(),    // incident id -> Map(alert id -> member alert, open or resolved)
  incidentGroups: {},      // grouping name -> {title, by, runbook} (the snapshot's incident_groups)
  runbooks: {},            // rule name -> {steps, call}: each alert's next step (the snapshot's)
  alertVer: 0,             // bumped whenever an alert changes (memo of alertMarks)
  duty: null,
  commands: new Map(),     // command id -> command (docs/console-api.md, "Commands")
  site: undefined,         // undefined: not loaded yet; null: the hub has none
  selected: null,
  // What the fleet table shows (fleet-query.js): id text, state, site, a link not ok.
  fleetFilter: { text: "", state: "", site: "", link: "" },
  // The History tab's page of the journal (history-tab.js): rows newest first, the cursor.
  alertHistory: { rows: [], next: null, error: null },
  pinned: false,           // the operator picked the selected vehicle by hand
  lastSeq: 0,              // highest alert seq seen; sent as last_seq on reconnect
  ws: null,
  wsOpen: false,
  gotSnapshot: false,
  lastFrameAt: 0,          // local ms of the newest frame on any socket
  backoff: BACKOFF_MIN_MS,
  attempts: 0,
  reconnectAt: 0,
  connectStartedAt: 0,
  reconnectTimer: null,
  pingTimer: null,
  hubOffset: 0,            // hub clock minus local clock, seconds
  rings: new Map(),        // vehicle id -> Map(link -> [{t, rtt, ul, state}])
  expanded: new Set(),     // alert ids whose history is shown
  histories: new Map(),    // alert id -> [transition] sorted by seq
  demo: null,
  live: false,
  feed: {},                // site -> the hub's view of its feed (l4mon/site_watch.py)
  base: "",                // the hub API calls go to: "" (this page's) or a pair peer's URL
  ha: null,                // the hub's role in its pair and the peers' URLs (pair.js)
  detail: null,            // GET /api/vehicles/{selected}
  detailTimer: null,
  cueActive: false,
  hist: null,              // the selected vehicle's GET .../history: {id, state, ...}
  perf: { applyMs: [], frames: 0, maxMs: 0 },   // state frames: parse + apply, ms
};

// The operator changed the fleet table's filter (fleet-filter.js): only known keys, as text.
export function setFleetFilter(patch) {
  const f = { ...S.fleetFilter };
  for (const k of Object.keys(f)) if (k in patch) f[k] = String(patch[k] ?? "");
  S.fleetFilter = f;
}

// The hub's clock, from the offset the newest frame carried.
export const hubNow = () => Date.now() / 1000 + S.hubOffset;

// A vehicle brief in: kept, and its links' figures appended to the live chart rings.
export function putVehicle(v, now) {
  v._rx = Date.now();
  S.vehicles.set(v.id, v);
  let rings = S.rings.get(v.id);
  if (!rings) S.rings.set(v.id, (rings = new Map()));
  for (const [name, l] of Object.entries(v.links || {})) {
    let ring = rings.get(name);
    if (!ring) rings.set(name, (ring = []));
    if (ring.length && ring[ring.length - 1].t >= now) continue;
    ring.push({ t: now, rtt: l.rtt_p95_ms, ul: l.ul_kbps == null ? null : l.ul_kbps / 1000,
                state: l.state });
    const keep = v.id === S.selected ? RING_KEEP_SELECTED_S : RING_KEEP_S;
    let drop = 0;
    while (drop < ring.length && ring[drop].t < now - keep) drop += 1;
    if (ring.length - drop > RING_MAX) drop = ring.length - RING_MAX;
    if (drop) ring.splice(0, drop);
  }
}

// An alert in (open or resolved): the open map, the resolved list and its incident.
export function upsertAlert(a) {
  S.alertVer += 1;
  noteMember(a);
  if (a.state === "resolved") {
    S.open.delete(a.id);
    S.resolved = [a, ...S.resolved.filter((x) => x.id !== a.id)].slice(0, RESOLVED_KEEP);
  } else {
    S.open.set(a.id, a);
    S.resolved = S.resolved.filter((x) => x.id !== a.id);
  }
}

// Vehicles with an open takeover alert, and those in an open incident of several vehicles
// (vehicle -> incident id): worked out again only when an alert changed, not on every state frame.
let marks = { ver: -1, takeover: new Set(), incident: new Map() };
export function alertMarks() {
  if (marks.ver === S.alertVer) return marks;
  const takeover = new Set(), incident = new Map();
  for (const a of S.open.values()) {
    if (!a.vehicle) continue;
    if (a.severity === "takeover") takeover.add(a.vehicle);
    // One vehicle's own card (a grouping by vehicle) is no incident of several vehicles, nor
    // are warnings of one weak stretch ahead (a grouping by stretch): nothing is wrong yet.
    const by = S.incidentGroups[a.incident_group]?.by;
    if (a.incident != null && by !== "vehicle" && by !== "stretch") incident.set(a.vehicle, a.incident);
  }
  marks = { ver: S.alertVer, takeover, incident };
  return marks;
}
export const takeoverVehicles = () => alertMarks().takeover;

// An alert is a member of the incident it names, and of no other.
export function noteMember(a) {
  for (const [iid, m] of S.incidents) if (iid !== a.incident && m.has(a.id)) m.delete(a.id);
  if (a.incident == null) return;
  let m = S.incidents.get(a.incident);
  if (!m) S.incidents.set(a.incident, (m = new Map()));
  m.set(a.id, a);
}

// An incident none of whose members is open any more is over: its card goes, its members
// stay in "Recently resolved".
export function pruneIncidents() {
  for (const [iid, m] of S.incidents) {
    let open = false;
    for (const a of m.values()) if (a.state !== "resolved") { open = true; break; }
    if (!open) S.incidents.delete(iid);
  }
}

// What changed, announced by whoever wrote the store (actions, frames): the one render step
// (render.js) listens and draws. Writers never call a renderer, so data flows one way.
const listeners = [];
export function onChange(fn) { listeners.push(fn); }
export function announce(what, detail) { for (const fn of listeners) fn(what, detail); }
