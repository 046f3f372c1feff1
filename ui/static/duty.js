// Operator duty: going on and off duty, and which operator covers which vehicles.

import { api } from "./api.js";
import { $, clock, h, toast } from "./dom.js";
import { renderFleet } from "./fleet-table.js";
import { S } from "./store.js";
import { renderVehicleSummary } from "./vehicle-panel.js";
import { compressIds } from "./words.js";

export function applyDuty(duty) {
  if (!duty) return;
  S.duty = duty;
  renderDuty();
  renderFleet(null);
  renderVehicleSummary();
}

export function coverOf(id) {
  if (!S.duty) return null;
  const ops = S.duty.on_duty || [];
  const explicit = ops.find((o) => (o.vehicles || []).includes(id));
  if (explicit) return explicit.operator;
  if ((S.duty.unassigned || []).includes(id)) return null;
  const all = ops.find((o) => !o.vehicles || o.vehicles.length === 0);
  return all ? all.operator : null;
}

export function renderDuty() {
  const duty = S.duty;
  const me = S.me && S.me.name;
  const ops = (duty && duty.on_duty) || [];
  const onDuty = ops.some((o) => o.operator === me);
  $("duty-on").disabled = onDuty;
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

export async function duty(on) {
  const b = $(on ? "duty-on" : "duty-off");
  b.disabled = true;
  try {
    applyDuty(await api("POST", on ? "/api/duty/on" : "/api/duty/off", on ? {} : undefined));
    toast(on ? "You are on duty." : "You are off duty.");
  } catch (err) {
    if (err.status !== 401) toast(`Duty change failed: ${err.message}`, true);
    renderDuty();
  }
}
