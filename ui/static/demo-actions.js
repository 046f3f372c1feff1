// The demo's controls (l4mon demo only): what it offers, and faults, outages and shifts
// injected into its simulated fleet (docs/console-api.md, "Demo only").

import { api } from "./api.js";
import { S, announce } from "./store.js";

export async function loadDemo() {
  try {
    S.demo = await api("GET", "/api/demo");
  } catch {
    S.demo = null;
  }
  announce("demo");
}

// POST /api/demo/{what}: "faults", "cell-outage" or "service"; a refusal is thrown.
export async function demoAction(what, body) {
  await api("POST", `/api/demo/${what}`, body);
}
