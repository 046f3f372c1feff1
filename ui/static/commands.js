// The selected vehicle's command box (issue 25; docs/console-api.md, "Commands"): who may send
// them, the one confirmation each needs, and each command's steps as the vehicle answers.
// The hub decides; this module only says beforehand what the hub would refuse, so the
// operator learns it before pressing, and shows the hub's own words when it refuses anyway.

import { SHOWN, sendCommand } from "./command-actions.js";
import { $, clock, h, shide, st, toast } from "./dom.js";
import { S } from "./store.js";
import { connWords } from "./words.js";

export const COMMAND_KINDS = ["stop", "pull_over", "resume", "message"];
const KIND_WORD = { stop: "Stop (MRM now)", pull_over: "Pull over", resume: "Resume",
                    message: "Message to passengers" };
// The steps a command shows, in order; a final refusal or silence replaces what is left.
const STEPS = ["sent", "received", "executing", "done"];
const STATE_WORD = { issued: "issued", sent: "sent", received: "received", executing: "executing",
                     done: "done", refused: "refused", failed: "not sent",
                     not_confirmed: "not confirmed" };

// What the operator is about to send and the one question it still needs answered:
// {vehicle, kind, ask: "confirm" | "override" | "text" | "force", force, note}.
let draft = null;
let sending = false;

// ------------------------------------------------------------------ pure reads

// Why the hub would not hand this vehicle a command now (l4mon/commands/service.py
// out_of_reach), from its brief; null when it is within reach.
export function outOfReach(v) {
  if (!v) return "unknown to this hub";
  if (v.unseen) return `the hub cannot see its site (${v.unseen})`;
  if (v.service && v.service.status === "out_of_service") {
    return `out of service${v.service.reason ? ` (${v.service.reason})` : ""}`;
  }
  if (v.connectivity === "all_links_down") return connWords(v.connectivity, v);
  if (v.telemetry !== "fresh") return `its telemetry is ${v.telemetry}`;
  return null;
}

// Why this operator may not command the vehicle, or null: the hub answers 403 otherwise.
export function mayNotCommand(id) {
  const me = S.me;
  if (!me) return "signing in…";
  if (me.role === "viewer") return "You are signed in as a viewer: viewers cannot command vehicles.";
  const mine = ((S.duty && S.duty.on_duty) || []).find((o) => o.operator === me.name);
  if (!mine) return "Go on duty for this vehicle to command it.";
  if (!(mine.vehicles || []).includes(id)) {
    return `You are on duty, but not for ${id}: cover it to command it.`;
  }
  return null;
}

// ------------------------------------------------------------------ actions

function start(kind) {
  const id = S.selected;
  if (!id || mayNotCommand(id)) return;
  const far = outOfReach(S.vehicles.get(id));
  draft = { vehicle: id, kind, force: false, note: null,
            ask: far ? "force" : kind === "resume" ? "confirm" : kind === "message" ? "text" : null };
  if (far) draft.note = `${id} is out of reach: ${far}. It would not hear the command now; ` +
                        "sent anyway, it waits at the broker until the vehicle is back.";
  if (draft.ask === null) send();
  else renderCommands();
}

async function send() {
  const d = draft;
  if (!d || sending) return;
  const body = { kind: d.kind };
  if (d.force) body.force = true;
  if (d.kind === "resume") body.confirm = true;
  if (d.override) body.override = d.override;
  if (d.kind === "message") body.text = d.text;
  sending = true;
  renderCommands();
  try {
    await sendCommand(d.vehicle, body);
    draft = null;
  } catch (err) {
    const why = err.message || "refused";
    if (err.status === 409 && /out of reach/.test(why) && !d.force) {
      draft = { ...d, ask: "force", note: why };   // the hub saw what this page had not yet
    } else if (err.status === 409 && /takeover cause holds/.test(why) && !d.override) {
      draft = { ...d, ask: "override", note: why };
    } else {
      draft = null;
      if (err.status !== 401) toast(`${KIND_WORD[d.kind]} for ${d.vehicle} refused by the hub: ${why}`, true);
    }
  } finally {
    sending = false;
    renderCommands();
  }
}

// The answer to the draft's question: go on to the next one, or send.
function answer() {
  const d = draft;
  if (!d) return;
  if (d.ask === "force") {
    d.force = true;
    d.ask = d.kind === "resume" ? "confirm" : d.kind === "message" ? "text" : null;
    d.note = null;
    if (d.ask) { renderCommands(); return; }
  } else if (d.ask === "text" || d.ask === "override") {
    const words = $("cmd-input").value.trim();
    if (!words) { $("cmd-input").focus(); return; }
    if (d.ask === "text") d.text = words; else d.override = words;
  }
  send();
}

function cancel() { draft = null; renderCommands(); }

export function installCommands() {
  for (const kind of COMMAND_KINDS) $(`cmd-${kind}`).addEventListener("click", () => start(kind));
  $("cmd-go").addEventListener("click", answer);
  $("cmd-cancel").addEventListener("click", cancel);
  $("cmd-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") answer(); });
}

// ------------------------------------------------------------------ view

const ASK = {
  force: () => ({ words: draft.note, go: "Send anyway", input: null }),
  confirm: () => ({ words: `Resume ${draft.vehicle}? It drives on autonomously.`,
                    go: "Confirm resume", input: null }),
  override: () => ({ words: `${draft.note}.`, go: "Resume anyway",
                     input: "why it is safe to resume (goes to the vehicle and the journal)" }),
  text: () => ({ words: `Message to the passengers of ${draft.vehicle}:`, go: "Send message",
                 input: "what they are shown and told" }),
};

// Runs on every state frame of the selected vehicle: it writes only what changed.
let shown = { list: null };
export function renderCommands() {
  const id = S.selected;
  const box = $("vp-commands");
  shide(box, !id);
  if (!id) return;
  if (draft && draft.vehicle !== id) draft = null;
  const why = mayNotCommand(id);
  const far = outOfReach(S.vehicles.get(id));
  for (const kind of COMMAND_KINDS) {
    const b = $(`cmd-${kind}`);
    const off = Boolean(why) || sending;
    if (b.disabled !== off) b.disabled = off;
  }
  const note = $("cmd-why");
  const asking = Boolean(draft && !why && draft.ask === "force");   // the question says it already
  st(note, why ?? (far && !asking ? `Out of reach: ${far}. A command would wait at the broker.` : ""));
  shide(note, !note.textContent);
  if (note.classList.contains("far") !== (!why && Boolean(far))) note.classList.toggle("far");
  const may = why ? "false" : "true", reach = far ? "out" : "in";
  if (box.dataset.may !== may) box.dataset.may = may;
  if (box.dataset.reach !== reach) box.dataset.reach = reach;

  const ask = draft && !why ? ASK[draft.ask]?.() : null;
  const row = $("cmd-confirm");
  shide(row, !ask);
  if (ask) {
    if (row.dataset.ask !== draft.ask) row.dataset.ask = draft.ask;
    st($("cmd-question"), ask.words);
    const input = $("cmd-input");
    shide(input, !ask.input);
    if (ask.input && input.placeholder !== ask.input) { input.placeholder = ask.input; input.value = ""; }
    st($("cmd-go"), sending ? "Sending…" : ask.go);
    $("cmd-go").disabled = sending;
  }

  const mine = [...S.commands.values()].filter((c) => c.vehicle === id)
    .sort((a, b) => b.issued_at - a.issued_at).slice(0, SHOWN);
  const key = `${id}|${mine.map((c) => `${c.id}:${c.state}:${c.updated_at}`).join("|")}`;
  if (key === shown.list) return;
  shown = { list: key };
  $("cmd-list").replaceChildren(...mine.map(commandRow));
}

// How many of STEPS a command has gone through: a refusal comes after the vehicle received
// it, silence after the broker took it, a failure before.
const REACHED = { issued: 0, failed: 0, sent: 1, not_confirmed: 1, received: 2, refused: 2,
                  executing: 3, done: 4 };

function commandRow(c) {
  const reached = REACHED[c.state] ?? 0;
  const final = c.state === "refused" || c.state === "not_confirmed" || c.state === "failed";
  const steps = STEPS.map((s, i) => h("span", { class: `cmd-step${i < reached ? " on" : ""}`, text: s }));
  const said = c.state === "not_confirmed"
    ? "no answer in time: assume the vehicle did not act (an urgent alert is raised)"
    : c.detail || "";
  return h("li", { "data-testid": `cmd-${c.id}`, "data-kind": c.kind, "data-state": c.state },
    h("div", { class: "cmd-head" },
      h("b", { text: KIND_WORD[c.kind] ?? c.kind }),
      h("span", { class: "muted", text: ` · ${c.issued_by} · ${clock(c.issued_at)}` }),
      c.text ? h("span", { class: "muted", title: c.text, text: ` · “${c.text}”` }) : null),
    h("div", { class: "cmd-steps" }, ...steps.slice(0, final ? reached : STEPS.length)
      .flatMap((s, i) => (i ? [" → ", s] : [s])),
      final && reached ? " → " : null,
      final ? h("span", { class: `pill cmd-${c.state}`, "data-testid": "cmd-final",
                          text: STATE_WORD[c.state] }) : null),
    said ? h("div", { class: `cmd-detail${final ? " bad" : ""}`, "data-testid": "cmd-detail",
                      title: said, text: said }) : null);
}
