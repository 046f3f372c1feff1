// Incident cards: several vehicles' alerts with one cause, acknowledged as one; and one
// vehicle's alerts of one cause (a grouping `by: "vehicle"`: its takeover request and the
// minimal risk manoeuvre that follows), shown as that vehicle's one card.

import { acknowledgeIncident } from "./alert-actions.js";
import { resolveCard, showAlertError } from "./alert-cards.js";
import { cmpAlert, plural, where } from "./alert-words.js";
import { clock, duration, h, shide, st, stitle, toast } from "./dom.js";
import { makeRunbookEl, runbookOfGroup, runbookOfRule, updateRunbook } from "./runbook.js";
import { S, hubNow } from "./store.js";
import { select } from "./selection.js";
import { codeWords, compressIds, detailWords } from "./words.js";

// Several vehicles' alerts that started together on one cell or in one junction are one
// incident (l4mon/alerts/incidents.py): one card, one takeover cue, acknowledged as a whole.
// Each member stays an alert of its own (resolved on its own); the hub puts the incident's
// id on each member (`incident`), with its grouping and shared cause.

export const incidentEls = new Map();   // incident id -> its card's elements

export function makeIncidentEl(iid) {
  const e = { id: iid, members: new Map() };
  e.li = h("li", { class: "alert incident", "data-testid": `incident-${iid}` });
  e.sev = h("span", { class: "sev" });
  e.title = h("span", { class: "alert-title", "data-testid": "incident-title" });
  e.age = h("span", { class: "alert-age", "data-testid": "incident-age" });
  e.cause = h("span", { class: "inc-cause", "data-testid": "incident-cause" });
  e.count = h("span", { class: "inc-count", "data-testid": "incident-vehicles" });
  e.state = h("span", { class: "state-tag", "data-testid": "incident-state" });
  e.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "incident-escalated" });
  e.acked = h("span", { "data-testid": "incident-acked-by" });
  e.ack = h("button", { type: "button", class: "btn small primary", "data-testid": "incident-ack",
                        text: "Acknowledge incident",
                        title: "acknowledge every member of this incident at once" });
  e.error = h("span", { class: "form-error", role: "alert", "data-testid": "incident-error" });
  e.error.hidden = true;
  e.list = h("ol", { class: "inc-members", "data-testid": "incident-members" });
  e.back = h("div", { class: "inc-back", "data-testid": "incident-resolved-members" });
  e.runbook = makeRunbookEl();
  e.li.append(
    h("div", { class: "alert-head" }, e.sev, e.title),
    h("div", { class: "inc-line" }, e.cause, e.count),
    h("div", { class: "alert-meta" }, e.state, e.age, e.esc, e.acked,
      h("span", { class: "alert-actions act" }, e.ack)),
    e.error, ...e.runbook.els, e.list, e.back,
  );
  e.ack.addEventListener("click", (ev) => { ev.stopPropagation(); ackIncidentCard(iid, e.ack, e); });
  // One vehicle's card: its name shows the vehicle, as an alert card's does.
  e.cause.addEventListener("click", (ev) => {
    const d = e.li.dataset;
    if (d.by === "vehicle" && d.vehicle) { ev.stopPropagation(); select(d.vehicle); }
  });
  return e;
}

export function updateIncidentEl(e, sum, first = false) {
  e.li.className = `alert incident sev-${sum.severity} st-${sum.state}`;
  const d = e.li.dataset;
  d.state = sum.state;
  d.severity = String(sum.severity);
  d.vehicles = String(sum.vehicles.length);
  d.group = sum.group;
  d.cause = sum.cause;
  d.escalated = sum.escalated ? "true" : "false";
  const one = sum.by === "vehicle";
  d.by = sum.by ?? "";
  d.vehicle = one ? sum.vehicles.join(" ") : "";
  e.li.classList.toggle("one-vehicle", one);
  st(e.sev, String(sum.severity));
  // A stretch's warnings are not an incident yet: the card says what the stretch is.
  st(e.title, one || sum.by === "stretch" ? sum.title : `INCIDENT · ${sum.title}`);
  e.age.dataset.since = String(sum.raised_at);
  st(e.age, duration(hubNow() - sum.raised_at));
  stitle(e.age, `started ${clock(sum.raised_at)}`);
  if (one) {
    // One vehicle: the card names it and tells what happened, in order.
    st(e.cause, sum.vehicles.join(", "));
    stitle(e.cause, sum.vehicles.length ? `show ${sum.vehicles.join(", ")}` : "");
    st(e.count, sum.story.join(" → "));
    stitle(e.count, "this vehicle's alerts of one cause, in the order they came: one card, " +
                    "one acknowledgement");
  } else {
    st(e.cause, sum.causeText);
    stitle(e.cause, sum.cause ? `as the hub recorded it: ${sum.cause}` : "");
    const still = sum.openVehicles.length;
    st(e.count, plural(sum.vehicles.length, "vehicle", "vehicles") +
      (still < sum.vehicles.length ? ` · ${still} still affected` : ""));
    stitle(e.count, sum.vehicles.join(", "));
  }
  st(e.ack, one ? "Acknowledge" : "Acknowledge incident");
  stitle(e.ack, one ? "acknowledge this vehicle's card: every alert on it at once"
    : "acknowledge every member of this incident at once");
  updateRunbook(e.runbook, runbookOfGroup(sum.group) || (one ? runbookOfRule(sum.lead.rule) : null),
                first);
  shide(e.runbook.none, true);   // an incident of several vehicles may have no runbook of its own
  e.state.className = `state-tag ${sum.state}`;
  st(e.state, sum.state);
  e.esc.hidden = !sum.escalated;
  st(e.acked, sum.state === "acknowledged" && sum.ackedBy.length
    ? `acknowledged by ${sum.ackedBy.join(", ")}` : "");
  e.ack.hidden = sum.state !== "raised";
  // The members, one compact line each: those still to be acknowledged first (a long list
  // scrolls), then in the queue's order.
  const ids = new Set(sum.open.map((a) => a.id));
  for (const [id, m] of e.members) if (!ids.has(id)) { m.li.remove(); e.members.delete(id); }
  const order = sum.open.slice().sort((x, y) =>
    (x.state === "raised" ? 0 : 1) - (y.state === "raised" ? 0 : 1) || cmpAlert(x, y));
  order.forEach((a, i) => {
    let m = e.members.get(a.id);
    if (!m) { m = makeMemberEl(a.id); e.members.set(a.id, m); }
    updateMemberEl(m, a);
    if (e.list.children[i] !== m.li) e.list.insertBefore(m.li, e.list.children[i] || null);
  });
  e.back.hidden = !sum.back.length;
  st(e.back, sum.back.length ? `Resolved already: ${compressIds(sum.back)}` : "");
  stitle(e.back, sum.back.length ? "members of this incident whose alerts are resolved" : "");
}

function makeMemberEl(id) {
  const m = { id };
  m.li = h("li", { class: "inc-member", "data-testid": `incident-member-${id}` });
  m.veh = h("span", { class: "m-veh", "data-testid": "member-vehicle" });
  m.title = h("span", { class: "m-title", "data-testid": "member-title" });
  m.state = h("span", { class: "state-tag", "data-testid": "alert-state" });
  m.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "alert-escalated" });
  m.resolve = h("button", { type: "button", class: "btn small", "data-testid": "resolve-button",
                            text: "Resolve…" });
  m.reason = h("input", { type: "text", required: true, maxlength: 500,
                          placeholder: "reason (required) — what was done?",
                          "data-testid": "reason-input", "aria-label": "reason for resolving" });
  m.confirm = h("button", { type: "submit", class: "btn small danger",
                            "data-testid": "resolve-confirm", text: "Resolve" });
  m.cancel = h("button", { type: "button", class: "btn small ghost", text: "Cancel" });
  m.form = h("form", { class: "resolve-form", "data-testid": "resolve-form", novalidate: true },
             m.reason, m.confirm, m.cancel);
  m.form.hidden = true;
  m.error = h("span", { class: "form-error", role: "alert", "data-testid": "alert-error" });
  m.error.hidden = true;
  m.li.append(
    h("div", { class: "m-row" }, h("span", { class: "m-who" }, m.veh, h("span", null, m.state, m.esc)),
      m.title, h("span", { class: "alert-actions act" }, m.resolve)),
    h("div", { class: "act" }, m.form, m.error),
  );
  m.resolve.addEventListener("click", (ev) => {
    ev.stopPropagation();
    m.form.hidden = false;
    m.resolve.hidden = true;
    m.reason.focus();
  });
  m.cancel.addEventListener("click", (ev) => {
    ev.stopPropagation();
    m.form.hidden = true;
    m.resolve.hidden = false;
    m.error.hidden = true;
  });
  m.form.addEventListener("click", (ev) => ev.stopPropagation());
  m.error.addEventListener("click", (ev) => ev.stopPropagation());
  m.form.addEventListener("submit", (ev) => { ev.preventDefault(); resolveCard(id, m); });
  // Clicking a member shows its vehicle, as clicking an alert's vehicle does.
  m.li.addEventListener("click", (ev) => {
    const a = S.open.get(id);
    if (a && a.vehicle) { ev.stopPropagation(); select(a.vehicle); }
  });
  return m;
}

function updateMemberEl(m, a) {
  m.li.className = `inc-member sev-${a.severity} st-${a.state}` +
    (a.vehicle && a.vehicle === S.selected ? " selected" : "");
  const d = m.li.dataset;
  d.rule = String(a.rule);
  d.state = String(a.state);
  d.severity = String(a.severity);
  d.vehicle = a.vehicle == null ? "" : String(a.vehicle);
  d.intersection = a.intersection == null ? "" : String(a.intersection);
  d.escalated = a.escalated ? "true" : "false";
  st(m.veh, [a.vehicle, a.link].filter(Boolean).join(" · ") || where(a));
  stitle(m.veh, a.vehicle ? `show ${a.vehicle}` : "");
  st(m.title, String(a.title ?? codeWords(a.rule)));
  stitle(m.title, [a.title ?? codeWords(a.rule), a.detail ? detailWords(a.detail, a) : "",
                   `raised ${clock(a.raised_at)}`].filter(Boolean).join(" — "));
  m.state.className = `state-tag ${a.state}`;
  st(m.state, String(a.state));
  m.esc.hidden = !a.escalated;
}

export function markSelectedMembers() {
  for (const e of incidentEls.values()) {
    for (const m of e.members.values()) {
      const a = S.open.get(m.id);
      m.li.classList.toggle("selected", Boolean(a && a.vehicle && a.vehicle === S.selected));
    }
  }
}

// The card's "Acknowledge incident" (and the takeover cue's): every member at once; a
// refusal is said on the card, or in a toast without one.
export async function ackIncidentCard(iid, button, e) {
  if (button) button.disabled = true;
  try {
    await acknowledgeIncident(iid);
  } catch (err) {
    if (err.status === 401) return;
    const message = err.status === 409 ? "This incident is resolved already."
      : `Acknowledge failed: ${err.message}`;
    if (e) showAlertError(e, message);
    else toast(message, true);
  } finally {
    if (button) button.disabled = false;
  }
}
