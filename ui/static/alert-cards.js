// One alert's card in the queue: built once, updated in place; its acknowledge and resolve
// buttons call the alert actions and say a refusal on the card; its history on a click.

import { where } from "./alert-words.js";
import { acknowledge, loadAlertHistory, resolveAlert } from "./alert-actions.js";
import { $, clock, duration, h, st, stitle } from "./dom.js";
import { makeRunbookEl, runbookOfRule, updateRunbook } from "./runbook.js";
import { focusAlert, focusIntersection, select } from "./selection.js";
import { S, hubNow } from "./store.js";
import { detailWords } from "./words.js";

export const alertEls = new Map();

export function makeAlertEl(id) {
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
  e.ack.addEventListener("click", (ev) => { ev.stopPropagation(); ackCard(id, e); });
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
  e.form.addEventListener("submit", (ev) => { ev.preventDefault(); resolveCard(id, e); });
  e.where.addEventListener("click", (ev) => {
    const a = S.open.get(id);
    if (a && a.vehicle) { ev.stopPropagation(); select(a.vehicle); }
    else if (a && a.intersection) { ev.stopPropagation(); focusIntersection(a.intersection); }
  });
  e.history.addEventListener("click", (ev) => ev.stopPropagation());
  e.li.addEventListener("click", () => {
    toggleHistory(id, e.history);
    focusAlert(S.open.get(id));   // a weak stretch ahead: its outline stands out
  });
  return e;
}

export function updateAlertEl(e, a, first) {
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

// The card's Acknowledge (and the takeover cue's, on the card it names).
export async function ackCard(id, e) {
  e.ack.disabled = true;
  try {
    await acknowledge(id);
  } catch (err) {
    if (err.status !== 401) showAlertError(e, `Acknowledge failed: ${err.message}`);
  } finally {
    e.ack.disabled = false;
  }
}

// A card's (or an incident member's) resolve form: the reason is required; a condition that
// still holds is said before it is done, with "Resolve anyway".
export async function resolveCard(id, e, force = false) {
  const reason = e.reason.value.trim();
  if (!reason) { showAlertError(e, "A reason is required to resolve."); e.reason.focus(); return; }
  e.confirm.disabled = true;
  try {
    await resolveAlert(id, reason, force);
  } catch (err) {
    const holds = err.status === 409 && err.data && err.data.detail && err.data.detail.still_holds;
    if (holds) {
      // Said before it is done: resolved now, the same alert would be raised again at once.
      const again = h("button", { type: "button", class: "btn small", "data-testid": "resolve-anyway",
                                  text: "Resolve anyway" });
      again.addEventListener("click", () => { e.error.hidden = true; resolveCard(id, e, true); });
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
    await loadAlertHistory(id);
  } catch (err) {
    if (err.status !== 401) ol.replaceChildren(h("li", { class: "form-error", text: `history: ${err.message}` }));
    return;
  }
  renderHistory(id, ol);
}

export function renderHistory(id, ol) {
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

export function renderOpenHistories() {
  for (const id of S.expanded) {
    const e = alertEls.get(id);
    if (e && S.histories.has(id)) renderHistory(id, e.history);
  }
}
