// The duty panel: going on and off duty (duty-actions.js), and who covers which vehicles.

import { $, clock, h, toast } from "./dom.js";
import { changeDuty } from "./duty-actions.js";
import { filterActive, shownIds } from "./fleet-query.js";
import { S } from "./store.js";
import { compressIds } from "./words.js";


export function renderDuty() {
  const duty = S.duty;
  const me = S.me && S.me.name;
  const ops = (duty && duty.on_duty) || [];
  const onDuty = ops.some((o) => o.operator === me);
  const scope = renderScope();
  // On duty already: the same button changes what this operator covers.
  $("duty-on").disabled = onDuty && scope.value === "all" && !(mine(ops, me) || []).length;
  $("duty-on").textContent = onDuty ? "Cover these instead" : "Go on duty";
  $("duty-off").disabled = !onDuty;
  $("duty-on").classList.toggle("primary", !onDuty);
  $("duty-off").classList.toggle("primary", onDuty);
  $("duty-list").replaceChildren(...(ops.length ? ops.map((o) => h("li",
    { class: o.operator === me ? "me" : "", "data-testid": `duty-${o.operator}` },
    `${o.operator}${o.operator === me ? " (you)" : ""}`,
    h("span", { class: "muted", text: ` · since ${clock(o.since)} · ` }),
    (o.vehicles && o.vehicles.length) ? `covers ${compressIds(o.vehicles)}`
      : "covers every vehicle not assigned to someone else"))
    : [h("li", { class: "empty", text: "Nobody is on duty." })]));
  const unassigned = (duty && duty.unassigned) || [];
  // A few uncovered vehicles are listed one by one; a fleet's worth as ranges of ids.
  $("unassigned").replaceChildren(...(unassigned.length <= 6
    ? unassigned.map((id) => h("li", { "data-testid": `unassigned-${id}`, text: `No operator covers ${id}` }))
    : [h("li", { "data-testid": "unassigned-summary", title: unassigned.join(", ") },
        `No operator covers ${unassigned.length} vehicles: `,
        h("span", { class: "ids", text: compressIds(unassigned) }))]));
  const nobody = Boolean(duty) && ops.length === 0;
  $("nobody-warning").hidden = !nobody;
  const sum = $("duty-summary");
  sum.classList.toggle("warn", nobody || unassigned.length > 0);
  sum.textContent = !duty ? "" : nobody ? "NOBODY ON DUTY"
    : `On duty: ${ops.map((o) => o.operator).join(", ")}` +
      (unassigned.length ? ` · ${unassigned.length} uncovered` : "");
  sum.title = sum.textContent;
}

// The hub takes at most this many named vehicles (l4mon/faces/api/alerts.py DutyOnBody); a wider
// shift is every vehicle.
const DUTY_NAMED_MAX = 200;
const mine = (ops, me) => ops.find((o) => o.operator === me)?.vehicles;

// Which vehicles going on duty covers: every vehicle, those the fleet table shows (its
// filter), or those nobody covers now. The choice's words carry the current counts.
function scopeIds(which) {
  if (which === "shown") return shownIds();
  if (which === "uncovered") return ((S.duty && S.duty.unassigned) || []).slice().sort();
  return null;
}
export function renderScope() {
  const sel = $("duty-scope");
  const shown = filterActive(S.fleetFilter) ? shownIds() : null;
  const uncovered = scopeIds("uncovered");
  const choices = [
    ["all", "every vehicle", true],
    ["shown", shown ? `the ${shown.length} shown in the table` : "those the table shows",
     Boolean(shown && shown.length && shown.length <= DUTY_NAMED_MAX)],
    ["uncovered", `the ${uncovered.length} nobody covers`,
     uncovered.length > 0 && uncovered.length <= DUTY_NAMED_MAX],
  ];
  if (sel.options.length !== choices.length) {
    sel.replaceChildren(...choices.map(([value]) => h("option", { value })));
  }
  choices.forEach(([value, words, ok], i) => {
    const o = sel.options[i];
    if (o.textContent !== words) o.textContent = words;
    o.disabled = !ok;
  });
  if (sel.selectedOptions[0]?.disabled) sel.value = "all";
  const ids = scopeIds(sel.value);
  sel.title = ids ? compressIds(ids) : "every vehicle not assigned to someone else";
  sel.dataset.vehicles = ids ? String(ids.length) : "all";
  return sel;
}

export async function duty(on) {
  const b = $(on ? "duty-on" : "duty-off");
  b.disabled = true;
  const ids = on ? scopeIds($("duty-scope").value) : null;
  try {
    await changeDuty(on, ids);
    toast(!on ? "You are off duty."
      : ids ? `You are on duty for ${ids.length} vehicles: ${compressIds(ids)}.` : "You are on duty.");
  } catch (err) {
    if (err.status !== 401) toast(`Duty change failed: ${err.message}`, true);
    renderDuty();
  }
}

// Who is signed in, in the top bar; a viewer's page hides what it may not do (.act).
export function renderMe() {
  if (!S.me) return;
  const role = S.me.role ? String(S.me.role) : "viewer";
  document.body.classList.remove("role-viewer", "role-operator", "role-admin");
  document.body.classList.add(`role-${role}`);
  $("whoami").replaceChildren(String(S.me.name ?? "?"), h("span", { class: "role", text: role }));
}
