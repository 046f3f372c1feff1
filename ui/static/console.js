// l4mon operator console: plain ES2020, no build step, no external resources.
// Contract: docs/console-api.md. Every server string reaches the page through textContent
// (or a text node), never through innerHTML.
"use strict";

(() => {
  // ------------------------------------------------------------------ constants
  const TOKEN_KEY = "l4mon.token";
  const SOUND_KEY = "l4mon.sound";
  const PING_EVERY_MS = 2000;
  const DEAD_AFTER_MS = 3000;        // no frame for this long: the screen is not live
  const FORCE_RECONNECT_MS = 6000;   // ...and for this long: drop the socket and dial again
  const HANDSHAKE_TIMEOUT_MS = 5000; // a hub that accepts TCP but never answers the upgrade
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 5000;
  const CHART_SPAN_S = 120;
  const RING_KEEP_S = 130;
  const RING_MAX = 1200;
  const DETAIL_REFRESH_MS = 3000;
  const RESOLVED_KEEP = 30;
  const SEV_RANK = { takeover: 0, warning: 1, info: 2 };
  const STATE_RANK = { raised: 0, acknowledged: 1, resolved: 2 };
  const CONN_LABEL = {
    ok: "ok", degraded: "degraded", one_link_down: "one link down",
    all_links_down: "all links down", unknown: "unknown",
  };
  const FAULT_LABEL = {
    both_links_down: "Drop both links",
    telemetry_stall: "Stall telemetry",
    takeover_request: "Request takeover",
    rtt_spike: "RTT spike",
    bandwidth_cap: "Cap uplink",
    clock_skew: "Skew clock",
  };
  const LINK_OPTIONAL_FAULTS = new Set(["rtt_spike", "bandwidth_cap"]);

  // ------------------------------------------------------------------ state
  const S = {
    token: null,
    me: null,
    vehicles: new Map(),     // id -> vehicle brief (+ _rx: local ms when received)
    open: new Map(),         // alert id -> alert (raised or acknowledged)
    alertSeq: new Map(),     // alert id -> seq of the newest transition applied
    resolved: [],            // recently resolved alerts, newest first
    duty: null,
    site: undefined,         // undefined: not loaded yet; null: the hub has none
    selected: null,
    pinned: false,           // the operator picked the selected vehicle by hand
    lastSeq: 0,              // highest alert seq seen; sent as last_seq on reconnect
    ws: null,
    wsOpen: false,
    gotSnapshot: false,
    lastFrameAt: 0,          // local ms of the newest frame on any socket
    backoff: BACKOFF_MIN_MS,
    attempts: 0,
    reconnectAt: 0,
    connectStartedAt: 0,
    reconnectTimer: null,
    pingTimer: null,
    hubOffset: 0,            // hub clock minus local clock, seconds
    rings: new Map(),        // vehicle id -> Map(link -> [{t, rtt, ul, state}])
    expanded: new Set(),     // alert ids whose history is shown
    histories: new Map(),    // alert id -> [transition] sorted by seq
    demo: null,
    live: false,
    feed: {},                // site -> the hub's view of its feed (l4mon/feed.py)
    detail: null,            // GET /api/vehicles/{selected}
    detailTimer: null,
    cueActive: false,
  };
  // Handovers and intersections (ui/static/handovers.js): its hooks, once boot() installed it.
  let HO = null;

  // ------------------------------------------------------------------ small helpers
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  function setProps(e, props) {
    if (!props) return;
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k === "text") e.textContent = String(v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }
  function appendKids(e, kids) {
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : String(k));   // strings become text nodes
    }
  }
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    setProps(e, props);
    appendKids(e, kids);
    return e;
  }
  function svg(tag, props, ...kids) {
    const e = document.createElementNS(SVG_NS, tag);
    setProps(e, props);
    appendKids(e, kids);
    return e;
  }

  const fmt = (v, digits) =>
    v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);
  const hubNow = () => Date.now() / 1000 + S.hubOffset;

  function duration(s) {
    if (!Number.isFinite(s)) return "–";
    s = Math.max(0, Math.floor(s));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} m`;
  }
  function clock(epoch) {
    if (!Number.isFinite(epoch)) return "–";
    return new Date((epoch - S.hubOffset) * 1000).toLocaleTimeString([], { hour12: false });
  }
  function pill(cls, text) { return h("span", { class: `pill ${cls}`, text }); }
  function connClass(c) { return `c-${c in CONN_LABEL ? c : "unknown"}`; }

  function toast(message, isError) {
    const t = h("div", { class: isError ? "toast err" : "toast", role: "status",
                         "data-testid": "toast", text: message });
    $("toasts").append(t);
    setTimeout(() => t.remove(), isError ? 8000 : 4000);
  }

  // ------------------------------------------------------------------ REST
  class ApiError extends Error {
    constructor(status, detail, data = null) { super(detail); this.status = status; this.data = data; }
  }
  function detailOf(data) {
    if (data && typeof data === "object" && "detail" in data) {
      const d = data.detail;
      if (Array.isArray(d)) return d.map((x) => (x && x.msg) || JSON.stringify(x)).join("; ");
      if (d && typeof d === "object" && typeof d.message === "string") return d.message;
      return typeof d === "string" ? d : JSON.stringify(d);
    }
    return typeof data === "string" ? data.slice(0, 200) : "";
  }
  async function api(method, path, body) {
    const opts = { method, cache: "no-store", headers: { Authorization: `Bearer ${S.token}` } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (err) {
      throw new ApiError(0, `hub unreachable (${err.message})`);
    }
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch { data = text; } }
    if (res.status === 401) {
      signOut(`The hub rejected the token (401${detailOf(data) ? ": " + detailOf(data) : ""}). ` +
              "Sign in again.");
      throw new ApiError(401, "unauthorized");
    }
    if (!res.ok) {
      const why = detailOf(data) || res.statusText;
      throw new ApiError(res.status, res.status === 403 ? `not permitted: ${why}` : why, data);
    }
    return data;
  }

  // ------------------------------------------------------------------ auth
  function readFragmentToken() {
    const m = /(?:^#|[#&])token=([^&]*)/.exec(location.hash);
    if (!m) return;
    const token = decodeURIComponent(m[1]);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function showLogin(message) {
    document.body.classList.add("no-auth");
    $("app").hidden = true;
    $("login").hidden = false;
    const msg = $("login-message");
    msg.hidden = !message;
    msg.textContent = message || "";
    $("token-input").value = "";
    $("token-input").focus();
  }

  function signOut(message) {
    S.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    dropSocket();
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    clearInterval(S.detailTimer);
    S.detailTimer = null;
    S.me = null;
    if (HO) HO.stop();
    showLogin(message);
  }

  async function start() {
    document.body.classList.remove("no-auth");
    $("login").hidden = true;
    $("app").hidden = false;
    S.gotSnapshot = false;
    if (!(await loadMe())) return;
    connect();
    loadSite();
    loadDemo();
    loadResolved();
    api("GET", "/api/duty").then(applyDuty).catch(() => {});
    layoutPlot();
    if (HO) HO.start();
  }

  async function loadMe() {
    try {
      S.me = await api("GET", "/api/me");
    } catch (err) {
      if (err.status === 401) return false;
      // The hub may simply be down: stay on the console (it shows "not live") and retry.
      setTimeout(() => { if (S.token && !S.me) loadMe(); }, 2000);
      return true;
    }
    const role = S.me && S.me.role ? String(S.me.role) : "viewer";
    document.body.classList.remove("role-viewer", "role-operator", "role-admin");
    document.body.classList.add(`role-${role}`);
    $("whoami").replaceChildren(String(S.me.name ?? "?"), h("span", { class: "role", text: role }));
    renderDuty();
    return true;
  }

  // ------------------------------------------------------------------ WebSocket
  function connect() {
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    if (!S.token) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${proto}//${location.host}/ws?token=${encodeURIComponent(S.token)}`;
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
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      try { handleFrame(frame); } catch (err) { console.error("frame", frame && frame.type, err); }
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

  function dropSocket() {
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

  function scheduleReconnect() {
    if (!S.token || S.reconnectTimer) return;
    const delay = S.backoff;
    S.backoff = Math.min(BACKOFF_MAX_MS, S.backoff * 2);
    S.reconnectAt = Date.now() + delay;
    S.reconnectTimer = setTimeout(() => { S.reconnectTimer = null; connect(); }, delay);
  }

  function handleFrame(f) {
    if (typeof f.now === "number") S.hubOffset = f.now - Date.now() / 1000;
    switch (f.type) {
      case "snapshot": applySnapshot(f); break;
      case "state": applyState(f); break;
      case "alert": applyAlert(f); break;
      case "duty": applyDuty(f.duty); break;
      case "bye": toast(`The hub closed the live connection: ${f.reason ?? "no reason"}`, true); break;
      default: break;   // pong, and anything newer than this page
    }
  }

  function applySnapshot(f) {
    S.gotSnapshot = true;
    S.backoff = BACKOFF_MIN_MS;
    S.attempts = 0;
    if (typeof f.seq === "number" && f.seq < S.lastSeq) {
      // The contract says seq never goes back; a hub with a fresh journal (a restarted demo)
      // does. Its alert ids start over too, so forget what we knew about the old ones.
      S.alertSeq.clear();
      S.histories.clear();
      S.resolved = [];
      S.lastSeq = f.seq;
      loadResolved();
      toast("The hub's alert journal started over (new hub?): alert history reloaded.", true);
    }
    if (typeof f.seq === "number" && f.seq > S.lastSeq) S.lastSeq = f.seq;
    const now = typeof f.now === "number" ? f.now : hubNow();
    if (f.feed) S.feed = f.feed;
    S.vehicles = new Map();
    for (const v of f.vehicles || []) putVehicle(v, now);
    const before = S.open;
    S.open = new Map();
    for (const a of f.alerts || []) {
      S.open.set(a.id, a);
      S.alertSeq.set(a.id, Math.max(S.alertSeq.get(a.id) ?? 0, f.seq ?? 0));
    }
    // Alerts that were open here but are not any more were resolved while we were away.
    if ([...before.keys()].some((id) => !S.open.has(id))) loadResolved();
    if (f.duty) S.duty = f.duty;
    if (S.selected === null && S.vehicles.size) S.selected = [...S.vehicles.keys()].sort()[0];
    if (!S.me) loadMe();
    renderAll();
  }

  function applyState(f) {
    const now = typeof f.now === "number" ? f.now : hubNow();
    if (f.feed) { S.feed = f.feed; watchdog(); }
    const changed = [];
    for (const v of f.vehicles || []) { putVehicle(v, now); changed.push(v.id); }
    renderFleet(changed);
    renderPlotVehicles();
    if (changed.includes(S.selected)) { renderVehicleSummary(); renderCharts(); }
  }

  function putVehicle(v, now) {
    v._rx = Date.now();
    S.vehicles.set(v.id, v);
    let rings = S.rings.get(v.id);
    if (!rings) S.rings.set(v.id, (rings = new Map()));
    for (const [name, l] of Object.entries(v.links || {})) {
      let ring = rings.get(name);
      if (!ring) rings.set(name, (ring = []));
      if (ring.length && ring[ring.length - 1].t >= now) continue;
      ring.push({ t: now, rtt: l.rtt_p95_ms, ul: l.ul_kbps == null ? null : l.ul_kbps / 1000,
                  state: l.state });
      let drop = 0;
      while (drop < ring.length && ring[drop].t < now - RING_KEEP_S) drop += 1;
      if (ring.length - drop > RING_MAX) drop = ring.length - RING_MAX;
      if (drop) ring.splice(0, drop);
    }
  }

  function applyAlert(f) {
    const a = f.alert;
    if (!a || a.id === undefined) return;
    if (typeof f.seq === "number" && f.seq > S.lastSeq) S.lastSeq = f.seq;
    const newest = S.alertSeq.get(a.id);
    if (newest !== undefined && typeof f.seq === "number" && f.seq <= newest) return;  // old news
    if (typeof f.seq === "number") S.alertSeq.set(a.id, f.seq);
    upsertAlert(a);
    const t = f.transition;
    // A new takeover shows its vehicle, unless the operator is looking at one on purpose.
    if (t && (t.kind === "raised" || t.kind === "reopened") && a.severity === "takeover"
        && a.vehicle && !S.pinned && S.vehicles.has(a.vehicle) && a.vehicle !== S.selected) {
      select(a.vehicle, false);
    }
    if (t && S.histories.has(a.id)) {
      const hist = S.histories.get(a.id);
      if (!hist.some((x) => x.seq === t.seq)) {
        hist.push(t);
        hist.sort((x, y) => x.seq - y.seq);
      }
    }
    renderAlertsAndFriends();
  }

  function upsertAlert(a) {
    if (a.state === "resolved") {
      S.open.delete(a.id);
      S.resolved = [a, ...S.resolved.filter((x) => x.id !== a.id)].slice(0, RESOLVED_KEEP);
    } else {
      S.open.set(a.id, a);
      S.resolved = S.resolved.filter((x) => x.id !== a.id);
    }
  }

  // An answer to our own POST: apply it unless a frame already brought something newer.
  function applyOwnResult(a) {
    if (!a || a.id === undefined) return;
    const cur = S.open.get(a.id) || S.resolved.find((x) => x.id === a.id);
    if (cur && (STATE_RANK[a.state] ?? 0) < (STATE_RANK[cur.state] ?? 0)) return;
    upsertAlert(a);
    renderAlertsAndFriends();
  }

  function applyDuty(duty) {
    if (!duty) return;
    S.duty = duty;
    renderDuty();
    renderFleet(null);
    renderVehicleSummary();
  }

  // ------------------------------------------------------------------ liveness
  function watchdog() {
    const now = Date.now();
    const silent = S.lastFrameAt ? now - S.lastFrameAt : Infinity;
    if ((S.ws && S.wsOpen && silent > FORCE_RECONNECT_MS && S.lastFrameAt)
        || (S.ws && !S.wsOpen && now - S.connectStartedAt > HANDSHAKE_TIMEOUT_MS)) {
      dropSocket();            // a half-open TCP connection never says goodbye
      scheduleReconnect();
    }
    const connected = Boolean(S.ws && S.wsOpen && S.gotSnapshot && silent <= DEAD_AFTER_MS);
    // The console may be connected to a hub that cannot see its vehicles (broker down, a
    // site gone quiet): that is not live either, and says why (l4mon/feed.py).
    const blind = connected ? blindSites() : [];
    const live = connected && !blind.length;
    S.live = live;
    document.body.classList.toggle("disconnected", !live);
    const banner = $("conn-banner");
    banner.hidden = live;
    const status = $("live");
    status.classList.toggle("is-live", live);
    status.classList.toggle("is-dead", !live);
    if (live) {
      status.textContent = "LIVE";
      status.title = "";
      return;
    }
    status.textContent = "NOT LIVE";
    if (blind.length) {
      const text = blind.map(([site, f]) => {
        const since = f.blind_since ? ` since ${clock(f.blind_since)}` : "";
        return f.state === "lost"
          ? `— the hub cannot see site ${site}${since}: ${f.reason}.`
          : `— site ${site} is back in view; its vehicles are judged again once they have reported.`;
      });
      text.push("Vehicles' state is UNKNOWN, not down.");
      status.title = text.join(" ");
      $("conn-banner-head").textContent = "THE HUB CANNOT SEE THE FLEET";
      $("conn-banner-text").textContent = text.join(" ");
      return;
    }
    status.title = "";
    $("conn-banner-head").textContent = "CONNECTION TO HUB LOST";
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
    $("conn-banner-text").textContent = parts.join(" ");
  }

  function blindSites() {
    return Object.entries(S.feed || {}).filter(([, f]) => f && f.state && f.state !== "ok");
  }

  // ------------------------------------------------------------------ initial loads
  async function loadSite() {
    try {
      S.site = await api("GET", "/api/site");
    } catch (err) {
      if (err.status === 401) return;
      S.site = null;
      if (err.status !== 404) setTimeout(loadSite, 5000);
    }
    $("site-name").textContent = S.site ? String(S.site.name ?? "") : "(no site file: fitted to vehicles)";
    buildPlot();
  }

  async function loadDemo() {
    try {
      S.demo = await api("GET", "/api/demo");
    } catch {
      S.demo = null;
    }
    renderDemo();
  }

  async function loadResolved() {
    try {
      const list = await api("GET", "/api/alerts?state=resolved&limit=20");
      if (!Array.isArray(list)) return;
      const seen = new Map(S.resolved.map((a) => [a.id, a]));
      for (const a of list) if (!seen.has(a.id) && !S.open.has(a.id)) seen.set(a.id, a);
      S.resolved = [...seen.values()]
        .sort((x, y) => (y.resolved_at ?? 0) - (x.resolved_at ?? 0)).slice(0, RESOLVED_KEEP);
      renderResolved();
    } catch { /* shown as not live elsewhere */ }
  }

  // ------------------------------------------------------------------ rendering: all
  function renderAll() {
    renderFleet(null);
    buildPlotIfNeeded();
    renderPlotVehicles();
    renderAlertsAndFriends();
    renderDuty();
    renderVehicleSummary();
    renderCharts();
    syncDemoVehicles();
    refreshDetailSoon();
    if (HO) HO.selected();
  }

  function renderAlertsAndFriends() {
    renderAlerts();
    renderResolved();
    renderFleet(null);
    renderPlotVehicles();
    updateCue();
  }

  function takeoverVehicles() {
    const ids = new Set();
    for (const a of S.open.values()) if (a.severity === "takeover" && a.vehicle) ids.add(a.vehicle);
    return ids;
  }

  // ------------------------------------------------------------------ fleet table
  const rowEls = new Map();   // vehicle id -> <tbody>

  function renderFleet(ids) {
    const table = $("fleet-empty").parentElement;
    $("fleet-empty").hidden = S.vehicles.size > 0;
    for (const [id, tb] of rowEls) {
      if (!S.vehicles.has(id)) { tb.remove(); rowEls.delete(id); }
    }
    const takeover = takeoverVehicles();
    const uncovered = new Set((S.duty && S.duty.unassigned) || []);
    const todo = ids ? ids : [...S.vehicles.keys()];
    let added = false;
    for (const id of todo) {
      const v = S.vehicles.get(id);
      if (!v) continue;
      let tb = rowEls.get(id);
      if (!tb) {
        tb = h("tbody", { class: "vrow", "data-testid": `vehicle-row-${id}` });
        tb.dataset.vehicle = id;
        tb.addEventListener("click", () => select(id));
        rowEls.set(id, tb);
        added = true;
      }
      fillRow(tb, v, takeover.has(id), uncovered.has(id));
    }
    if (!ids) {
      for (const [id, tb] of rowEls) {
        tb.classList.toggle("takeover", takeover.has(id));
        tb.classList.toggle("selected", id === S.selected);
      }
    }
    if (added) {
      for (const id of [...rowEls.keys()].sort()) table.append(rowEls.get(id));
    }
    $("fleet-count").textContent = String(S.vehicles.size);
  }

  function ageSpan(base, rx, digits) {
    const e = h("span", { text: fmt(base, digits) });
    if (base !== null && base !== undefined) {
      e.dataset.ageBase = String(base);
      e.dataset.ageRx = String(rx);
      e.dataset.ageDigits = String(digits);
    }
    return e;
  }

  function fillRow(tb, v, takeover, uncovered) {
    const links = Object.entries(v.links || {});
    if (!links.length) links.push(["–", null]);
    const span = links.length;
    const rows = links.map(([name, l], i) => {
      const tr = h("tr");
      if (i === 0) {
        const tele = v.telemetry === "fresh"
          ? h("div", { class: "vsub" }, "fresh ", ageSpan(v.age_s, v._rx, 1), " s")
          : h("div", { class: "vsub" }, h("span", { class: "pill stale", title: "telemetry stale" },
              `${v.telemetry ?? "?"} `, ageSpan(v.age_s, v._rx, 0), " s"));
        tr.append(
          h("td", { rowspan: span },
            h("div", { class: "vid", text: v.id }),
            h("div", { class: "vsub", text: v.mode ?? "mode ?" }),
            tele),
          h("td", { rowspan: span },
            h("div", null,
              pill(connClass(v.connectivity), CONN_LABEL[v.connectivity] ?? String(v.connectivity))),
            v.unseen ? h("div", { class: "vsub unseen", "data-testid": `unseen-${v.id}`,
                                  title: v.unseen, text: "not seen by the hub" }) : null,
            takeover ? h("div", null, pill("c-all_links_down", "TAKEOVER")) : null,
            uncovered ? h("div", { class: "uncovered", text: "no operator" }) : null),
        );
      }
      tr.append(h("td", { text: name }));
      // Figures of a link that went silent are its last known ones: shown, but dimmed.
      if (l && (l.state === "stale" || l.state === "unknown")) tr.className = "stale-link";
      if (!l) { tr.append(h("td", { colspan: 9, class: "dim", text: "no link heard" })); return tr; }
      tr.append(
        h("td", null, pill(`s-${l.state}`, l.state ?? "?")),
        h("td", { text: l.rat ?? "–" }),
        h("td", { text: l.cell_id ?? "–", title: l.cell_id ?? "" }),
        h("td", { class: "num", text: fmt(l.rtt_p95_ms, 0) }),
        h("td", { class: "num", text: l.loss_ratio == null ? "–" : fmt(l.loss_ratio * 100, 2) }),
        h("td", { class: "num", text: l.ul_kbps == null ? "–" : fmt(l.ul_kbps / 1000, 1) }),
        h("td", { class: "num", text: fmt(l.rsrp_dbm, 0) }),
        h("td", { class: "num", text: fmt(l.sinr_db, 1) }),
        h("td", { class: "num" }, ageSpan(l.age_s, v._rx, 1)),
      );
      if (l.clock_suspect) tr.querySelector(".pill").after(" ⚠ clock");
      return tr;
    });
    tb.replaceChildren(...rows);
    tb.dataset.connectivity = String(v.connectivity);
    tb.classList.toggle("takeover", takeover);
    tb.classList.toggle("selected", v.id === S.selected);
  }

  // ------------------------------------------------------------------ site plot
  const P = {
    frame: null,        // {lat0, lon0, mx, my}
    bounds: null,       // {x0, y0, x1, y1} in metres (y north)
    u: 5,               // size unit in metres
    vehLayer: null,
    hoLayer: null,      // handover marks (handovers.js draws them)
    vehEls: new Map(),
    built: false,
  };

  function makeFrame(lat0, lon0) {
    const mPerDeg = 6371008.8 * Math.PI / 180;
    return { lat0, lon0, my: mPerDeg, mx: mPerDeg * Math.cos(lat0 * Math.PI / 180) };
  }
  const project = (lat, lon) => [(lon - P.frame.lon0) * P.frame.mx, -(lat - P.frame.lat0) * P.frame.my];

  function extend(b, x, y, r = 0) {
    if (!b) return { x0: x - r, y0: y - r, x1: x + r, y1: y + r };
    return { x0: Math.min(b.x0, x - r), y0: Math.min(b.y0, y - r),
             x1: Math.max(b.x1, x + r), y1: Math.max(b.y1, y + r) };
  }
  function pad(b, frac, minSpan) {
    const cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2;
    const w = Math.max(minSpan, (b.x1 - b.x0) * (1 + 2 * frac));
    const hgt = Math.max(minSpan, (b.y1 - b.y0) * (1 + 2 * frac));
    return { x0: cx - w / 2, x1: cx + w / 2, y0: cy - hgt / 2, y1: cy + hgt / 2 };
  }
  const positioned = () => [...S.vehicles.values()].filter(
    (v) => Number.isFinite(v.lat) && Number.isFinite(v.lon));

  function buildPlotIfNeeded() {
    if (S.site === undefined) return;     // wait for /api/site
    if (!P.built) { buildPlot(); return; }
    // Grow the box when a vehicle drives out of it: a vehicle off the plot is a vehicle unseen.
    if (!P.bounds) { buildPlot(); return; }
    const out = positioned().some((v) => {
      const [x, y] = project(v.lat, v.lon);
      return x < P.bounds.x0 || x > P.bounds.x1 || y < P.bounds.y0 || y > P.bounds.y1;
    });
    if (out) buildPlot();
  }

  function buildPlot() {
    const plot = $("plot");
    const site = S.site;
    P.vehEls.clear();
    P.built = false;
    let b = null;
    if (site && site.origin) {
      P.frame = makeFrame(site.origin.lat, site.origin.lon);
      for (const r of site.routes || []) for (const [lat, lon] of r.waypoints || []) {
        const [x, y] = project(lat, lon); b = extend(b, x, y);
      }
      for (const ix of site.intersections || []) {
        const [x, y] = project(ix.lat, ix.lon); b = extend(b, x, y, ix.radius_m || 0);
        for (const [lat, lon] of ix.polygon || []) { const [px, py] = project(lat, lon); b = extend(b, px, py); }
      }
      for (const r of site.rsus || []) { const [x, y] = project(r.lat, r.lon); b = extend(b, x, y); }
    }
    const vs = positioned();
    P.hoLayer = null;
    if (!P.frame || (!site && vs.length)) {
      if (!vs.length) { plot.replaceChildren(); P.bounds = null; return; }
      if (!P.frame) P.frame = makeFrame(vs[0].lat, vs[0].lon);
    }
    for (const v of vs) { const [x, y] = project(v.lat, v.lon); b = extend(b, x, y); }
    if (!b) { plot.replaceChildren(); return; }
    P.bounds = pad(b, site ? 0.06 : 0.25, 150);
    P.u = Math.max(P.bounds.x1 - P.bounds.x0, P.bounds.y1 - P.bounds.y0) / 100;
    const u = P.u;
    const layer = svg("g", { class: "static" });
    if (site) {
      for (const r of site.routes || []) {
        const pts = (r.waypoints || []).map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
        layer.append(svg("polyline", { class: "route", points: pts.join(" "), "stroke-width": 1.6 * u },
                         svg("title", { text: `route ${r.id}` })));
      }
      for (const ix of site.intersections || []) {
        const [x, y] = project(ix.lat, ix.lon);
        if (ix.polygon && ix.polygon.length >= 3) {
          const pts = ix.polygon.map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
          layer.append(svg("polygon", { class: "ix", points: pts.join(" "), "stroke-width": 0.3 * u }));
        } else {
          layer.append(svg("circle", { class: "ix", cx: x, cy: y, r: ix.radius_m || 2 * u,
                                       "stroke-width": 0.3 * u }));
        }
        // Above the zone and to its left: the road runs through it, cells sit beside it.
        layer.append(svg("text", { class: "ix-label", x: x + 0.5 * u,
                                   y: y - (ix.radius_m || 2 * u) - 0.8 * u, "text-anchor": "end",
                                   "font-size": 2.1 * u, "stroke-width": 0.5 * u,
                                   text: ix.name || ix.id }));
      }
      for (const r of site.rsus || []) {
        const [x, y] = project(r.lat, r.lon);
        const s = 1.6 * u;
        layer.append(svg("rect", { class: "rsu", x: x - s / 2, y: y - s / 2, width: s, height: s },
                         svg("title", { text: `RSU ${r.id}` })));
        layer.append(svg("text", { class: "rsu-label", x: x + 1.3 * u, y: y + 2.6 * u,
                                   "font-size": 1.7 * u, text: r.id }));
      }
      for (const c of site.cells || []) {
        if (!Number.isFinite(c.lat) || !Number.isFinite(c.lon)) continue;
        let [x, y] = project(c.lat, c.lon);
        const B = P.bounds, m = 2 * u;
        const off = x < B.x0 || x > B.x1 || y < B.y0 || y > B.y1;
        const dist = Math.hypot(x, y);
        if (off) {   // a far macro cell: pinned to the edge, pointing the way
          x = Math.min(B.x1 - m, Math.max(B.x0 + m, x));
          y = Math.min(B.y1 - m, Math.max(B.y0 + m, y));
        }
        const s = 1.4 * u;
        layer.append(svg("polygon", {
          class: off ? "cell offmap" : "cell", "stroke-width": 0.25 * u,
          points: `${x},${y - s} ${x - s},${y + s * 0.8} ${x + s},${y + s * 0.8}`,
        }, svg("title", { text: `cell ${c.id} (${c.rat})${off ? ` — off the plot, ${(dist / 1000).toFixed(1)} km from origin` : ""}` })));
        const right = !off || x < (B.x0 + B.x1) / 2;
        layer.append(svg("text", { class: "cell-label", x: right ? x + 1.8 * u : x - 1.8 * u,
                                   y: y + 0.6 * u, "font-size": 1.7 * u,
                                   "text-anchor": right ? "start" : "end",
                                   text: `${c.id}${off ? " ⇢" : ""}` }));
      }
    }
    // Handover marks above the zones and roads, vehicles above everything.
    P.hoLayer = svg("g", { class: "handovers" });
    P.vehLayer = svg("g", { class: "vehicles" });
    plot.replaceChildren(layer, P.hoLayer, P.vehLayer);
    P.built = true;
    layoutPlot();
    if (HO) HO.plotBuilt();
    renderPlotVehicles();
  }

  // The viewBox follows the panel's aspect ratio, so the site fills it.
  function layoutPlot() {
    const plot = $("plot");
    if (!P.bounds) return;
    const w = plot.clientWidth || 600, hgt = plot.clientHeight || 400;
    const B = P.bounds;
    let bw = B.x1 - B.x0, bh = B.y1 - B.y0;
    const cx = (B.x0 + B.x1) / 2, cy = (B.y0 + B.y1) / 2;
    if (bw / bh < w / hgt) bw = bh * w / hgt; else bh = bw * hgt / w;
    plot.setAttribute("viewBox", `${cx - bw / 2} ${cy - bh / 2} ${bw} ${bh}`);
    plot.setAttribute("preserveAspectRatio", "xMidYMid meet");
  }

  function plotColour(v) {
    if (v.connectivity === "all_links_down") return "all_links_down";
    if (v.telemetry !== "fresh" || !(v.connectivity in CONN_LABEL)) return "unknown";
    return v.connectivity;
  }

  function renderPlotVehicles() {
    if (!P.built || !P.vehLayer) { buildPlotIfNeeded(); return; }
    const takeover = takeoverVehicles();
    const u = P.u;
    const seen = new Set();
    for (const v of S.vehicles.values()) {
      if (!Number.isFinite(v.lat) || !Number.isFinite(v.lon)) continue;
      seen.add(v.id);
      let e = P.vehEls.get(v.id);
      if (!e) {
        const g = svg("g", { class: "veh-g", "data-testid": `plot-vehicle-${v.id}` });
        g.addEventListener("click", () => select(v.id));
        const pulse = svg("g", null,
          svg("circle", { class: "ring", r: 2.3 * u, "stroke-width": 0.45 * u }),
          svg("circle", { class: "pulse", r: 2.2 * u, "stroke-width": 0.6 * u }));
        const dot = svg("circle", { class: "veh", r: 1.5 * u, "stroke-width": 0.3 * u });
        const head = svg("line", { class: "heading", x1: 0, y1: 0, x2: 0, y2: -2.8 * u,
                                   "stroke-width": 0.35 * u });
        const label = svg("text", { class: "veh-label", x: 2.1 * u, y: -1.2 * u,
                                    "font-size": 2.3 * u, "stroke-width": 0.5 * u, text: v.id });
        const title = svg("title");
        g.append(pulse, head, dot, label, title);
        P.vehLayer.append(g);
        e = { g, pulse, dot, head, title };
        P.vehEls.set(v.id, e);
      }
      const [x, y] = project(v.lat, v.lon);
      e.g.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)})`);
      const colour = plotColour(v);
      e.g.dataset.connectivity = String(v.connectivity);
      e.dot.setAttribute("class", `veh f-${colour}${v.id === S.selected ? " selected" : ""}`);
      e.pulse.style.display = takeover.has(v.id) ? "" : "none";
      e.g.dataset.takeover = takeover.has(v.id) ? "true" : "false";
      if (Number.isFinite(v.heading_deg)) {
        e.head.style.display = "";
        e.head.setAttribute("transform", `rotate(${v.heading_deg})`);
      } else {
        e.head.style.display = "none";
      }
      e.title.textContent = `${v.id}: ${CONN_LABEL[v.connectivity] ?? v.connectivity}, ` +
        `telemetry ${v.telemetry}, ${fmt(v.speed_mps == null ? null : v.speed_mps * 3.6, 0)} km/h`;
    }
    for (const [id, e] of P.vehEls) if (!seen.has(id)) { e.g.remove(); P.vehEls.delete(id); }
    // Takeover vehicles and the selected one are drawn last, on top.
    for (const id of [...takeover, S.selected]) {
      const e = P.vehEls.get(id);
      if (e) P.vehLayer.append(e.g);
    }
    buildPlotIfNeeded();
  }

  // ------------------------------------------------------------------ alert queue
  const alertEls = new Map();

  function cmpAlert(a, b) {
    return (SEV_RANK[a.severity] ?? 9) - (SEV_RANK[b.severity] ?? 9)
      || (a.raised_at ?? 0) - (b.raised_at ?? 0) || a.id - b.id;
  }
  // An intersection alert (ping-pong hotspot) has no vehicle: it names the junction instead.
  function ixName(id) {
    const ix = S.site && (S.site.intersections || []).find((i) => i.id === id);
    return ix && ix.name ? String(ix.name) : String(id);
  }
  const where = (a) => [a.vehicle, a.link, a.rsu ? `RSU ${a.rsu}` : null,
    a.intersection ? `${a.vehicle ? "in " : ""}${ixName(a.intersection)}` : null]
    .filter(Boolean).join(" · ") || (a.site ? `site ${a.site}` : "");

  function renderAlerts() {
    const list = [...S.open.values()].sort(cmpAlert);
    const queue = $("alert-queue");
    for (const [id, e] of alertEls) {
      if (!S.open.has(id)) { e.li.remove(); alertEls.delete(id); S.expanded.delete(id); }
    }
    for (const a of list) {
      let e = alertEls.get(a.id);
      if (!e) { e = makeAlertEl(a.id); alertEls.set(a.id, e); }
      updateAlertEl(e, a);
    }
    // Reorder only when the order changed: moving a node would steal the focus of a reason
    // being typed.
    const want = list.map((a) => alertEls.get(a.id).li);
    const have = [...queue.children];
    if (want.length !== have.length || want.some((li, i) => li !== have[i])) {
      want.forEach((li, i) => { if (queue.children[i] !== li) queue.insertBefore(li, queue.children[i] || null); });
    }
    $("alert-empty").hidden = list.length > 0;
    const count = $("alert-count");
    count.textContent = String(list.length);
    count.classList.toggle("hot", list.some((a) => a.severity === "takeover"));
  }

  function makeAlertEl(id) {
    const e = {};
    e.li = h("li", { class: "alert", "data-testid": `alert-${id}` });
    e.sev = h("span", { class: "sev" });
    e.title = h("span", { class: "alert-title", "data-testid": "alert-title" });
    e.where = h("span", { class: "alert-where" });
    e.age = h("span", { class: "alert-age", "data-testid": "alert-age" });
    e.state = h("span", { class: "state-tag", "data-testid": "alert-state" });
    e.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "alert-escalated" });
    e.acked = h("span", { "data-testid": "alert-acked-by" });
    e.detail = h("div", { class: "alert-detail" });
    e.ack = h("button", { type: "button", class: "btn small primary", "data-testid": "ack-button",
                          text: "Acknowledge" });
    e.resolve = h("button", { type: "button", class: "btn small", "data-testid": "resolve-button",
                              text: "Resolve…" });
    e.reason = h("input", { type: "text", required: true, maxlength: 500,
                            placeholder: "reason (required) — what was done?",
                            "data-testid": "reason-input", "aria-label": "reason for resolving" });
    e.confirm = h("button", { type: "submit", class: "btn small danger",
                              "data-testid": "resolve-confirm", text: "Resolve" });
    e.cancel = h("button", { type: "button", class: "btn small ghost", text: "Cancel" });
    e.form = h("form", { class: "resolve-form", "data-testid": "resolve-form", novalidate: true },
               e.reason, e.confirm, e.cancel);
    e.form.hidden = true;
    e.error = h("span", { class: "form-error", role: "alert", "data-testid": "alert-error" });
    e.error.hidden = true;
    e.history = h("ol", { class: "history", "data-testid": "alert-history" });
    e.history.hidden = true;
    e.li.append(
      h("div", { class: "alert-head" }, e.sev, e.title, e.where, e.age),
      h("div", { class: "alert-meta" }, e.state, e.esc, e.acked,
        h("span", { class: "alert-actions act" }, e.ack, e.resolve)),
      h("div", { class: "act" }, e.form, e.error),
      e.detail,
      e.history,
    );
    e.ack.addEventListener("click", (ev) => { ev.stopPropagation(); acknowledge(id, e); });
    e.resolve.addEventListener("click", (ev) => {
      ev.stopPropagation();
      e.form.hidden = false;
      e.resolve.hidden = true;
      e.reason.focus();
    });
    e.cancel.addEventListener("click", (ev) => {
      ev.stopPropagation();
      e.form.hidden = true;
      e.resolve.hidden = false;
      e.error.hidden = true;
    });
    e.form.addEventListener("click", (ev) => ev.stopPropagation());
    e.form.addEventListener("submit", (ev) => { ev.preventDefault(); resolveAlert(id, e); });
    e.where.addEventListener("click", (ev) => {
      const a = S.open.get(id);
      if (a && a.vehicle) { ev.stopPropagation(); select(a.vehicle); }
      else if (a && a.intersection && HO) { ev.stopPropagation(); HO.showIntersection(a.intersection); }
    });
    e.history.addEventListener("click", (ev) => ev.stopPropagation());
    e.li.addEventListener("click", () => toggleHistory(id, e.history));
    return e;
  }

  function updateAlertEl(e, a) {
    e.li.className = `alert sev-${a.severity} st-${a.state}`;
    e.li.dataset.rule = String(a.rule);
    e.li.dataset.state = String(a.state);
    e.li.dataset.severity = String(a.severity);
    e.li.dataset.vehicle = a.vehicle == null ? "" : String(a.vehicle);
    e.li.dataset.intersection = a.intersection == null ? "" : String(a.intersection);
    e.li.dataset.escalated = a.escalated ? "true" : "false";
    e.sev.className = `sev sev-b-${a.severity}`;
    e.sev.textContent = String(a.severity);
    e.title.textContent = String(a.title ?? a.rule);
    e.where.textContent = where(a);
    e.where.style.cursor = a.vehicle || a.intersection ? "pointer" : "";
    e.age.dataset.since = String(a.raised_at);
    e.age.textContent = duration(hubNow() - a.raised_at);
    e.age.title = `raised ${clock(a.raised_at)}`;
    e.state.className = `state-tag ${a.state}`;
    e.state.textContent = String(a.state);
    e.esc.hidden = !a.escalated;
    if (a.state === "acknowledged") {
      const after = a.time_to_ack_s != null ? ` after ${duration(a.time_to_ack_s)}`
        : (a.acknowledged_at ? ` at ${clock(a.acknowledged_at)}` : "");
      e.acked.textContent = `acknowledged by ${a.acknowledged_by ?? "?"}${after}`;
    } else {
      e.acked.textContent = "";   // RAISED already says it
    }
    e.detail.textContent = a.detail ? String(a.detail) : "";
    e.detail.hidden = !a.detail;
    e.ack.hidden = a.state !== "raised";
  }

  async function acknowledge(id, e) {
    e.ack.disabled = true;
    try {
      applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/ack`, {}));
    } catch (err) {
      if (err.status !== 401) showAlertError(e, `Acknowledge failed: ${err.message}`);
    } finally {
      e.ack.disabled = false;
    }
  }

  async function resolveAlert(id, e, force = false) {
    const reason = e.reason.value.trim();
    if (!reason) { showAlertError(e, "A reason is required to resolve."); e.reason.focus(); return; }
    e.confirm.disabled = true;
    try {
      applyOwnResult(await api("POST", `/api/alerts/${encodeURIComponent(id)}/resolve`,
                               force ? { reason, force: true } : { reason }));
    } catch (err) {
      const holds = err.status === 409 && err.data && err.data.detail && err.data.detail.still_holds;
      if (holds) {
        // Said before it is done: resolved now, the same alert would be raised again at once.
        const again = h("button", { type: "button", class: "btn small", "data-testid": "resolve-anyway",
                                    text: "Resolve anyway" });
        again.addEventListener("click", () => { e.error.hidden = true; resolveAlert(id, e, true); });
        e.error.replaceChildren(`The condition still holds (${holds}): resolved now, it would be ` +
                                "raised again at once. ", again);
        e.error.hidden = false;
      } else if (err.status !== 401) {
        showAlertError(e, `Resolve failed: ${err.message}`);
      }
    } finally {
      e.confirm.disabled = false;
    }
  }

  function showAlertError(e, message) {
    e.error.textContent = message;
    e.error.hidden = false;
    setTimeout(() => { e.error.hidden = true; }, 8000);
  }

  async function toggleHistory(id, ol) {
    if (S.expanded.has(id)) {
      S.expanded.delete(id);
      ol.hidden = true;
      return;
    }
    S.expanded.add(id);
    ol.hidden = false;
    ol.replaceChildren(h("li", { class: "muted", text: "loading history…" }));
    try {
      const res = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
      const hist = (res && res.history) || [];
      const cached = S.histories.get(id) || [];
      const bySeq = new Map([...cached, ...hist].map((t) => [t.seq, t]));
      S.histories.set(id, [...bySeq.values()].sort((x, y) => x.seq - y.seq));
      if (res && res.alert && res.alert.state === "resolved" && S.open.has(id)) {
        applyOwnResult(res.alert);
      }
    } catch (err) {
      if (err.status !== 401) ol.replaceChildren(h("li", { class: "form-error", text: `history: ${err.message}` }));
      return;
    }
    renderHistory(id, ol);
  }

  function renderHistory(id, ol) {
    const hist = S.histories.get(id) || [];
    if (!hist.length) { ol.replaceChildren(h("li", { class: "muted", text: "no transitions" })); return; }
    ol.replaceChildren(...hist.map((t) => h("li", { "data-testid": "history-item" },
      h("span", { class: "mono", text: clock(t.at) }),
      h("span", { class: `k-${t.kind}`, text: String(t.kind) }),
      h("span", null,
        t.actor ? `by ${t.actor}` : "by the hub",
        t.detail ? ` — ${t.detail}` : "",
        h("span", { class: "muted",
                    text: ` · on duty: ${(t.on_duty && t.on_duty.length) ? t.on_duty.join(", ") : "nobody"}` })))));
  }

  function renderOpenHistories() {
    for (const id of S.expanded) {
      const e = alertEls.get(id);
      if (e && S.histories.has(id)) renderHistory(id, e.history);
    }
  }

  // ------------------------------------------------------------------ resolved list
  const resolvedOpen = new Set();

  function renderResolved() {
    $("resolved-count").textContent = String(S.resolved.length);
    $("resolved-list").replaceChildren(...S.resolved.map((a) => {
      const by = a.resolved_by ? `resolved by ${a.resolved_by}` : "cleared by its rule";
      const hist = h("ol", { class: "history" });
      hist.hidden = !resolvedOpen.has(a.id);
      if (!hist.hidden) renderHistory(a.id, hist);
      const li = h("li", { "data-testid": `resolved-alert-${a.id}`, dataset: { rule: String(a.rule) } },
        h("div", { class: `alert sev-${a.severity}` },
          h("div", { class: "alert-head" },
            h("span", { class: `sev sev-b-${a.severity}`, text: String(a.severity) }),
            h("span", { class: "alert-title", text: String(a.title ?? a.rule) }),
            h("span", { class: "alert-where", text: where(a) })),
          h("div", { class: "alert-meta" },
            h("span", { text: `${by}${a.resolved_at ? " at " + clock(a.resolved_at) : ""}` }),
            a.resolve_reason ? h("span", { text: `“${a.resolve_reason}”` }) : null,
            a.acknowledged_by ? h("span", { text: `acked by ${a.acknowledged_by}` }) : null,
            a.escalated ? h("span", { class: "esc-tag", text: "ESCALATED" }) : null),
          hist));
      li.addEventListener("click", async () => {
        if (resolvedOpen.has(a.id)) { resolvedOpen.delete(a.id); hist.hidden = true; return; }
        resolvedOpen.add(a.id);
        hist.hidden = false;
        try {
          const res = await api("GET", `/api/alerts/${encodeURIComponent(a.id)}`);
          S.histories.set(a.id, ((res && res.history) || []).slice().sort((x, y) => x.seq - y.seq));
          renderHistory(a.id, hist);
        } catch (err) {
          if (err.status !== 401) hist.replaceChildren(h("li", { class: "form-error", text: err.message }));
        }
      });
      return li;
    }));
    renderOpenHistories();
  }

  // ------------------------------------------------------------------ takeover cue + sound
  function pendingTakeovers() {
    return [...S.open.values()].filter((a) => a.severity === "takeover" && a.state === "raised")
      .sort(cmpAlert);
  }

  function updateCue() {
    const pending = pendingTakeovers();
    S.cueActive = pending.length > 0;
    const cue = $("takeover-cue");
    cue.hidden = !S.cueActive;
    $("sound-toggle").classList.toggle("attention", S.cueActive && !Sound.running());
    if (!S.cueActive) { cue.dataset.vehicles = ""; return; }
    const names = [...new Set(pending.map((a) => a.vehicle
      || (a.intersection ? ixName(a.intersection) : null) || a.rsu || a.site || "?"))];
    cue.dataset.vehicles = names.join(" ");
    cue.dataset.alert = String(pending[0].id);
    const first = pending[0];
    const text = $("takeover-text");
    const age = h("span", { "data-since": String(first.raised_at),
                            text: duration(hubNow() - first.raised_at) });
    if (names.length === 1) {
      const more = pending.length > 1 ? ` (+${pending.length - 1} more)` : "";
      text.replaceChildren(`TAKEOVER — ${names[0]} needs a human: ${first.title ?? first.rule}${more} · `, age);
    } else {
      text.replaceChildren(`TAKEOVER — ${names.length} vehicles need a human: ${names.join(", ")} · oldest `, age);
    }
  }

  const Sound = {
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

  function renderSoundToggle() {
    const b = $("sound-toggle");
    b.setAttribute("aria-pressed", Sound.wanted ? "true" : "false");
    if (!Sound.wanted) b.textContent = "Sound off — click to enable";
    else if (Sound.running()) b.textContent = "Sound on";
    else b.textContent = "Sound blocked — click to enable";
    b.classList.toggle("attention", S.cueActive && !Sound.running());
  }

  async function toggleSound() {
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
  function flashTitle() {
    const base = "l4mon — fleet link health";
    if (S.cueActive) {
      titleFlip = !titleFlip;
      const names = $("takeover-cue").dataset.vehicles || "";
      document.title = titleFlip ? `⚠ TAKEOVER ${names} ⚠` : `!!! ${names} — ${base}`;
    } else {
      const n = S.open.size;
      document.title = n ? `(${n}) ${base}` : base;
    }
  }

  // ------------------------------------------------------------------ duty
  function coverOf(id) {
    if (!S.duty) return null;
    const ops = S.duty.on_duty || [];
    const explicit = ops.find((o) => (o.vehicles || []).includes(id));
    if (explicit) return explicit.operator;
    if ((S.duty.unassigned || []).includes(id)) return null;
    const all = ops.find((o) => !o.vehicles || o.vehicles.length === 0);
    return all ? all.operator : null;
  }

  function renderDuty() {
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
      (o.vehicles && o.vehicles.length) ? `covers ${o.vehicles.join(", ")}`
        : "covers every vehicle not assigned to someone else"))
      : [h("li", { class: "empty", text: "Nobody is on duty." })]));
    const unassigned = (duty && duty.unassigned) || [];
    $("unassigned").replaceChildren(...unassigned.map((id) =>
      h("li", { "data-testid": `unassigned-${id}`, text: `No operator covers ${id}` })));
    const nobody = Boolean(duty) && ops.length === 0;
    $("nobody-warning").hidden = !nobody;
    const sum = $("duty-summary");
    sum.classList.toggle("warn", nobody || unassigned.length > 0);
    sum.textContent = !duty ? "" : nobody ? "NOBODY ON DUTY"
      : `On duty: ${ops.map((o) => o.operator).join(", ")}` +
        (unassigned.length ? ` · ${unassigned.length} uncovered` : "");
  }

  async function duty(on) {
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

  // ------------------------------------------------------------------ demo faults
  function demoVehicleIds() {
    const ids = ((S.demo && S.demo.vehicles) || []).map((v) => (typeof v === "string" ? v : v && v.id))
      .filter(Boolean);
    return ids.length ? ids : [...S.vehicles.keys()].sort();
  }

  function renderDemo() {
    const panel = $("demo");
    panel.hidden = !S.demo;
    if (!S.demo) return;
    syncDemoVehicles();
    const links = new Set();
    for (const v of S.vehicles.values()) for (const name of Object.keys(v.links || {})) links.add(name);
    if (!links.size) { links.add("l5g"); links.add("lte"); }
    const linkSel = $("fault-link");
    linkSel.replaceChildren(h("option", { value: "", text: "all" }),
      ...[...links].sort().map((n) => h("option", { value: n, text: n })));
    const buttons = [];
    for (const kind of S.demo.faults || []) {
      if (kind === "link_down") {
        for (const n of [...links].sort()) {
          buttons.push(faultButton(`Drop ${n.toUpperCase()}`, kind, n, `fault-link_down-${n}`));
        }
      } else {
        const label = FAULT_LABEL[kind] ?? kind.replaceAll("_", " ");
        buttons.push(faultButton(LINK_OPTIONAL_FAULTS.has(kind) ? `${label} (link above)` : label,
                                 kind, undefined, `fault-${kind}`));
      }
    }
    $("fault-buttons").replaceChildren(...buttons);
  }

  function syncDemoVehicles() {
    if (!S.demo) return;
    const sel = $("fault-vehicle");
    const ids = demoVehicleIds();
    const have = [...sel.options].map((o) => o.value);
    if (have.join() !== ids.join()) {
      const keep = sel.value;
      sel.replaceChildren(...ids.map((id) => h("option", { value: id, text: id })));
      if (ids.includes(keep)) sel.value = keep;
    }
  }

  function faultButton(label, kind, link, testid) {
    const b = h("button", { type: "button", class: kind === "both_links_down" || kind === "takeover_request"
      ? "btn danger" : "btn", "data-testid": testid, text: label });
    b.addEventListener("click", () => injectFault(kind, link, b));
    return b;
  }

  async function injectFault(kind, fixedLink, button) {
    const vehicle = $("fault-vehicle").value;
    const duration = Number($("fault-duration").value) || 30;
    let link = null;
    if (fixedLink !== undefined) link = fixedLink;
    else if (LINK_OPTIONAL_FAULTS.has(kind)) link = $("fault-link").value || null;
    button.disabled = true;
    try {
      await api("POST", "/api/demo/faults", { kind, vehicle, link, duration_s: duration });
      toast(`Injected ${kind}${link ? ` (${link})` : ""} on ${vehicle} for ${duration} s.`);
    } catch (err) {
      if (err.status !== 401) toast(`Fault injection failed: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ selected vehicle
  function select(id, byHand = true) {
    if (!S.vehicles.has(id)) return;
    if (byHand) S.pinned = true;
    S.selected = id;
    S.detail = null;
    renderFleet(null);
    renderPlotVehicles();
    renderVehicleSummary();
    renderCharts();
    renderDetail();
    // The fault picker follows the operator's own clicks, never an automatic selection.
    if (byHand && S.demo && demoVehicleIds().includes(id)) $("fault-vehicle").value = id;
    refreshDetailSoon();
    if (HO) HO.selected();
  }

  function refreshDetailSoon() {
    clearInterval(S.detailTimer);
    if (!S.selected || !S.token) return;
    loadDetail();
    S.detailTimer = setInterval(loadDetail, DETAIL_REFRESH_MS);
  }

  async function loadDetail() {
    const id = S.selected;
    if (!id) return;
    try {
      const d = await api("GET", `/api/vehicles/${encodeURIComponent(id)}`);
      if (id !== S.selected) return;
      S.detail = d;
      renderDetail();
    } catch (err) {
      if (err.status === 404 && id === S.selected) { S.detail = null; renderDetail(); }
    }
  }

  function renderVehicleSummary() {
    const id = S.selected;
    const v = id && S.vehicles.get(id);
    const title = $("vp-title");
    if (!v) {
      title.replaceChildren("Vehicle ", h("span", { class: "muted", text: "— click one in the table or plot" }));
      $("vp-summary").replaceChildren();
      return;
    }
    title.replaceChildren(`Vehicle ${v.id}`);
    title.dataset.vehicle = v.id;
    const cover = coverOf(v.id);
    $("vp-summary").replaceChildren(...[   // replaceChildren would print a null as "null"
      pill(connClass(v.connectivity), CONN_LABEL[v.connectivity] ?? String(v.connectivity)),
      v.unseen ? h("span", { class: "unseen", text: `state unknown: ${v.unseen}` }) : null,
      h("span", { text: `mode ${v.mode ?? "?"}` }),
      h("span", { class: v.telemetry === "fresh" ? "" : "pill stale" },
        `telemetry ${v.telemetry} `, ageSpan(v.age_s, v._rx, 1), " s"),
      h("span", { text: `${fmt(v.speed_mps == null ? null : v.speed_mps * 3.6, 0)} km/h` +
                        (Number.isFinite(v.heading_deg) ? ` · heading ${fmt(v.heading_deg, 0)}°` : "") }),
      h("span", { class: "muted", text: `${fmt(v.lat, 5)}, ${fmt(v.lon, 5)}` }),
      S.duty ? h("span", { class: cover ? "" : "uncovered",
                           text: cover ? `covered by ${cover}` : "NO OPERATOR COVERS IT" }) : null,
    ].filter(Boolean));
  }

  function renderDetail() {
    const d = S.detail;
    const box = $("vp-links");
    const events = $("vp-events");
    if (!d || d.id !== S.selected) {
      box.replaceChildren();
      events.replaceChildren(h("li", { class: "empty", text: S.selected ? "loading…" : "" }));
      return;
    }
    box.replaceChildren(...Object.entries(d.links || {}).map(([name, l]) => {
      const w10 = (l.windows && l.windows["10s"]) || {};
      const w60 = (l.windows && l.windows["60s"]) || {};
      const seq = l.sequence || {};
      return h("div", { class: "lk" },
        h("b", { text: name }), " ", pill(`s-${l.state}`, l.state ?? "?"),
        l.state_since ? h("span", { class: "muted", text: ` since ${clock(l.state_since)}` }) : null,
        l.reasons && l.reasons.length ? h("div", { text: `why: ${l.reasons.join(", ")}` }) : null,
        h("div", { text: `RTT 10 s p50/p95/p99 ${fmt(w10.rtt_p50_ms, 0)}/${fmt(w10.rtt_p95_ms, 0)}/` +
                         `${fmt(w10.rtt_p99_ms, 0)} ms, jitter ${fmt(w10.rtt_jitter_ms, 1)} ms` }),
        h("div", { text: `RTT 60 s p95 ${fmt(w60.rtt_p95_ms, 0)} ms · loss 60 s ` +
                         `${w60.loss_ratio == null ? "–" : fmt(w60.loss_ratio * 100, 2)} %` }),
        h("div", { text: `seq lost ${seq.lost ?? "–"} of ${seq.received ?? "–"} · ` +
                         `cell changes ${l.cell_changes ?? "–"}` +
                         (l.clock_suspect ? " · CLOCK SUSPECT" : "") }));
    }));
    const evs = (d.events || []).slice(0, 30);
    events.replaceChildren(...(evs.length ? evs.map((ev) => h("li", null,
      h("span", { class: "mono", text: clock(ev.received_at) }),
      h("span", { text: String(ev.kind) }),
      h("span", { class: "muted",
                  text: ev.detail == null ? "" : typeof ev.detail === "string" ? ev.detail
                    : JSON.stringify(ev.detail) })))
      : [h("li", { class: "empty", text: "no events" })]));
  }

  // ------------------------------------------------------------------ charts
  // A round axis maximum and a tick count that gives round steps.
  function niceScale(v) {
    if (!(v > 0)) return [1, 5];
    const p = 10 ** Math.floor(Math.log10(v));
    for (const [m, ticks] of [[1, 5], [2, 4], [2.5, 5], [3, 3], [4, 4], [5, 5], [6, 3], [8, 4]]) {
      if (m * p >= v) return [m * p, ticks];
    }
    return [10 * p, 5];
  }

  function renderCharts() {
    const rings = S.selected && S.rings.get(S.selected);
    const names = rings ? [...rings.keys()].sort() : [];
    const series = (key) => names.map((n) => ({ name: n, points: rings.get(n), key }));
    drawChart($("chart-rtt"), series("rtt"), { floor: 50, threshold: 150, digits: 0 });
    drawChart($("chart-ul"), series("ul"), { floor: 1, digits: 1 });
  }

  function drawChart(el, list, opts) {
    const W = el.clientWidth || 300, H = el.clientHeight || 130;
    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const L = 36, R = 6, T = 6, bandH = 3, B = 16 + list.length * (bandH + 1);
    const pw = W - L - R, ph = H - T - B;
    const t1 = hubNow(), t0 = t1 - CHART_SPAN_S;
    let max = opts.floor;
    for (const s of list) for (const p of s.points) {
      const v = p[s.key];
      if (p.t >= t0 && Number.isFinite(v) && v > max) max = v;
    }
    let ticks;
    [max, ticks] = niceScale(max * 1.05);
    const X = (t) => L + ((t - t0) / CHART_SPAN_S) * pw;
    const Y = (v) => T + ph - (Math.min(v, max) / max) * ph;
    const kids = [];
    for (let i = 0; i <= ticks; i += 1) {
      const v = (max * i) / ticks, y = Y(v);
      kids.push(svg("line", { class: "grid-line", x1: L, x2: L + pw, y1: y, y2: y }));
      kids.push(svg("text", { class: "axis-text", x: L - 4, y: y + 3, "text-anchor": "end",
                              text: fmt(v, Number.isInteger(v) ? 0 : 1) }));
    }
    for (let s = 0; s <= CHART_SPAN_S; s += 30) {
      const x = X(t1 - s);
      kids.push(svg("line", { class: "grid-line", x1: x, x2: x, y1: T, y2: T + ph }));
      kids.push(svg("text", { class: "axis-text", x, y: H - 3, "text-anchor": "middle",
                              text: s === 0 ? "now" : `−${s}s` }));
    }
    if (opts.threshold && opts.threshold < max) {
      kids.push(svg("line", { class: "thresh", x1: L, x2: L + pw, y1: Y(opts.threshold),
                              y2: Y(opts.threshold) }));
    }
    list.forEach((s, i) => {
      // Gaps: a missing figure, or no figure for a while, breaks the line.
      let run = [];
      const flush = () => {
        if (run.length > 1) kids.push(svg("polyline", { class: `series-${i}`, points: run.join(" ") }));
        else if (run.length === 1) {
          const [x, y] = run[0].split(",");
          kids.push(svg("circle", { class: `key-${i}`, cx: x, cy: y, r: 1.5 }));
        }
        run = [];
      };
      let prevT = null;
      for (const p of s.points) {
        if (p.t < t0 - 2) { prevT = p.t; continue; }
        const v = p[s.key];
        if (!Number.isFinite(v) || (prevT !== null && p.t - prevT > 5)) flush();
        if (Number.isFinite(v)) run.push(`${X(Math.max(p.t, t0)).toFixed(1)},${Y(v).toFixed(1)}`);
        prevT = p.t;
      }
      flush();
      // State band under the plot: when the link was ok / degraded / down / stale.
      const by = T + ph + 3 + i * (bandH + 1);
      const pts = s.points.filter((p) => p.t >= t0 - 5);
      for (let k = 0; k < pts.length; k += 1) {
        const a = Math.max(pts[k].t, t0);
        const b = k + 1 < pts.length ? pts[k + 1].t : t1;
        if (b <= t0 || b - a > 5) continue;
        kids.push(svg("rect", { class: `band-${pts[k].state}`, x: X(a), y: by,
                                width: Math.max(0.5, X(b) - X(a)), height: bandH }));
      }
      kids.push(svg("rect", { class: `key-${i}`, x: L + pw - 70 + i * 38, y: T + 2, width: 8, height: 8 }));
      kids.push(svg("text", { class: "axis-text", x: L + pw - 59 + i * 38, y: T + 10, text: s.name }));
    });
    if (!list.length) {
      kids.push(svg("text", { class: "axis-text", x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle",
                              text: S.selected ? "waiting for live figures…" : "no vehicle selected" }));
    }
    el.replaceChildren(...kids);
  }

  // ------------------------------------------------------------------ ticking
  function tickTexts() {
    const nowMs = Date.now();
    for (const e of document.querySelectorAll("[data-age-base]")) {
      const base = Number(e.dataset.ageBase), rx = Number(e.dataset.ageRx);
      e.textContent = fmt(base + (nowMs - rx) / 1000, Number(e.dataset.ageDigits));
    }
    const now = hubNow();
    for (const e of document.querySelectorAll("[data-since]")) {
      e.textContent = duration(now - Number(e.dataset.since));
    }
  }

  // ------------------------------------------------------------------ boot
  function boot() {
    if (typeof window.L4monHandovers === "function") {
      try {
        HO = window.L4monHandovers({ S, P, api, h, svg, fmt, clock, hubNow, duration, project,
                                     select, ixName, toast });
      } catch (err) {
        console.error("handovers.js failed to install", err);   // the rest of the console works
      }
    }
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
    $("duty-on").addEventListener("click", () => duty(true));
    $("duty-off").addEventListener("click", () => duty(false));
    $("takeover-ack").addEventListener("click", () => {
      const first = pendingTakeovers()[0];
      const e = first && alertEls.get(first.id);
      if (e) acknowledge(first.id, e);
    });
    // Browsers start audio only after a gesture: any click may unblock a wanted alarm.
    const unblock = () => {
      if (Sound.wanted && !Sound.running()) Sound.enable().then(renderSoundToggle);
    };
    document.addEventListener("pointerdown", unblock, true);
    document.addEventListener("keydown", unblock, true);

    if (window.ResizeObserver) {
      new ResizeObserver(() => layoutPlot()).observe($("plot"));
      new ResizeObserver(() => renderCharts()).observe($("chart-rtt"));
    }

    setInterval(watchdog, 250);
    setInterval(() => { tickTexts(); renderCharts(); if (HO) HO.tick(); }, 1000);
    setInterval(flashTitle, 700);
    setInterval(() => { if (S.cueActive) Sound.alarm(); renderSoundToggle(); }, 1500);
    watchdog();
    renderSoundToggle();

    if (S.token) start();
    else showLogin("");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
