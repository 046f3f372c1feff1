// l4mon operator console: the entry module. Native ES modules, no build step, no external
// resources. Contract: docs/console-api.md. This file wires the modules together and boots:
// the render step listens to the store, the views' controls call actions, timers tick.
// Every server string reaches the page through textContent (or a text node), never through
// innerHTML.

import { chartSize, renderCharts } from "./charts.js";
import { installCommands } from "./commands.js";
import { CHART_EVERY_MS, SOUND_KEY, TOKEN_KEY } from "./constants.js";
import { Sound, acknowledgeCue, armSound, flashTitle, renderSoundToggle,
         toggleSound } from "./cue.js";
import { injectCellOutage } from "./demo-panel.js";
import { $, ageEls, duration, fmt } from "./dom.js";
import { duty } from "./duty.js";
import { installFleetFilter } from "./fleet-filter.js";
import { handovers, installHandovers } from "./handovers.js";
import { installAlertHistory } from "./history-tab.js";
import { installLinkmap } from "./linkmap-layer.js";
import { renderPerf } from "./perf.js";
import { installRender } from "./render.js";
import { readFragmentToken, showLogin, signOut, start } from "./session.js";
import { layoutPlot } from "./site-plot.js";
import { watchdog } from "./socket.js";
import { S, hubNow, onChange } from "./store.js";

// ------------------------------------------------------------------ ticking
function tickTexts() {
  const nowMs = Date.now();
  for (const e of document.querySelectorAll("[data-age-base]")) {
    const base = Number(e.dataset.ageBase), rx = Number(e.dataset.ageRx);
    e.textContent = fmt(base + (nowMs - rx) / 1000, Number(e.dataset.ageDigits));
  }
  for (const f of ageEls) {
    if (!f.node.isConnected) { ageEls.delete(f); continue; }
    f.tick(nowMs);
  }
  const now = hubNow();
  for (const e of document.querySelectorAll("[data-since]")) {
    e.textContent = duration(now - Number(e.dataset.since));
  }
}

// ------------------------------------------------------------------ boot
function boot() {
  installRender();
  // A token the hub refused (any API call's 401) signs the page out.
  onChange((what, message) => { if (what === "unauthorized") signOut(message); });
  try {
    installHandovers();
  } catch (err) {
    console.error("handovers.js failed to install", err);   // the rest of the console works
  }
  installLinkmap();
  installFleetFilter();
  installAlertHistory();
  installCommands();
  readFragmentToken();
  S.token = sessionStorage.getItem(TOKEN_KEY);
  Sound.wanted = sessionStorage.getItem(SOUND_KEY) === "on";

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    S.token = token;
    start();
  });
  $("logout").addEventListener("click", () => signOut("Signed out."));
  $("sound-toggle").addEventListener("click", toggleSound);
  $("duty-on").addEventListener("click", () => { armSound(); duty(true); });
  $("duty-off").addEventListener("click", () => duty(false));
  $("takeover-ack").addEventListener("click", acknowledgeCue);
  $("fault-cell-outage").addEventListener("click", injectCellOutage);
  // Browsers start audio only after a gesture: any click may unblock a wanted alarm.
  const unblock = () => {
    if (Sound.wanted && !Sound.running()) Sound.enable().then(renderSoundToggle);
  };
  document.addEventListener("pointerdown", unblock, true);
  document.addEventListener("keydown", unblock, true);

  if (window.ResizeObserver) {
    new ResizeObserver(() => layoutPlot()).observe($("plot"));
    const charts = new ResizeObserver((entries) => {
      for (const en of entries) {
        chartSize.set(en.target, { w: Math.round(en.contentRect.width), h: Math.round(en.contentRect.height) });
      }
      renderCharts();
    });
    charts.observe($("chart-rtt"));
    charts.observe($("chart-ul"));
  }

  setInterval(watchdog, 250);
  setInterval(() => { tickTexts(); renderCharts(); renderPerf(); handovers.tick(); }, CHART_EVERY_MS);
  setInterval(flashTitle, 700);
  setInterval(() => { if (S.cueActive) Sound.alarm(); renderSoundToggle(); }, 1500);
  watchdog();
  renderSoundToggle();

  if (S.token) start();
  else showLogin("");
}

boot();   // a module script runs once the document has been parsed
