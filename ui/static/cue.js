// The takeover cue: the banner, the flashing title and the alarm sound.

import { cmpAlert, incidentPhrase, incidentSummary, ixName, plural } from "./alert-words.js";
import { ackCard, alertEls } from "./alert-cards.js";
import { SOUND_KEY } from "./constants.js";
import { $, duration, h, stitle, toast } from "./dom.js";
import { ackIncidentCard, incidentEls } from "./incident-cards.js";
import { S, hubNow } from "./store.js";

function pendingTakeovers() {
  return [...S.open.values()].filter((a) => a.severity === "takeover" && a.state === "raised")
    .sort(cmpAlert);
}

// What the cue names: an incident once, however many of its vehicles need a takeover, and
// each other pending takeover alert; the oldest first.
function cueEntries() {
  const out = [], byIncident = new Map();
  for (const a of pendingTakeovers()) {
    if (a.incident != null) {
      let en = byIncident.get(a.incident);
      if (!en) {
        const sum = incidentSummary(a.incident);
        if (sum) { en = { inc: sum, first: a }; byIncident.set(a.incident, en); out.push(en); }
      }
      if (en) continue;
    }
    out.push({ alert: a, first: a });
  }
  return out;
}

const cueName = (a) => a.vehicle || (a.intersection ? ixName(a.intersection) : null) || a.rsu
  || a.site || "?";

export function updateCue() {
  const entries = cueEntries();
  S.cueActive = entries.length > 0;
  const cue = $("takeover-cue");
  cue.hidden = !S.cueActive;
  $("sound-toggle").classList.toggle("attention", S.cueActive && !Sound.running());
  const text = $("takeover-text");
  if (!S.cueActive) {
    cue.dataset.vehicles = "";
    cue.dataset.incident = "";
    cue.dataset.summary = "";
    stitle(text, "");
    return;
  }
  const incidents = entries.filter((en) => en.inc);
  const alone = entries.filter((en) => !en.inc);
  const names = [...new Set(alone.map((en) => cueName(en.alert)))];
  const vehicles = [...new Set([...incidents.flatMap((en) => en.inc.openVehicles), ...names])];
  cue.dataset.vehicles = vehicles.join(" ");
  cue.dataset.alert = String(entries[0].first.id);
  cue.dataset.incident = entries[0].inc ? String(entries[0].inc.id) : "";
  let oldest = entries[0].first;
  for (const en of entries) if (en.first.raised_at < oldest.raised_at) oldest = en.first;
  const age = h("span", { "data-since": String(oldest.raised_at),
                          text: duration(hubNow() - oldest.raised_at) });
  if (!incidents.length) {
    const first = alone[0].alert;
    if (names.length === 1) {
      const more = alone.length > 1 ? ` (+${alone.length - 1} more)` : "";
      text.replaceChildren(`TAKEOVER — ${names[0]} needs a human: ${first.title ?? first.rule}${more} · `, age);
    } else {
      text.replaceChildren(`TAKEOVER — ${names.length} vehicles need a human: ${names.join(", ")} · oldest `, age);
    }
    cue.dataset.summary = names.join(" ");
    stitle(text, "");
  } else if (entries.length === 1) {
    const sum = incidents[0].inc;
    const one = sum.by === "vehicle";   // one vehicle's card: named as a vehicle, not an incident
    text.replaceChildren(`TAKEOVER — ${one ? "" : "incident: "}${incidentPhrase(sum)} · `, age);
    cue.dataset.summary = one ? sum.vehicles.join(" ")
      : `incident, ${plural(sum.vehicles.length, "vehicle", "vehicles")}`;
    stitle(text, `${sum.title} — ${sum.causeText}. Vehicles: ${sum.openVehicles.join(", ")}`);
  } else {
    // Names in the order they need a human; an incident counts once.
    const labels = [];
    const named = new Set();
    for (const en of entries) {
      if (en.inc && en.inc.by === "vehicle") {
        for (const v of en.inc.vehicles) if (!named.has(v)) { named.add(v); labels.push(v); }
      } else if (en.inc) {
        labels.push(`incident on ${en.inc.causeText} (${plural(en.inc.vehicles.length, "vehicle", "vehicles")})`);
      } else if (!named.has(cueName(en.alert))) {
        named.add(cueName(en.alert));
        labels.push(cueName(en.alert));
      }
    }
    text.replaceChildren(`TAKEOVER — ${labels.length} need a human: ${labels.join(", ")} · oldest `, age);
    cue.dataset.summary = labels.map((l) => (l.startsWith("incident") ? "incident" : l)).join(", ");
    stitle(text, `vehicles: ${vehicles.join(", ")}`);
  }
}

// The cue's Acknowledge: its first entry, an incident as a whole.
export function acknowledgeCue() {
  const top = cueEntries()[0];
  if (!top) return;
  if (top.inc) {
    ackIncidentCard(top.inc.id, $("takeover-ack"), incidentEls.get(top.inc.id) || null);
    return;
  }
  const e = alertEls.get(top.alert.id);
  if (e) ackCard(top.alert.id, e);
}

export const Sound = {
  ctx: null,
  wanted: false,
  running() { return Boolean(this.wanted && this.ctx && this.ctx.state === "running"); },
  async enable() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) { toast("This browser has no WebAudio: no audible alarm.", true); return; }
    if (!this.ctx) this.ctx = new AC();
    try { await this.ctx.resume(); } catch { /* needs a gesture */ }
  },
  beep(freq, at, length) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + length + 0.02);
  },
  alarm() {
    if (!this.running()) return;
    const t = this.ctx.currentTime + 0.02;
    this.beep(988, t, 0.14);
    this.beep(740, t + 0.2, 0.14);
    this.beep(988, t + 0.4, 0.14);
  },
};

export function renderSoundToggle() {
  const b = $("sound-toggle");
  b.setAttribute("aria-pressed", Sound.wanted ? "true" : "false");
  if (!Sound.wanted) b.textContent = "Sound off — click to enable";
  else if (Sound.running()) b.textContent = "Sound on";
  else b.textContent = "Sound blocked — click to enable";
  b.classList.toggle("attention", S.cueActive && !Sound.running());
}

// Going on duty arms the alarm: an operator on duty must hear a takeover, and the click is the
// gesture a browser asks for before a page may start audio (later, with no click, it could
// not). Turned off again with the toggle, if the operator must.
export async function armSound() {
  Sound.wanted = true;
  sessionStorage.setItem(SOUND_KEY, "on");
  await Sound.enable();   // creates and resumes the context now, inside the gesture
  renderSoundToggle();
}

export async function toggleSound() {
  if (Sound.wanted && Sound.running()) {
    Sound.wanted = false;
    sessionStorage.setItem(SOUND_KEY, "off");
  } else {
    Sound.wanted = true;
    sessionStorage.setItem(SOUND_KEY, "on");
    await Sound.enable();
    if (Sound.running()) Sound.beep(880, Sound.ctx.currentTime + 0.02, 0.08);
  }
  renderSoundToggle();
}

let titleFlip = false;
export function flashTitle() {
  const base = "l4mon — fleet link health";
  if (S.cueActive) {
    titleFlip = !titleFlip;
    const names = $("takeover-cue").dataset.summary || "";
    document.title = titleFlip ? `⚠ TAKEOVER ${names} ⚠` : `!!! ${names} — ${base}`;
  } else {
    const n = Number($("alert-count").textContent) || 0;   // an incident counts once
    document.title = n ? `(${n}) ${base}` : base;
  }
}
