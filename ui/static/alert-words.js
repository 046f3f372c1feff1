// Pure reads of alerts and incidents: their order, where they are, and incident phrases
// (for the queue, the cue, the fleet table and the history). Nothing here writes or draws.

import { SEV_RANK } from "./constants.js";
import { S } from "./store.js";
import { codeWords } from "./words.js";

export function cmpAlert(a, b) {
  return (SEV_RANK[a.severity] ?? 9) - (SEV_RANK[b.severity] ?? 9)
    || (a.raised_at ?? 0) - (b.raised_at ?? 0) || a.id - b.id;
}
// An intersection alert (ping-pong hotspot) has no vehicle: it names the junction instead.
export function ixName(id) {
  const ix = S.site && (S.site.intersections || []).find((i) => i.id === id);
  return ix && ix.name ? String(ix.name) : String(id);
}
export const where = (a) => [a.vehicle, a.link, a.rsu ? `RSU ${a.rsu}` : null,
  a.intersection ? `${a.vehicle ? "in " : ""}${ixName(a.intersection)}` : null]
  .filter(Boolean).join(" · ") || (a.site ? `site ${a.site}` : "");

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
function andList(xs) {
  return xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
}
// The hub's cause ("cell l5g-araya, cell lte-matsuoka-w", "intersection Araya junction") in
// words: "cells l5g-araya and lte-matsuoka-w", "Araya junction".
export function causeWords(cause) {
  const cells = [], junctions = [], other = [];
  for (const part of String(cause ?? "").split(", ")) {
    const p = part.trim();
    if (!p) continue;
    if (p.startsWith("cell ")) cells.push(p.slice(5));
    else if (p.startsWith("intersection ")) junctions.push(ixName(p.slice(13)));
    else other.push(p);
  }
  const out = [];
  if (cells.length) out.push(`${cells.length === 1 ? "cell" : "cells"} ${andList(cells)}`);
  if (junctions.length) out.push(andList(junctions));
  out.push(...other);
  return out.length ? andList(out) : "one cause";
}

// What the console knows of an incident: its open members (the card), every member seen.
export function incidentSummary(iid) {
  const m = S.incidents.get(iid);
  if (!m || !m.size) return null;
  const all = [...m.values()];
  const open = all.filter((a) => a.state !== "resolved").sort(cmpAlert);
  if (!open.length) return null;
  const first = open[0];
  const group = first.incident_group ?? "";
  const g = S.incidentGroups[group];
  const vehicles = [...new Set(all.map((a) => a.vehicle).filter(Boolean))].sort();
  const openVehicles = [...new Set(open.map((a) => a.vehicle).filter(Boolean))].sort();
  let raisedAt = Infinity;
  for (const a of all) if (Number.isFinite(a.raised_at) && a.raised_at < raisedAt) raisedAt = a.raised_at;
  // Members in the order they came: "Vehicle requests takeover → Minimal risk manoeuvre".
  const story = [...new Set(all.slice().sort((x, y) => (x.raised_at ?? 0) - (y.raised_at ?? 0) || x.id - y.id)
    .map((a) => String(a.title ?? codeWords(a.rule))))];
  return {
    id: iid, group, by: g && g.by ? String(g.by) : null, story,
    lead: all.reduce((x, y) => (y.id < x.id ? y : x)),
    title: g && g.title ? String(g.title) : group ? `Several vehicles: ${codeWords(group)}` : "Several vehicles, one cause",
    cause: String(first.incident_cause ?? ""),
    causeText: causeWords(first.incident_cause),
    open, vehicles, openVehicles,
    back: vehicles.filter((v) => !openVehicles.includes(v)),
    severity: first.severity,   // open members by severity first
    state: open.some((a) => a.state === "raised") ? "raised" : "acknowledged",
    raised_at: raisedAt,
    escalated: open.some((a) => a.escalated),
    ackedBy: [...new Set(open.map((a) => a.acknowledged_by).filter(Boolean))],
  };
}

// "6 vehicles lost their link on cell l5g-araya", for the takeover cue.
export function incidentPhrase(sum) {
  if (sum.by === "vehicle") return `${sum.vehicles.join(", ")} needs a human: ${sum.title}`;
  const n = sum.vehicles.length;
  const who = plural(n, "vehicle", "vehicles");
  switch (sum.group) {
    case "cell_outage": return `${who} lost ${n === 1 ? "its" : "their"} link on ${sum.causeText}`;
    case "intersection_trouble": return `${who} in trouble in ${sum.causeText}`;
    default: return `${who}, ${sum.causeText}: ${sum.title}`;
  }
}
