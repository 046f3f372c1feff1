// A hub pair (docs/operations.md, "A hub pair"): which hub this console talks to, its role in
// the header, and moving to the leading hub by itself. The hub says its role and every hub's
// URL (snapshot and "ha" frames, /api/ha); when the hub this console talks to is a standby, is
// fenced, or goes away, the console asks each peer's /healthz (no token) and moves to the one
// that leads. Both hubs share one journal, so alert ids and last_seq mean the same on both:
// the console resumes where it was, without missing an alert frame.

import { $, shide, st, stitle, toast } from "./dom.js";
import { S } from "./store.js";

const PROBE_TIMEOUT_MS = 1200;
const SEARCH_EVERY_MS = 800;      // at most one search this often (a reconnect loop asks a lot)
// Which hub to prefer: one that decides alerts, then a fenced one (it still alerts, flagged).
const RANK = { leader: 0, single: 0, fenced: 1 };

// Where API calls and the WebSocket go: the page's own hub ("") or a peer's URL.
export const hubBase = () => S.base || location.origin;
export const hubUrl = (path) => (S.base || "") + path;

export function applyHa(ha, reconnect) {
  if (!ha || typeof ha !== "object") return;
  S.ha = ha;
  renderRole();
  if (ha.role === "standby" || ha.role === "fenced") findLeader(reconnect);
}

export function renderRole() {
  const badge = $("hub-role");
  const ha = S.ha;
  if (!badge) return;
  if (!ha || ha.role === "single") { shide(badge, true); return; }
  const where = hubBase().replace(/^https?:\/\//, "");
  badge.className = `hub-role role-${ha.role}`;
  const leader = ha.leader ? ha.leader.replace(/^https?:\/\//, "") : "not known yet";
  const text = {
    leader: `LEADER · ${where}`,
    standby: `STANDBY · ${where} — alerts come from the leader (${leader})`,
    fenced: `FENCED · ${where} — lost its journal; alerts not journaled`,
  }[ha.role] || `${String(ha.role).toUpperCase()} · ${where}`;
  st(badge, text);
  stitle(badge, ha.role === "leader"
    ? "This hub of the pair decides alerts and takes acknowledgements."
    : "This console moves to the leading hub by itself.");
  shide(badge, false);
}

let searching = null;
let lastSearch = 0;

// Ask every peer which leads; move there (and reconnect) if it is not where we are.
export function findLeader(reconnect) {
  const peers = (S.ha && Array.isArray(S.ha.peers)) ? S.ha.peers : [];
  if (peers.length < 2 || searching || Date.now() - lastSearch < SEARCH_EVERY_MS) return;
  lastSearch = Date.now();
  searching = Promise.all(peers.map(probe)).then((answers) => {
    let best = null;
    for (const a of answers) {
      if (a && a.role in RANK && (!best || RANK[a.role] < RANK[best.role])) best = a;
    }
    if (!best || best.url === hubBase()) return;
    S.base = best.url === location.origin ? "" : best.url;
    S.ha = { ...(S.ha || {}), role: best.role, leader: best.url };
    renderRole();
    toast(`Moved to ${best.url.replace(/^https?:\/\//, "")}, the hub that leads now.`);
    if (reconnect) reconnect();
  }).catch(() => {}).finally(() => { searching = null; });
}

async function probe(peer) {
  const url = String(peer).replace(/\/+$/, "");
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PROBE_TIMEOUT_MS);
  try {
    const res = await fetch(`${url}/healthz`, { cache: "no-store", signal: abort.signal });
    if (!res.ok) return null;
    const body = await res.json();
    return { url, role: body && body.role };
  } catch {
    return null;   // down, or not reachable from here
  } finally {
    clearTimeout(timer);
  }
}
