// An alert's next step, on its card: the runbook its rule (or its incident's grouping) carries
// in the hub's rules file — what to do, in order, and whom to call. The snapshot brings them
// once (`runbooks` by rule, `incident_groups[].runbook`); alert frames do not repeat them.

import { h, shide, st } from "./dom.js";
import { S } from "./store.js";

export const runbookOfRule = (rule) => (S.runbooks && S.runbooks[rule]) || null;
export function runbookOfGroup(group) {
  const g = S.incidentGroups && S.incidentGroups[group];
  return (g && g.runbook) || null;
}

export function makeRunbookEl() {
  const e = { key: null, touched: false };
  e.root = h("details", { class: "runbook", "data-testid": "runbook" });
  e.head = h("summary", { class: "rb-head", "data-testid": "runbook-head" });
  e.steps = h("ol", { class: "rb-steps", "data-testid": "runbook-steps" });
  e.call = h("div", { class: "rb-call", "data-testid": "runbook-call" });
  e.none = h("div", { class: "rb-none muted", "data-testid": "runbook-none",
                      text: "No runbook for this rule in the hub's rules file." });
  e.root.append(e.head, e.steps, e.call);
  // Reading the steps must not open the card's history, nor select its vehicle.
  e.root.addEventListener("click", (ev) => ev.stopPropagation());
  // Opened or closed by hand, it stays so: a redraw never takes the operator's choice back.
  e.head.addEventListener("click", () => { e.touched = true; });
  e.root.addEventListener("toggle", () => label(e));
  e.els = [e.root, e.none];
  return e;
}

// `urgent`: the card that needs a human first, whose steps are shown at once; otherwise the
// first step only, one click from the rest.
export function updateRunbook(e, rb, urgent) {
  shide(e.root, !rb);
  shide(e.none, Boolean(rb));
  if (!rb) return;
  const key = JSON.stringify(rb);
  if (e.key !== key) {
    e.key = key;
    e.steps.replaceChildren(...(rb.steps || []).map((s) => h("li", { text: String(s) })));
    e.call.replaceChildren(h("span", { class: "rb-call-k", text: "Call: " }), String(rb.call ?? ""));
  }
  e.first = (rb.steps || [])[0] ?? null;
  if (!e.touched && e.root.open !== urgent) e.root.open = urgent;
  label(e);
}

function label(e) {
  st(e.head, e.root.open || !e.first ? "Next steps" : `Next: ${e.first}`);
  e.root.dataset.open = e.root.open ? "true" : "false";
}
