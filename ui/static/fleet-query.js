// Which vehicles the fleet table shows: the operator's filter (id text, state, site, link)
// and each vehicle's state as the table ranks it. Pure reads of the store: no DOM, no writes,
// so the table, the counts and the duty control agree on one answer.

import { CONN_LABEL, NEED_RANK, NEED_TAKEOVER } from "./constants.js";
import { S, takeoverVehicles } from "./store.js";

// The states a vehicle is counted under, in the table's order (who needs a human first).
export const FLEET_STATES = ["takeover", "all_links_down", "one_link_down", "degraded", "unknown",
                             "ok", "out_of_service"];
export const STATE_LABEL = { takeover: "takeover", ...CONN_LABEL };

// A vehicle's one state: an open takeover alert wins; out of service beats its links.
export function stateOf(v, takeover) {
  if (takeover.has(v.id)) return "takeover";
  if (v.service && v.service.status === "out_of_service") return "out_of_service";
  return v.connectivity in NEED_RANK ? v.connectivity : "unknown";
}
export const rankOf = (state) => (state === "takeover" ? NEED_TAKEOVER : NEED_RANK[state]);

// Link states the link filter picks out: a link not ok (degraded, down, no data).
const LINK_TROUBLE = new Set(["degraded", "down", "stale", "unknown"]);

// The id text: a vehicle whose id holds any of its words ("shuttle-07", "007 012 033"),
// case ignored, so a few vehicles can be picked by number.
function idMatches(id, text) {
  if (!text) return true;
  const low = id.toLowerCase();
  return text.toLowerCase().split(/[\s,]+/).filter(Boolean).some((w) => low.includes(w));
}

export function matches(v, f, state) {
  if (!f) return true;
  if (f.state && f.state !== state) return false;
  if (f.site && v.site !== f.site) return false;
  if (f.link) {
    const l = v.links && v.links[f.link];
    if (!l || !LINK_TROUBLE.has(l.state)) return false;
  }
  return idMatches(v.id, f.text);
}

export const filterActive = (f) => Boolean(f && (f.text || f.state || f.site || f.link));

// The ids the table shows now, sorted.
export function shownIds() {
  const takeover = takeoverVehicles(), f = S.fleetFilter;
  const out = [];
  for (const v of S.vehicles.values()) if (matches(v, f, stateOf(v, takeover))) out.push(v.id);
  return out.sort();
}

// Sites and link names the fleet has, for the filter's choices.
export function fleetChoices() {
  const sites = new Set(), links = new Set();
  for (const v of S.vehicles.values()) {
    if (v.site) sites.add(v.site);
    for (const name of Object.keys(v.links || {})) links.add(name);
  }
  return { sites: [...sites].sort(), links: [...links].sort() };
}

// A vehicle's rank by need (the fleet table's order, the plot's label priority).
export const needRank = (v, takeover) => rankOf(stateOf(v, takeover));

// The operator who covers a vehicle, or null (the duty view's words).
export function coverOf(id) {
  if (!S.duty) return null;
  const ops = S.duty.on_duty || [];
  const explicit = ops.find((o) => (o.vehicles || []).includes(id));
  if (explicit) return explicit.operator;
  if ((S.duty.unassigned || []).includes(id)) return null;
  const all = ops.find((o) => !o.vehicles || o.vehicles.length === 0);
  return all ? all.operator : null;
}

// The vehicles the demo's fault picker offers.
export function demoVehicleIds() {
  const ids = ((S.demo && S.demo.vehicles) || []).map((v) => (typeof v === "string" ? v : v && v.id))
    .filter(Boolean);
  return ids.length ? ids : [...S.vehicles.keys()].sort();
}
