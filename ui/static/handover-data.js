// Handover records and intersection figures from the hub: polled with the hub's cursor,
// kept here, announced when new ones came (the plot marks, the timeline and the
// intersection table draw them: handovers.js).

import { api } from "./api.js";
import { S, announce, hubNow } from "./store.js";

const POLL_MS = 4000;            // new handover records
const IX_POLL_MS = 5000;         // intersection KPIs
export const FIRST_LIMIT = 200;  // the first load, and the most marks on the plot
const PAGE_LIMIT = 50;           // one incremental poll
const STORE_MAX = 3000;
export const TIMELINE_SPAN_S = 600;

export const HO = {
  store: new Map(),      // record key -> record
  total: null,           // the hub's last_seq at the last poll: the polling cursor
  polling: false,
  timer: null,
  ixTimer: null,
  ix: null,              // the last GET /api/intersections
  loadedFor: null,       // vehicle whose own history was fetched
};

export const keyOf = (r) => `${r.vehicle}|${r.link}|${r.at}|${r.from_cell}|${r.to_cell}|${r.kind}`;

// ------------------------------------------------------------------ data: handovers
function merge(list) {
  let added = 0;
  for (const r of list || []) {
    if (!r || !Number.isFinite(r.at)) continue;
    const k = keyOf(r);
    if (!HO.store.has(k)) { HO.store.set(k, r); added += 1; }
  }
  if (HO.store.size > STORE_MAX) {
    // Keep the newest, and everything the timeline may still show.
    const keep = sortedHandovers().slice(-STORE_MAX);
    HO.store = new Map(keep.map((r) => [keyOf(r), r]));
  }
  return added;
}
export const sortedHandovers = () => [...HO.store.values()].sort((a, b) => a.at - b.at);

// Cheap incremental polling with the hub's cursor: `seq` numbers records in the order they
// became final, so `after_seq` returns exactly what is new, even a long failure that became
// final after later handovers. A page that comes back full is followed by the next one.
export async function poll() {
  if (HO.polling || !S.token) return;
  HO.polling = true;
  try {
    const first = HO.total === null;
    const q = first ? `limit=${FIRST_LIMIT}` : `limit=${PAGE_LIMIT}&after_seq=${HO.total}`;
    let res = await api("GET", `/api/handovers?${q}`);
    if (HO.total !== null && res.last_seq < HO.total) {   // a new hub (restarted demo): start over
      HO.store.clear();
      HO.total = null;
      HO.polling = false;
      return poll();
    }
    const top = res.last_seq;
    let added = merge(res.handovers);
    while (!first && res.handovers.length >= PAGE_LIMIT) {   // more than a page was new
      const oldest = res.handovers[res.handovers.length - 1].seq;
      res = await api("GET", `/api/handovers?limit=${PAGE_LIMIT}&after_seq=${HO.total}` +
                      `&before_seq=${oldest}`);
      added += merge(res.handovers);
    }
    HO.total = top;
    if (added || first) announce("handovers");
  } catch { /* not live: the console says so elsewhere; try again at the next poll */
  } finally {
    HO.polling = false;
  }
}

async function loadVehicleHistory(id) {
  try {
    const since = (hubNow() - TIMELINE_SPAN_S - 60).toFixed(3);
    const res = await api("GET", `/api/handovers?vehicle=${encodeURIComponent(id)}&since=${since}&limit=2000`);
    if (merge(res.handovers)) announce("handovers");
  } catch { /* the next selection or poll tries again */ }
}

export async function pollIntersections() {
  if (!S.token) return;
  try {
    const list = await api("GET", "/api/intersections");
    if (!Array.isArray(list)) return;
    HO.ix = list;
    announce("intersections");
  } catch { /* not live: shown elsewhere */ }
}

export function startHandovers() {
  stopHandovers();
  poll();
  pollIntersections();
  HO.timer = setInterval(poll, POLL_MS);
  HO.ixTimer = setInterval(pollIntersections, IX_POLL_MS);
}

export function stopHandovers() {
  clearInterval(HO.timer);
  clearInterval(HO.ixTimer);
  HO.timer = HO.ixTimer = null;
  HO.store.clear();
  HO.total = null;
  HO.loadedFor = null;
  announce("handovers-stopped");
}

// The selected vehicle's own handovers of the timeline's span, once per selection.
export function loadSelectedHandovers() {
  const id = S.selected;
  if (id && id !== HO.loadedFor && S.token) {
    HO.loadedFor = id;
    loadVehicleHistory(id);
  }
}
