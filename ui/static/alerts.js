// The alert queue (cards, acknowledge, resolve, history) and the recently resolved list.

import { api } from "./api.js";
import { RESOLVED_KEEP, SEV_RANK, STATE_RANK } from "./constants.js";
import { $, clock, duration, h, st, stitle } from "./dom.js";
import { handovers } from "./handovers.js";
import { causeWords, incidentEls, incidentSummary, makeIncidentEl,
         updateIncidentEl } from "./incidents.js";
import { linkmap } from "./linkmap-layer.js";
import { renderAlertsAndFriends } from "./render.js";
import { makeRunbookEl, runbookOfRule, updateRunbook } from "./runbook.js";
import { S, hubNow, pruneIncidents, upsertAlert } from "./store.js";
import { select } from "./vehicle-panel.js";
import { detailWords } from "./words.js";

// An answer to our own POST: apply it unless a frame already brought something newer.
export function applyOwnResult(a, render = true) {
  if (!a || a.id === undefined) return;
  const cur = S.open.get(a.id) || S.resolved.find((x) => x.id === a.id);
  if (cur && (STATE_RANK[a.state] ?? 0) < (STATE_RANK[cur.state] ?? 0)) return;
  upsertAlert(a);
  if (render) renderAlertsAndFriends();
}

export async function loadResolved() {
  try {
    const list = await api("GET", "/api/alerts?state=resolved&limit=20");
    if (!Array.isArray(list)) return;
    const seen = new Map(S.resolved.map((a) => [a.id, a]));
    for (const a of list) if (!seen.has(a.id) && !S.open.has(a.id)) seen.set(a.id, a);
    S.resolved = [...seen.values()]
      .sort((x, y) => (y.resolved_at ?? 0) - (x.resolved_at ?? 0)).slice(0, RESOLVED_KEEP);
    renderResolved();
  } catch { /* shown as not live elsewhere */ }
}

export const alertEls = new Map();

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

// The queue: an alert on its own is a card; open alerts sharing an `incident` are ONE card
// (the incident), most urgent first, then the oldest.
function queueItems() {
  const items = [], seen = new Set();
  for (const a of S.open.values()) {
    if (a.incident != null) {
      if (seen.has(a.incident)) continue;
      const sum = incidentSummary(a.incident);
      if (sum) {
        seen.add(a.incident);
        items.push({ inc: sum, id: a.incident, severity: sum.severity, at: sum.raised_at });
        continue;
      }
    }
    items.push({ alert: a, id: a.id, severity: a.severity, at: a.raised_at });
  }
  return items.sort((x, y) => (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9)
    || (x.at ?? 0) - (y.at ?? 0) || x.id - y.id);
}

export function renderAlerts() {
  pruneIncidents();
  const items = queueItems();
  const queue = $("alert-queue");
  const singles = new Set(), incs = new Set();
  for (const it of items) (it.inc ? incs : singles).add(it.id);
  for (const [id, e] of alertEls) {
    if (!singles.has(id)) { e.li.remove(); alertEls.delete(id); S.expanded.delete(id); }
  }
  for (const [id, e] of incidentEls) {
    if (!incs.has(id)) { e.li.remove(); incidentEls.delete(id); }
  }
  // The runbook is open on the card that needs a human first (the oldest takeover still to be
  // acknowledged); the others show their first step, a click from the rest, so that a small
  // screen still shows more than one card.
  const first = items.find((it) => it.severity === "takeover"
    && (it.inc ? it.inc.state : it.alert.state) === "raised");
  for (const it of items) {
    if (it.inc) {
      let e = incidentEls.get(it.id);
      if (!e) { e = makeIncidentEl(it.id); incidentEls.set(it.id, e); }
      updateIncidentEl(e, it.inc, it === first);
    } else {
      let e = alertEls.get(it.id);
      if (!e) { e = makeAlertEl(it.id); alertEls.set(it.id, e); }
      updateAlertEl(e, it.alert, it === first);
    }
  }
  // Reorder only when the order changed: moving a node would steal the focus of a reason
  // being typed.
  const want = items.map((it) => (it.inc ? incidentEls : alertEls).get(it.id).li);
  const have = [...queue.children];
  if (want.length !== have.length || want.some((li, i) => li !== have[i])) {
    want.forEach((li, i) => { if (queue.children[i] !== li) queue.insertBefore(li, queue.children[i] || null); });
  }
  $("alert-empty").hidden = items.length > 0;
  const count = $("alert-count");
  st(count, String(items.length));
  stitle(count, incs.size ? `${S.open.size} open alerts: ${incs.size} of the cards ` +
    `${incs.size === 1 ? "is an incident" : "are incidents"} (several vehicles, one cause)` : "");
  count.classList.toggle("hot", items.some((it) => it.severity === "takeover"));
}

function makeAlertEl(id) {
  const e = {};
  e.li = h("li", { class: "alert", "data-testid": `alert-${id}` });
  e.sev = h("span", { class: "sev" });
  e.title = h("span", { class: "alert-title", "data-testid": "alert-title" });
  e.where = h("span", { class: "alert-where" });
  e.age = h("span", { class: "alert-age", "data-testid": "alert-age" });
  e.state = h("span", { class: "state-tag", "data-testid": "alert-state" });
  e.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "alert-escalated" });
  e.acked = h("span", { "data-testid": "alert-acked-by" });
  e.detail = h("div", { class: "alert-detail" });
  e.runbook = makeRunbookEl();
  e.ack = h("button", { type: "button", class: "btn small primary", "data-testid": "ack-button",
                        text: "Acknowledge" });
  e.resolve = h("button", { type: "button", class: "btn small", "data-testid": "resolve-button",
                            text: "Resolve…" });
  e.reason = h("input", { type: "text", required: true, maxlength: 500,
                          placeholder: "reason (required) — what was done?",
                          "data-testid": "reason-input", "aria-label": "reason for resolving" });
  e.confirm = h("button", { type: "submit", class: "btn small danger",
                            "data-testid": "resolve-confirm", text: "Resolve" });
  e.cancel = h("button", { type: "button", class: "btn small ghost", text: "Cancel" });
  e.form = h("form", { class: "resolve-form", "data-testid": "resolve-form", novalidate: true },
             e.reason, e.confirm, e.cancel);
  e.form.hidden = true;
  e.error = h("span", { class: "form-error", role: "alert", "data-testid": "alert-error" });
  e.error.hidden = true;
  e.history = h("ol", { class: "history", "data-testid": "alert-history" });
  e.history.hidden = true;
  e.li.append(
    h("div", { class: "alert-head" }, e.sev, e.title, e.where, e.age),
    h("div", { class: "alert-meta" }, e.state, e.esc, e.acked,
      h("span", { class: "alert-actions act" }, e.ack, e.resolve)),
    h("div", { class: "act" }, e.form, e.error),
    e.detail,
    ...e.runbook.els,
    e.history,
  );
  e.ack.addEventListener("click", (ev) => { ev.stopPropagation(); acknowledge(id, e); });
  e.resolve.addEventListener("click", (ev) => {
    ev.stopPropagation();
    e.form.hidden = false;
    e.resolve.hidden = true;
    e.reason.focus();
  });
  e.cancel.addEventListener("click", (ev) => {
    ev.stopPropagation();
    e.form.hidden = true;
    e.resolve.hidden = false;
    e.error.hidden = true;
  });
  e.form.addEventListener("click", (ev) => ev.stopPropagation());
  e.form.addEventListener("submit", (ev) => { ev.preventDefault(); resolveAlert(id, e); });
  e.where.addEventListener("click", (ev) => {
    const a = S.open.get(id);
    if (a && a.vehicle) { ev.stopPropagation(); select(a.vehicle); }
    else if (a && a.intersection) { ev.stopPropagation(); handovers.showIntersection(a.intersection); }
  });
  e.history.addEventListener("click", (ev) => ev.stopPropagation());
  e.li.addEventListener("click", () => {
    toggleHistory(id, e.history);
    linkmap.focusAlert(S.open.get(id));   // a weak stretch ahead: its outline stands out
  });
  return e;
}

function updateAlertEl(e, a, first) {
  e.li.className = `alert sev-${a.severity} st-${a.state}`;
  e.li.dataset.rule = String(a.rule);
  e.li.dataset.state = String(a.state);
  e.li.dataset.severity = String(a.severity);
  e.li.dataset.vehicle = a.vehicle == null ? "" : String(a.vehicle);
  e.li.dataset.intersection = a.intersection == null ? "" : String(a.intersection);
  e.li.dataset.escalated = a.escalated ? "true" : "false";
  e.sev.className = `sev sev-b-${a.severity}`;
  e.sev.textContent = String(a.severity);
  e.title.textContent = String(a.title ?? a.rule);
  e.where.textContent = where(a);
  e.where.style.cursor = a.vehicle || a.intersection ? "pointer" : "";
  e.age.dataset.since = String(a.raised_at);
  e.age.textContent = duration(hubNow() - a.raised_at);
  if (e.raisedAt !== a.raised_at) {   // every open alert is redrawn on any alert's change
    e.raisedAt = a.raised_at;
    e.age.title = `raised ${clock(a.raised_at)}`;
  }
  e.state.className = `state-tag ${a.state}`;
  e.state.textContent = String(a.state);
  e.esc.hidden = !a.escalated;
  if (a.state === "acknowledged") {
    const after = a.time_to_ack_s != null ? ` after ${duration(a.time_to_ack_s)}`
      : (a.acknowledged_at ? ` at ${clock(a.acknowledged_at)}` : "");
    e.acked.textContent = `acknowledged by ${a.acknowledged_by ?? "?"}${after}`;
  } else {
    e.acked.textContent = "";   // RAISED already says it
  }
  st(e.detail, a.detail ? detailWords(a.detail, a) : "");
  stitle(e.detail, a.detail ? `as the hub recorded it: ${a.detail}` : "");
  e.detail.hidden = !a.detail;
  updateRunbook(e.runbook, runbookOfRule(a.rule), first);
  e.ack.hidden = a.state !== "raised";
}

export async function acknowledge(id, e) {
  e.ack.disabled = true;
  try {
    applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/ack`, {}));
  } catch (err) {
    if (err.status !== 401) showAlertError(e, `Acknowledge failed: ${err.message}`);
  } finally {
    e.ack.disabled = false;
  }
}

export async function resolveAlert(id, e, force = false) {
  const reason = e.reason.value.trim();
  if (!reason) { showAlertError(e, "A reason is required to resolve."); e.reason.focus(); return; }
  e.confirm.disabled = true;
  try {
    applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/resolve`,
                             force ? { reason, force: true } : { reason }));
  } catch (err) {
    const holds = err.status === 409 && err.data && err.data.detail && err.data.detail.still_holds;
    if (holds) {
      // Said before it is done: resolved now, the same alert would be raised again at once.
      const again = h("button", { type: "button", class: "btn small", "data-testid": "resolve-anyway",
                                  text: "Resolve anyway" });
      again.addEventListener("click", () => { e.error.hidden = true; resolveAlert(id, e, true); });
      e.error.replaceChildren(`The condition still holds (${detailWords(holds, S.open.get(id))}): resolved now, it would be ` +
                              "raised again at once. ", again);
      e.error.hidden = false;
    } else if (err.status !== 401) {
      showAlertError(e, `Resolve failed: ${err.message}`);
    }
  } finally {
    e.confirm.disabled = false;
  }
}

export function showAlertError(e, message) {
  e.error.textContent = message;
  e.error.hidden = false;
  setTimeout(() => { e.error.hidden = true; }, 8000);
}

async function toggleHistory(id, ol) {
  if (S.expanded.has(id)) {
    S.expanded.delete(id);
    ol.hidden = true;
    return;
  }
  S.expanded.add(id);
  ol.hidden = false;
  ol.replaceChildren(h("li", { class: "muted", text: "loading history…" }));
  try {
    const res = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
    const hist = (res && res.history) || [];
    const cached = S.histories.get(id) || [];
    const bySeq = new Map([...cached, ...hist].map((t) => [t.seq, t]));
    S.histories.set(id, [...bySeq.values()].sort((x, y) => x.seq - y.seq));
    if (res && res.alert && res.alert.state === "resolved" && S.open.has(id)) {
      applyOwnResult(res.alert);
    }
  } catch (err) {
    if (err.status !== 401) ol.replaceChildren(h("li", { class: "form-error", text: `history: ${err.message}` }));
    return;
  }
  renderHistory(id, ol);
}

function renderHistory(id, ol) {
  const hist = S.histories.get(id) || [];
  if (!hist.length) { ol.replaceChildren(h("li", { class: "muted", text: "no transitions" })); return; }
  ol.replaceChildren(...hist.map((t) => h("li", { "data-testid": "history-item" },
    h("span", { class: "mono", text: clock(t.at) }),
    h("span", { class: `k-${t.kind}`, text: String(t.kind) }),
    h("span", null,
      t.actor ? `by ${t.actor}` : "by the hub",
      t.detail ? ` — ${detailWords(t.detail, S.open.get(id))}` : "",
      h("span", { class: "muted",
                  text: ` · on duty: ${(t.on_duty && t.on_duty.length) ? t.on_duty.join(", ") : "nobody"}` })))));
}

function renderOpenHistories() {
  for (const id of S.expanded) {
    const e = alertEls.get(id);
    if (e && S.histories.has(id)) renderHistory(id, e.history);
  }
}

// ------------------------------------------------------------------ resolved list
const resolvedOpen = new Set();

export function renderResolved() {
  $("resolved-count").textContent = String(S.resolved.length);
  $("resolved-list").replaceChildren(...S.resolved.map((a) => {
    const by = a.resolved_by ? `resolved by ${a.resolved_by}` : "cleared by its rule";
    const hist = h("ol", { class: "history" });
    hist.hidden = !resolvedOpen.has(a.id);
    if (!hist.hidden) renderHistory(a.id, hist);
    const li = h("li", { "data-testid": `resolved-alert-${a.id}`, dataset: { rule: String(a.rule) } },
      h("div", { class: `alert sev-${a.severity}` },
        h("div", { class: "alert-head" },
          h("span", { class: `sev sev-b-${a.severity}`, text: String(a.severity) }),
          h("span", { class: "alert-title", text: String(a.title ?? a.rule) }),
          h("span", { class: "alert-where", text: where(a) })),
        h("div", { class: "alert-meta" },
          h("span", { text: `${by}${a.resolved_at ? " at " + clock(a.resolved_at) : ""}` }),
          a.resolve_reason ? h("span", { text: `“${a.resolve_reason}”` }) : null,
          a.acknowledged_by ? h("span", { text: `acked by ${a.acknowledged_by}` }) : null,
          a.incident != null ? h("span", { class: "inc-note", title: String(a.incident_cause ?? ""),
                                           text: `in an incident on ${causeWords(a.incident_cause)}` }) : null,
          a.escalated ? h("span", { class: "esc-tag", text: "ESCALATED" }) : null),
        hist));
    li.addEventListener("click", async () => {
      if (resolvedOpen.has(a.id)) { resolvedOpen.delete(a.id); hist.hidden = true; return; }
      resolvedOpen.add(a.id);
      hist.hidden = false;
      try {
        const res = await api("GET", `/api/alerts/${encodeURIComponent(a.id)}`);
        S.histories.set(a.id, ((res && res.history) || []).slice().sort((x, y) => x.seq - y.seq));
        renderHistory(a.id, hist);
      } catch (err) {
        if (err.status !== 401) hist.replaceChildren(h("li", { class: "form-error", text: err.message }));
      }
    });
    return li;
  }));
  renderOpenHistories();
}
