// Commands to vehicles (docs/console-api.md, "Commands"): send one, take the hub's word on
// each step (the `command` frames, a list when a vehicle is selected), announce the change.

import { api } from "./api.js";
import { S, announce } from "./store.js";

// How far along each state is (l4mon/commands/model.py PROGRESS): a late frame or a stale
// list never moves a command back.
const PROGRESS = { issued: 0, sent: 1, not_confirmed: 1, failed: 1, received: 2, executing: 3,
                   done: 4, refused: 4 };
// A vehicle's last commands the panel lists: enough for a stop, a resume and a retry.
export const SHOWN = 5;

const newer = (a, b) => !b || (PROGRESS[a.state] ?? 0) > (PROGRESS[b.state] ?? 0)
  || (a.updated_at ?? 0) >= (b.updated_at ?? 0);

// A command as the hub has it now (a `command` frame, a list, a 202): kept unless older.
export function applyCommand(c) {
  if (!c || !c.id) return;
  if (!newer(c, S.commands.get(c.id))) return;
  S.commands.set(c.id, c);
  if (c.vehicle === S.selected) announce("commands");
}

// The selected vehicle's recent commands from the hub: the frames only say what changed
// since this page connected.
export async function loadCommands() {
  const id = S.selected;
  if (!id || !S.token) return;
  try {
    const list = await api("GET", `/api/commands?vehicle=${encodeURIComponent(id)}&limit=${SHOWN}`);
    for (const c of list || []) applyCommand(c);
  } catch {
    // A hub that sends no commands (a replay) answers 503: the panel then lists none.
  }
  announce("commands");
}

// Send a command; the hub's 202 is its first step. A refusal is thrown to the panel.
export async function sendCommand(vehicle, body) {
  applyCommand(await api("POST", `/api/vehicles/${encodeURIComponent(vehicle)}/commands`, body));
}
