// The alert queue (one card per alert, one per incident, most urgent first) and the recently
// resolved list. Cards are parts (alert-cards.js, incident-cards.js); this view orders them.

import { causeWords, incidentSummary, where } from "./alert-words.js";
import { loadAlertHistory } from "./alert-actions.js";
import { alertEls, makeAlertEl, renderHistory, renderOpenHistories,
         updateAlertEl } from "./alert-cards.js";
import { SEV_RANK } from "./constants.js";
import { $, clock, h, st, stitle } from "./dom.js";
import { incidentEls, makeIncidentEl, updateIncidentEl } from "./incident-cards.js";
import { S, pruneIncidents } from "./store.js";

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
        await loadAlertHistory(a.id);
        renderHistory(a.id, hist);
      } catch (err) {
        if (err.status !== 401) hist.replaceChildren(h("li", { class: "form-error", text: err.message }));
      }
    });
    return li;
  }));
  renderOpenHistories();
}
