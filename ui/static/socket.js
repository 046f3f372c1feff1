// The live WebSocket: connect, ping, reconnect with backoff (asking for missed alerts with
// last_seq), and the liveness banner (LIVE / NOT LIVE, blind sites).

import { api } from "./api.js";
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, DEAD_AFTER_MS, FORCE_RECONNECT_MS,
         HANDSHAKE_TIMEOUT_MS, PING_EVERY_MS } from "./constants.js";
import { $, clock, duration, shide, st, stitle, toast } from "./dom.js";
import { handleFrame } from "./frames.js";
import { findLeader, hubBase } from "./pair.js";
import { notePerf } from "./perf.js";
import { S } from "./store.js";

// What a frame about the connection itself may do (frames.js).
const LINK = { reconnectNow: () => reconnectNow(), watchdog: () => watchdog() };

export function connect() {
  clearTimeout(S.reconnectTimer);
  S.reconnectTimer = null;
  if (!S.token) return;
  // This hub, or the leader of its pair once the console moved there (pair.js).
  let url = `${hubBase().replace(/^http/, "ws")}/ws?token=${encodeURIComponent(S.token)}`;
  if (S.lastSeq > 0) url += `&last_seq=${S.lastSeq}`;
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  S.ws = ws;
  S.connectStartedAt = Date.now();
  S.attempts += 1;
  let frames = 0;
  ws.onopen = () => {
    if (S.ws !== ws) return;
    S.wsOpen = true;
    clearInterval(S.pingTimer);
    S.pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
    }, PING_EVERY_MS);
  };
  ws.onmessage = (ev) => {
    if (S.ws !== ws) return;
    frames += 1;
    S.lastFrameAt = Date.now();
    const started = performance.now();
    let frame;
    try { frame = JSON.parse(ev.data); } catch { return; }
    try { handleFrame(frame, LINK); } catch (err) { console.error("frame", frame && frame.type, err); }
    if (frame && frame.type === "state") notePerf(performance.now() - started);
    watchdog();
  };
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    dropSocket();
    scheduleReconnect();
    if (ev.code === 1013) {
      toast(`The hub dropped this console for falling behind (${ev.reason || "1013"}); ` +
            "reconnecting and catching up.", true);
    }
    // A handshake refused for the token looks like any other failure to a browser;
    // ask the REST API, which answers 401 plainly.
    if (frames === 0 || [1008, 4001, 4401, 4403].includes(ev.code)) {
      api("GET", "/api/me").catch(() => {});
    }
  };
}

export function dropSocket() {
  const ws = S.ws;
  S.ws = null;
  S.wsOpen = false;
  S.gotSnapshot = false;
  clearInterval(S.pingTimer);
  S.pingTimer = null;
  if (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch { /* already closed */ }
  }
  watchdog();
}

// Dial again now (the console moved to another hub of the pair).
export function reconnectNow() {
  dropSocket();
  clearTimeout(S.reconnectTimer);
  S.reconnectTimer = null;
  S.backoff = BACKOFF_MIN_MS;
  connect();
}

function scheduleReconnect() {
  // A hub of a pair gone: the other may lead by now (it takes over within a second or two).
  findLeader(reconnectNow);
  if (!S.token || S.reconnectTimer) return;
  const delay = S.backoff;
  S.backoff = Math.min(BACKOFF_MAX_MS, S.backoff * 2);
  S.reconnectAt = Date.now() + delay;
  S.reconnectTimer = setTimeout(() => { S.reconnectTimer = null; connect(); }, delay);
}

// ------------------------------------------------------------------ liveness
export function watchdog() {
  const now = Date.now();
  const silent = S.lastFrameAt ? now - S.lastFrameAt : Infinity;
  if ((S.ws && S.wsOpen && silent > FORCE_RECONNECT_MS && S.lastFrameAt)
      || (S.ws && !S.wsOpen && now - S.connectStartedAt > HANDSHAKE_TIMEOUT_MS)) {
    dropSocket();            // a half-open TCP connection never says goodbye
    scheduleReconnect();
  }
  const connected = Boolean(S.ws && S.wsOpen && S.gotSnapshot && silent <= DEAD_AFTER_MS);
  // The console may be connected to a hub that cannot see its vehicles (broker down, a
  // site gone quiet): that is not live either, and says why (l4mon/site_watch.py).
  const blind = connected ? blindSites() : [];
  const live = connected && !blind.length;
  S.live = live;
  document.body.classList.toggle("disconnected", !live);
  const banner = $("conn-banner");
  shide(banner, live);
  const status = $("live");
  status.classList.toggle("is-live", live);
  status.classList.toggle("is-dead", !live);
  if (live) {
    st(status, "LIVE");
    stitle(status, "");
    return;
  }
  st(status, "NOT LIVE");
  if (blind.length) {
    const text = blind.map(([site, f]) => {
      const since = f.blind_since ? ` since ${clock(f.blind_since)}` : "";
      return f.state === "lost"
        ? `— the hub cannot see site ${site}${since}: ${f.reason}.`
        : `— site ${site} is back in view; its vehicles are judged again once they have reported.`;
    });
    text.push("Vehicles' state is UNKNOWN, not down.");
    stitle(status, text.join(" "));
    st($("conn-banner-head"), "THE HUB CANNOT SEE THE FLEET");
    st($("conn-banner-text"), text.join(" "));
    return;
  }
  stitle(status, "");
  st($("conn-banner-head"), "CONNECTION TO HUB LOST");
  const parts = [];
  if (!S.lastFrameAt) parts.push("— not connected yet; the figures below are NOT live.");
  else if (S.wsOpen) parts.push(`— no data for ${duration(silent / 1000)}; the figures below are NOT live.`);
  else parts.push(`— last data ${duration(silent / 1000)} ago; the figures below are NOT live.`);
  if (!S.wsOpen && S.reconnectTimer) {
    parts.push(`Reconnecting in ${Math.max(0, (S.reconnectAt - now) / 1000).toFixed(1)} s` +
               (S.attempts > 1 ? ` (attempt ${S.attempts})` : "") + "…");
  } else if (!S.wsOpen) {
    parts.push("Connecting…");
  }
  st($("conn-banner-text"), parts.join(" "));
}

function blindSites() {
  return Object.entries(S.feed || {}).filter(([, f]) => f && f.state && f.state !== "ok");
}
