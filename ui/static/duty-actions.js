// Operator duty: the hub's duty view in (a frame, an answer), going on or off duty.

import { api } from "./api.js";
import { S, announce } from "./store.js";

export function applyDuty(duty) {
  if (!duty) return;
  S.duty = duty;
  announce("duty");
}

export async function loadDuty() {
  applyDuty(await api("GET", "/api/duty"));
}

// On duty for `ids` (null: every vehicle), or off duty; a refusal is thrown to the panel.
export async function changeDuty(on, ids) {
  applyDuty(await api("POST", on ? "/api/duty/on" : "/api/duty/off",
                      on ? (ids ? { vehicles: ids } : {}) : undefined));
}
