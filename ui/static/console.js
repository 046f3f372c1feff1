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
  const CHART_SPAN_S = 600;          // the charts: the last 10 min (the hub's history, then live)
  const CHART_EVERY_MS = 1000;       // charts redraw once a second, not on every state frame
  const RING_KEEP_S = 130;           // live points kept per link of a vehicle not selected...
  const RING_KEEP_SELECTED_S = 610;  // ...and of the selected one
  const RING_MAX = 1400;
  const PERF_KEEP = 600;             // state-frame apply times kept (Performance API, ms)
  // Link RTT thresholds of the hub's verdicts ([links] in the hub config); the history
  // response carries the hub's own, these are the defaults until it has answered.
  const RTT_DEGRADED_MS = 150;
  const RTT_DOWN_MS = 1000;
  const DETAIL_REFRESH_MS = 3000;
  const RESOLVED_KEEP = 30;
  const SEV_RANK = { takeover: 0, warning: 1, info: 2 };
  const STATE_RANK = { raised: 0, acknowledged: 1, resolved: 2 };
  const CONN_LABEL = {
    ok: "ok", degraded: "degraded", one_link_down: "one link down",
    all_links_down: "all links down", unknown: "unknown",
  };
  // Who needs a human first: the fleet table's order (then by id, so it never jumps).
  const NEED_RANK = { all_links_down: 1, one_link_down: 2, degraded: 3, unknown: 4, ok: 5 };
  const NEED_TAKEOVER = 0;
  // Operator words for the hub's codes (the codes stay in tooltips and data-* attributes).
  const LINK_STATE_WORD = { ok: "ok", degraded: "degraded", down: "down", stale: "no data",
                            unknown: "unknown" };
  const MODE_WORD = { autonomous: "autonomous", mrm: "minimal risk manoeuvre",
                      remote: "remote driving", manual: "manual", stopped: "stopped" };
  const RAT_WORD = { nr: "5G", lte: "LTE", umts: "3G", gsm: "2G", none: "none" };
  const CODE_WORD = {
    takeover_request: "takeover request", all_links_down: "both links down",
    one_link_down: "one link down", no_service: "no service", no_probe_answer: "no probe answer",
    no_sample: "no sample", ping_pong: "ping-pong", too_frequent: "too frequent",
    clock_skew: "clock skew", telemetry_stall: "telemetry stall", rtt_spike: "RTT spike",
    bandwidth_cap: "uplink cap", link_down: "link down", both_links_down: "both links down",
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
    // Incidents (l4mon/alerts/incidents.py): several vehicles' alerts with one cause, shown,
    // cued and acknowledged as one. What ties them is on the alerts (`incident`, its id).
    incidents: new Map(),    // incident id -> Map(alert id -> member alert, open or resolved)
    incidentGroups: {},      // grouping name -> {title, by} (the snapshot's incident_groups)
    alertVer: 0,             // bumped whenever an alert changes (memo of alertMarks)
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
    hist: null,              // the selected vehicle's GET .../history: {id, state, ...}
    perf: { applyMs: [], frames: 0, maxMs: 0 },   // state frames: parse + apply, ms
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
  function pill(cls, text, title) { return h("span", { class: `pill ${cls}`, text, title }); }
  function connClass(c) { return `c-${c in CONN_LABEL ? c : "unknown"}`; }

  // ------------------------------------------------------------------ operator words
  const codeWords = (c) => (c == null ? "?" : CODE_WORD[c] ?? String(c).replaceAll("_", " "));
  function connWords(c, v) {
    if (c === "all_links_down") {
      const n = v && v.links ? Object.keys(v.links).length : 2;
      return n === 2 ? "both links down" : n === 1 ? "its link is down" : "all links down";
    }
    return CONN_LABEL[c] ?? codeWords(c);
  }
  const stateWords = (s) => LINK_STATE_WORD[s] ?? codeWords(s);
  const modeWords = (m) => (m == null ? "mode unknown" : MODE_WORD[m] ?? codeWords(m));
  const ratWords = (r) => (r == null ? "–" : RAT_WORD[r] ?? String(r).toUpperCase());
  function reasonWords(code, link) {
    switch (code) {
      case "no_sample": {
        const age = link && Number.isFinite(link.age_s) ? Math.max(1, Math.round(link.age_s)) : null;
        return age === null ? "no sample" : `no sample for ${age} s`;
      }
      case "no_probe_answer": return "no probe answer";
      case "no_service": return "no service";
      case "rtt_p95": return "RTT p95 over budget";
      case "loss": return "loss";
      case "rsrp": return "weak signal (RSRP)";
      case "sinr": return "low SINR";
      default: return codeWords(code);
    }
  }
  const reasonsWords = (l) => (l && l.reasons && l.reasons.length
    ? l.reasons.map((r) => reasonWords(r, l)).join(", ") : "");

  // An alert's detail as the hub wrote it ("connectivity=all_links_down", "state=degraded,
  // rtt_p95_ms=182.3", "takeover_request: ...") in words; anything else unchanged.
  function detailWords(detail, a) {
    const text = String(detail ?? "");
    const pairs = /^\s*[a-z_0-9]+=[^,=]+(,\s*[a-z_0-9]+=[^,=]+)*\s*$/.test(text)
      ? text.split(",").map((p) => p.trim().split("=")) : null;
    if (!pairs) {
      return text.replace(/\b[a-z]+(?:_[a-z0-9]+)+\b/g, (m) => (m in CODE_WORD ? CODE_WORD[m] : m));
    }
    const num = (v) => Number.parseFloat(v);
    // "connectivity=all_links_down" already says how many links are down.
    const conn = pairs.some(([k]) => k === "connectivity");
    return pairs.filter(([k]) => !(conn && k === "links_down")).map(([k, v]) => {
      switch (k) {
        case "connectivity": return connWords(v, a && S.vehicles.get(a.vehicle));
        case "state": return `link ${stateWords(v)}`;
        case "mode": return modeWords(v);
        case "rtt_p95_ms": return `RTT p95 ${fmt(num(v), 0)} ms`;
        case "telemetry_age_s": return `no telemetry for ${fmt(num(v), 1)} s`;
        case "ul_kbps_usable": return `usable uplink ${fmt(num(v) / 1000, 1)} Mbit/s`;
        case "links_down": return `${v} link${v === "1" ? "" : "s"} down`;
        case "health": return `RSU health ${codeWords(v)}`;
        default: return `${codeWords(k)} ${codeWords(v)}`;
      }
    }).join(", ");
  }

  // Vehicle ids in ranges: "shuttle-001–012, shuttle-020" (the full list goes in a tooltip).
  function compressIds(ids) {
    const out = [];
    let run = null;
    const flush = () => {
      if (!run) return;
      out.push(run.n === 1 ? run.first : `${run.first}–${run.lastNum}`);
      run = null;
    };
    for (const id of [...ids].sort()) {
      const m = /^(.*?)(\d+)$/.exec(id);
      if (m && run && run.prefix === m[1] && run.width === m[2].length
          && Number(m[2]) === run.last + 1) {
        run.last += 1; run.lastNum = m[2]; run.n += 1;
        continue;
      }
      flush();
      run = m ? { prefix: m[1], width: m[2].length, first: id, last: Number(m[2]), lastNum: m[2], n: 1 }
        : { prefix: null, first: id, n: 1 };
      if (!m) flush();
    }
    flush();
    return out.join(", ");
  }

  // Toasts live in their own strip at the foot of the screen, newest first, one line each
  // (the whole message in the tooltip): they never cover the plot, alerts, table or charts.
  const TOASTS_MAX = 4;
  function toast(message, isError) {
    const t = h("div", { class: isError ? "toast err" : "toast", role: "status",
                         "data-testid": "toast", title: message, text: message });
    const box = $("toasts");
    box.prepend(t);
    while (box.children.length > TOASTS_MAX) box.lastElementChild.remove();
    setTimeout(() => t.remove(), isError ? 10000 : 5000);
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
      const started = performance.now();
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      try { handleFrame(frame); } catch (err) { console.error("frame", frame && frame.type, err); }
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

  // The console's own cost: parse + apply of each state frame (performance.now(), ms), kept
  // for the last PERF_KEEP frames; bench/console_frames.py reads window.l4monPerf().
  function notePerf(ms) {
    const p = S.perf;
    p.frames += 1;
    p.applyMs.push(ms);
    if (p.applyMs.length > PERF_KEEP) p.applyMs.splice(0, p.applyMs.length - PERF_KEEP);
    if (ms > p.maxMs) p.maxMs = ms;
  }
  function perfP95() {
    const xs = S.perf.applyMs.slice(-120).sort((a, b) => a - b);
    return xs.length ? xs[Math.min(xs.length - 1, Math.floor(0.95 * xs.length))] : null;
  }
  window.l4monPerf = () => ({ apply_ms: S.perf.applyMs.slice(), frames: S.perf.frames,
                              max_ms: S.perf.maxMs, vehicles: S.vehicles.size });
  function renderPerf() {
    const e = $("perf");
    if (!e) return;
    const p95 = perfP95();
    e.textContent = p95 === null ? "" : `console: state frame ${fmt(p95, 1)} ms p95`;
    e.title = "time this page takes to apply one state frame (parse and update), 95th " +
      "percentile of the last 120 frames";
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
      S.incidents.clear();
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
    if (f.incident_groups && typeof f.incident_groups === "object") S.incidentGroups = f.incident_groups;
    S.alertVer += 1;
    // Members: the open alerts; members resolved while we were away come from the hub.
    for (const m of S.incidents.values()) {
      for (const [id, a] of m) if (a.state !== "resolved" && !S.open.has(id)) m.delete(id);
    }
    for (const a of S.open.values()) noteMember(a);
    pruneIncidents();
    if (S.incidents.size) loadIncidents();
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
    // The charts follow on their own 1 s beat (CHART_EVERY_MS): 1 px is ~1 s of 10 min.
    if (changed.includes(S.selected)) renderVehicleSummary();
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
      const keep = v.id === S.selected ? RING_KEEP_SELECTED_S : RING_KEEP_S;
      let drop = 0;
      while (drop < ring.length && ring[drop].t < now - keep) drop += 1;
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
    // A vehicle joining an incident already on screen does not take the selection away.
    const joins = a.incident != null && [...(S.incidents.get(a.incident)?.keys() ?? [])]
      .some((id) => id !== a.id);
    upsertAlert(a);
    const t = f.transition;
    // A new takeover shows its vehicle, unless the operator is looking at one on purpose.
    if (t && (t.kind === "raised" || t.kind === "reopened") && a.severity === "takeover" && !joins
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
    S.alertVer += 1;
    noteMember(a);
    if (a.state === "resolved") {
      S.open.delete(a.id);
      S.resolved = [a, ...S.resolved.filter((x) => x.id !== a.id)].slice(0, RESOLVED_KEEP);
    } else {
      S.open.set(a.id, a);
      S.resolved = S.resolved.filter((x) => x.id !== a.id);
    }
  }

  // An answer to our own POST: apply it unless a frame already brought something newer.
  function applyOwnResult(a, render = true) {
    if (!a || a.id === undefined) return;
    const cur = S.open.get(a.id) || S.resolved.find((x) => x.id === a.id);
    if (cur && (STATE_RANK[a.state] ?? 0) < (STATE_RANK[cur.state] ?? 0)) return;
    upsertAlert(a);
    if (render) renderAlertsAndFriends();
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
    loadHistory();
    if (HO) HO.selected();
  }

  function renderAlertsAndFriends() {
    renderAlerts();
    renderResolved();
    renderFleet(null);
    renderPlotVehicles();
    updateCue();
  }

  // Vehicles with an open takeover alert, and those in an open incident (vehicle -> incident
  // id): worked out again only when an alert changed, not on every state frame.
  let marks = { ver: -1, takeover: new Set(), incident: new Map() };
  function alertMarks() {
    if (marks.ver === S.alertVer) return marks;
    const takeover = new Set(), incident = new Map();
    for (const a of S.open.values()) {
      if (!a.vehicle) continue;
      if (a.severity === "takeover") takeover.add(a.vehicle);
      if (a.incident != null) incident.set(a.vehicle, a.incident);
    }
    marks = { ver: S.alertVer, takeover, incident };
    return marks;
  }
  const takeoverVehicles = () => alertMarks().takeover;

  // ------------------------------------------------------------------ fleet table
  // One <tbody> per vehicle, built once and then updated in place (a state frame carries the
  // whole fleet twice a second: rebuilding 100 rows each time would cost more than the rest).
  // Order: whoever needs a human first (open takeover alert, both links down, one link down,
  // degraded, unknown, ok), then by id; rows move only when a vehicle's rank changed.
  const rowEls = new Map();   // vehicle id -> row record {tb, key, rank, refs...}
  let fleetOrder = [];        // ids in the table's order, as last laid out
  const ageEls = new Set();   // age figures that tick between frames (tickTexts)

  function needRank(v, takeover) {
    if (takeover.has(v.id)) return NEED_TAKEOVER;
    return NEED_RANK[v.connectivity] ?? NEED_RANK.unknown;
  }

  // Updates that touch the DOM only when something changed. The last value lives in plain JS
  // objects (row and mark records), never as expando properties on DOM nodes.
  function chg(o, k, v) { if (o[k] === v) return false; o[k] = v; return true; }
  // A text that is often rewritten: one Text node, its `data` replaced when the text changed.
  class Field {
    constructor(el, text = "") { this.v = text; this.node = document.createTextNode(text); el.append(this.node); }
    set(text) { if (text !== this.v) { this.v = text; this.node.data = text; } }
  }
  // An age that ticks between frames (tickTexts): the hub's figure plus local time since.
  class AgeField extends Field {
    constructor(el) { super(el); this.base = null; this.rx = 0; this.digits = 1; }
    at(base, rx, digits) {
      this.base = base; this.rx = rx; this.digits = digits;
      this.set(fmt(base, digits));
      ageEls.add(this);
    }
    tick(nowMs) {
      if (this.base !== null && this.base !== undefined) this.set(fmt(this.base + (nowMs - this.rx) / 1000, this.digits));
    }
  }
  function st(e, text) { if (e.textContent !== text) e.textContent = text; }
  function stitle(e, title) { if (e.title !== title) e.title = title; }
  function shide(e, hidden) { if (e.hidden !== hidden) e.hidden = hidden; }

  function renderFleet(ids) {
    $("fleet-empty").hidden = S.vehicles.size > 0;
    for (const [id, r] of rowEls) {
      if (!S.vehicles.has(id)) { r.tb.remove(); rowEls.delete(id); }
    }
    const takeover = takeoverVehicles();
    const uncovered = new Set((S.duty && S.duty.unassigned) || []);
    for (const id of ids ? ids : S.vehicles.keys()) {
      const v = S.vehicles.get(id);
      if (!v) continue;
      let r = rowEls.get(id);
      if (!r) { r = makeRow(id); rowEls.set(id, r); }
      // A row scrolled out of sight gets its figures when it comes into view (rowSeen);
      // what decides its place and colour-coding is kept current for every row.
      if (r.visible || r.key === null) fillRow(r, v, takeover.has(id), uncovered.has(id));
      else { r.dirty = true; markRow(r, v, takeover.has(id), uncovered.has(id)); }
    }
    if (!ids) {   // after an alert or duty change: marks that only alerts move
      for (const [id, r] of rowEls) {
        if (chg(r, "take", takeover.has(id))) r.tb.classList.toggle("takeover", r.take);
        if (chg(r, "sel", id === S.selected)) r.tb.classList.toggle("selected", r.sel);
        incidentBadge(r);
      }
    }
    orderFleet(takeover);
    const count = $("fleet-count");
    if (count.textContent !== String(S.vehicles.size)) count.textContent = String(S.vehicles.size);
  }

  function orderFleet(takeover) {
    const ranks = new Map();
    for (const [id, r] of rowEls) {
      const rank = needRank(S.vehicles.get(id), takeover);
      ranks.set(id, rank);
      if (chg(r, "rank", rank)) r.tb.dataset.rank = String(rank);
    }
    const want = [...rowEls.keys()].sort(
      (a, b) => ranks.get(a) - ranks.get(b) || (a < b ? -1 : a > b ? 1 : 0));
    if (want.length === fleetOrder.length && want.every((id, i) => id === fleetOrder[i])) return;
    // Move as few rows as possible: those outside the longest run already in order.
    const table = $("fleet-empty").parentElement;
    const at = new Map(fleetOrder.map((id, i) => [id, i]));
    const keep = stayers(want.map((id) => (at.has(id) ? at.get(id) : -1)));
    let next = null;
    for (let i = want.length - 1; i >= 0; i -= 1) {
      const tb = rowEls.get(want[i]).tb;
      if (!keep[i] || tb.parentNode !== table) table.insertBefore(tb, next);
      next = tb;
    }
    fleetOrder = want;
  }

  // Which positions of `seq` (old indices, -1 for new rows) form a longest increasing
  // subsequence: those rows can stay where they are while the others move around them.
  function stayers(seq) {
    const tails = [], tailIdx = [], prev = new Array(seq.length).fill(-1);
    for (let i = 0; i < seq.length; i += 1) {
      const v = seq[i];
      if (v < 0) continue;
      let lo = 0, hi = tails.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < v) lo = mid + 1; else hi = mid; }
      tails[lo] = v; tailIdx[lo] = i;
      prev[i] = lo > 0 ? tailIdx[lo - 1] : -1;
    }
    const keep = new Array(seq.length).fill(false);
    for (let i = tails.length ? tailIdx[tails.length - 1] : -1; i >= 0; i = prev[i]) keep[i] = true;
    return keep;
  }

  // Rows in view of the table's scroll box; the others are brought up to date on entering it.
  let rowWatch = null;
  function rowSeen(entries) {
    const takeover = takeoverVehicles();
    const uncovered = new Set((S.duty && S.duty.unassigned) || []);
    for (const en of entries) {
      const r = rowEls.get(en.target.dataset.vehicle);
      if (!r) continue;
      r.visible = en.isIntersecting;
      const v = r.visible && r.dirty && S.vehicles.get(r.id);
      if (v) fillRow(r, v, takeover.has(r.id), uncovered.has(r.id));
    }
  }

  function makeRow(id) {
    const tb = h("tbody", { class: "vrow", "data-testid": `vehicle-row-${id}` });
    tb.dataset.vehicle = id;
    tb.addEventListener("click", () => select(id));
    if (!rowWatch && window.IntersectionObserver) {
      rowWatch = new IntersectionObserver(rowSeen, { root: $("fleet-view"), rootMargin: "200px 0px" });
    }
    if (rowWatch) rowWatch.observe(tb);
    return { id, tb, key: null, rank: null, take: false, sel: false, inc: null, conn: null, connCls: null,
             teleCls: null, teleTitle: null, unseen: null, takeShown: null, uncov: null,
             visible: !rowWatch, dirty: false };
  }

  // What an out-of-sight row keeps current: the attributes and classes others may look for.
  function markRow(r, v, takeover, uncovered) {
    if (chg(r, "conn", v.connectivity)) {
      r.connEl.className = `pill ${connClass(v.connectivity)}`;
      r.connText.set(connWords(v.connectivity, v));
      r.tb.dataset.connectivity = String(v.connectivity);
    }
    if (chg(r, "takeShown", takeover)) r.takeEl.hidden = !takeover;
    if (chg(r, "uncov", uncovered)) r.uncovEl.hidden = !uncovered;
    if (chg(r, "take", takeover)) r.tb.classList.toggle("takeover", takeover);
  }

  // The row's cells, for a vehicle with these links (rebuilt only when its links change).
  function buildRow(r, v, names) {
    const td = (cls) => h("td", cls ? { class: cls } : null);
    const tr0 = h("tr");
    const vid = h("div", { class: "vid", text: v.id });
    const mode = h("div", { class: "vsub" });
    r.mode = new Field(mode);
    r.modeEl = mode;
    r.telePill = h("span");
    r.teleText = new Field(r.telePill);
    const teleAge = h("span");
    r.teleAge = new AgeField(teleAge);
    r.tele = h("div", { class: "vsub" }, r.telePill, teleAge, " s");
    r.connEl = h("span", { class: "pill" });
    r.connText = new Field(r.connEl);
    r.unseenEl = h("div", { class: "vsub unseen", "data-testid": `unseen-${v.id}`,
                            text: "not seen by the hub" });
    r.takeEl = h("div", null, pill("c-all_links_down", "TAKEOVER", "an open takeover alert"));
    r.uncovEl = h("div", { class: "uncovered", text: "no operator",
                           title: "no operator on duty covers this vehicle" });
    r.incEl = h("div", { class: "inc-badge", "data-testid": `incident-badge-${v.id}`, text: "incident" });
    r.incEl.hidden = true;
    const span = Math.max(1, names.length);
    tr0.append(h("td", { rowspan: span, title: v.id }, vid, mode, r.tele),
               h("td", { rowspan: span }, h("div", null, r.connEl), r.unseenEl, r.takeEl, r.incEl,
                 r.uncovEl));
    r.links = [];
    const rows = [tr0];
    if (!names.length) {
      tr0.append(h("td", { text: "–" }), h("td", { colspan: 9, class: "dim", text: "no link heard" }));
    }
    names.forEach((name, i) => {
      const tr = i === 0 ? tr0 : h("tr");
      if (i > 0) rows.push(tr);
      const c = { tr, name, trCls: null, stateCls: null, stateTitle: null, clock: null, cellTitle: null };
      c.stateEl = h("span", { class: "pill" });
      c.state = new Field(c.stateEl);
      c.clockEl = h("span", { class: "clock-flag", text: " ⚠ clock",
                              title: "this link's clock offset is implausible: its delay figures are not trusted" });
      const rat = td(), cell = td(), rtt = td("num"), loss = td("num"), ul = td("num");
      const rsrp = td("num"), sinr = td("num"), age = td("num");
      c.cellEl = cell;
      c.rat = new Field(rat); c.cell = new Field(cell); c.rtt = new Field(rtt);
      c.loss = new Field(loss); c.ul = new Field(ul); c.rsrp = new Field(rsrp);
      c.sinr = new Field(sinr); c.age = new AgeField(age);
      tr.append(h("td", { text: name }), h("td", null, c.stateEl, c.clockEl), rat, cell, rtt,
                loss, ul, rsrp, sinr, age);
      r.links.push(c);
    });
    r.tb.replaceChildren(...rows);
    r.key = names.join("|");
    for (const k of ["conn", "connCls", "teleCls", "teleTitle", "unseen", "takeShown", "uncov", "modeTitle", "inc"]) r[k] = null;
    incidentBadge(r);
  }

  // "incident" under a member vehicle's connectivity: its alert is one of several with one cause.
  function incidentBadge(r) {
    if (!r.incEl) return;
    const inc = alertMarks().incident.get(r.id) ?? null;
    if (!chg(r, "inc", inc)) return;
    r.incEl.hidden = inc === null;
    r.tb.dataset.incident = inc === null ? "" : String(inc);
    const sum = inc === null ? null : incidentSummary(inc);
    r.incEl.title = sum ? `part of an incident: ${sum.title} — ${sum.causeText}` : "";
  }

  function fillRow(r, v, takeover, uncovered) {
    r.dirty = false;
    const links = v.links || {};
    let key = "";
    for (const name in links) key = key ? `${key}|${name}` : name;
    if (r.key !== key) buildRow(r, v, Object.keys(links));
    r.mode.set(modeWords(v.mode));
    if (chg(r, "modeTitle", v.mode)) r.modeEl.title = v.mode == null ? "" : `mode: ${modeWords(v.mode)}`;
    const fresh = v.telemetry === "fresh";
    if (chg(r, "teleCls", fresh)) {
      r.telePill.className = fresh ? "" : "pill stale";
      r.tele.title = fresh ? "" : "telemetry stale: no state message lately";
    }
    r.teleText.set(fresh ? "fresh " : `${codeWords(v.telemetry ?? "?")} `);
    r.teleAge.at(v.age_s, v._rx, fresh ? 1 : 0);
    if (chg(r, "conn", v.connectivity)) {
      r.connEl.className = `pill ${connClass(v.connectivity)}`;
      r.connText.set(connWords(v.connectivity, v));
      r.tb.dataset.connectivity = String(v.connectivity);
    }
    if (chg(r, "unseen", v.unseen || "")) {
      r.unseenEl.hidden = !v.unseen;
      r.unseenEl.title = v.unseen ? String(v.unseen) : "";
    }
    if (chg(r, "takeShown", takeover)) r.takeEl.hidden = !takeover;
    if (chg(r, "uncov", uncovered)) r.uncovEl.hidden = !uncovered;
    for (const c of r.links) {
      const l = links[c.name];
      if (chg(c, "trCls", l.state)) {
        c.tr.className = l.state === "stale" || l.state === "unknown" ? "stale-link" : "";
        c.stateEl.className = `pill s-${l.state}`;
        c.state.set(stateWords(l.state));
      }
      const why = l.reasons && l.reasons.length ? `${stateWords(l.state)}: ${reasonsWords(l)}` : "";
      if (chg(c, "stateTitle", why)) c.stateEl.title = why;
      if (chg(c, "clock", Boolean(l.clock_suspect))) c.clockEl.hidden = !l.clock_suspect;
      c.rat.set(ratWords(l.rat));
      const cell = l.cell_id ?? "–";
      c.cell.set(cell);
      if (chg(c, "cellTitle", cell)) c.cellEl.title = l.cell_id ?? "";
      c.rtt.set(fmt(l.rtt_p95_ms, 0));
      c.loss.set(l.loss_ratio == null ? "–" : fmt(l.loss_ratio * 100, 2));
      c.ul.set(l.ul_kbps == null ? "–" : fmt(l.ul_kbps / 1000, 1));
      c.rsrp.set(fmt(l.rsrp_dbm, 0));
      c.sinr.set(fmt(l.sinr_db, 1));
      c.age.at(l.age_s, v._rx, 1);
    }
    if (chg(r, "take", takeover)) r.tb.classList.toggle("takeover", takeover);
    if (chg(r, "sel", v.id === S.selected)) r.tb.classList.toggle("selected", r.sel);
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

  // ------------------------------------------------------------------ site plot
  // The plot's user units are metres (x east, y south: SVG's y grows downwards). Vehicles,
  // labels and the scale bar are sized in screen pixels (P.px metres per pixel), so a dense
  // fleet on a big site stays legible at any panel size.
  const LABEL_PX = 11;         // vehicle label font size
  const STATIC_LABEL_PX = 10;  // cells, RSUs
  const IX_LABEL_PX = 11;      // intersections
  const DOT_PX = 5;            // vehicle dot radius
  const SHORT_LABELS_FROM = 13;   // fleets this big drop their ids' common prefix on the plot
  const P = {
    frame: null,        // {lat0, lon0, mx, my}
    bounds: null,       // {x0, y0, x1, y1} in metres (y north)
    u: 5,               // size unit in metres (handover marks)
    px: 1,              // metres per screen pixel
    vb: null,           // the viewBox {x, y, w, h} (metres) and the plot's size in px {W, H}
    vehLayer: null,
    hoLayer: null,      // handover marks (handovers.js draws them)
    labelLayer: null,   // vehicle labels and their leader lines, above everything
    overlay: null,      // the scale bar
    vehEls: new Map(),
    statics: [],        // the site's labels: {el, kind, x, y, r, text}
    routes: [],         // the site's roads, [[x, y], ...] metres each
    staticBoxes: [],    // where they (and the site's icons) sit, px
    overlayBoxes: [],   // the scale bar's and the label note's boxes, px
    prefix: "",         // dropped from vehicle labels (SHORT_LABELS_FROM)
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

  // ---- text widths without touching the layout: a canvas measures them, once per string
  const textWidths = new Map();
  let measureCtx = null;
  function textWidth(text, px, bold) {
    const key = `${px}|${bold ? 1 : 0}|${text}`;
    let w = textWidths.get(key);
    if (w !== undefined) return w;
    if (!measureCtx) {
      measureCtx = document.createElement("canvas").getContext("2d");
      measureCtx._family = getComputedStyle(document.body).fontFamily || "sans-serif";
    }
    measureCtx.font = `${bold ? 700 : 400} ${px}px ${measureCtx._family}`;
    w = measureCtx.measureText(text).width;
    if (textWidths.size > 5000) textWidths.clear();
    textWidths.set(key, w);
    return w;
  }

  // ---- collision boxes (px), bucketed on a grid so a placement test looks at its neighbours
  const GRID_PX = 48;
  function boxGrid() { return new Map(); }
  function gridAdd(grid, b) {
    for (let gx = Math.floor(b.x0 / GRID_PX); gx <= Math.floor(b.x1 / GRID_PX); gx += 1) {
      for (let gy = Math.floor(b.y0 / GRID_PX); gy <= Math.floor(b.y1 / GRID_PX); gy += 1) {
        const k = gx * 100003 + gy;
        let cell = grid.get(k);
        if (!cell) grid.set(k, (cell = []));
        cell.push(b);
      }
    }
  }
  function gridHits(grid, x0, y0, x1, y1) {
    const gx1 = Math.floor(x1 / GRID_PX), gy1 = Math.floor(y1 / GRID_PX);
    for (let gx = Math.floor(x0 / GRID_PX); gx <= gx1; gx += 1) {
      for (let gy = Math.floor(y0 / GRID_PX); gy <= gy1; gy += 1) {
        const cell = grid.get(gx * 100003 + gy);
        if (cell === undefined) continue;
        for (let i = 0; i < cell.length; i += 1) {
          const o = cell[i];
          if (x0 < o.x1 && x1 > o.x0 && y0 < o.y1 && y1 > o.y0) return true;
        }
      }
    }
    return false;
  }
  // metres <-> plot pixels
  const toPx = (x, y) => [(x - P.vb.x) / P.px, (y - P.vb.y) / P.px];
  const toM = (px, py) => [P.vb.x + px * P.px, P.vb.y + py * P.px];

  // The first of `cands` (flat [dx0, dy0, dx1, dy1, ...]: a w x h box's top-left from the
  // anchor at ax, ay) that fits: inside the plot and clear of everything in `grid`; the
  // `prefer`red one is tried first. Returns the candidate's index, or -1.
  function firstFit(grid, ax, ay, w, hgt, cands, prefer) {
    const n = cands.length / 2, W = P.vb.W - 2, H = P.vb.H - 2;
    for (let i = -1; i < n; i += 1) {
      const k = i < 0 ? prefer : i;
      if (k < 0 || (i >= 0 && k === prefer)) continue;
      const x0 = ax + cands[2 * k], y0 = ay + cands[2 * k + 1];
      if (x0 < 2 || y0 < 2 || x0 + w > W || y0 + hgt > H) continue;
      if (!gridHits(grid, x0, y0, x0 + w, y0 + hgt)) return k;
    }
    return -1;
  }

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
    P.statics = [];
    P.routes = [];
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
    const labels = svg("g", { class: "static-labels" });
    const addLabel = (kind, x, y, r, text, cls) => {
      const el = svg("text", { class: cls, "dominant-baseline": "central", text });
      labels.append(el);
      P.statics.push({ el, kind, x, y, r, text, prefer: -1 });
    };
    if (site) {
      P.routes = (site.routes || []).map((r) => (r.waypoints || []).map(([lat, lon]) => project(lat, lon)));
      for (const r of site.routes || []) {
        const pts = (r.waypoints || []).map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
        layer.append(svg("polyline", { class: "route", points: pts.join(" "), "stroke-width": 1.6 * u },
                         svg("title", { text: `route ${r.id}` })));
      }
      for (const ix of site.intersections || []) {
        const [x, y] = project(ix.lat, ix.lon);
        const title = svg("title", { text: `intersection ${ix.name || ix.id}` });
        if (ix.polygon && ix.polygon.length >= 3) {
          const pts = ix.polygon.map(([lat, lon]) => project(lat, lon).map((n) => n.toFixed(1)).join(","));
          layer.append(svg("polygon", { class: "ix", points: pts.join(" "), "stroke-width": 0.3 * u }, title));
        } else {
          layer.append(svg("circle", { class: "ix", cx: x, cy: y, r: ix.radius_m || 2 * u,
                                       "stroke-width": 0.3 * u }, title));
        }
        addLabel("ix", x, y, ix.radius_m || 2 * u, ix.name || ix.id, "ix-label");
      }
      for (const r of site.rsus || []) {
        const [x, y] = project(r.lat, r.lon);
        const s = 1.6 * u;
        layer.append(svg("rect", { class: "rsu", x: x - s / 2, y: y - s / 2, width: s, height: s },
                         svg("title", { text: `RSU ${r.id}` })));
        addLabel("rsu", x, y, s / 2, r.id, "rsu-label");
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
        }, svg("title", { text: `cell ${c.id} (${ratWords(c.rat)})${off ? ` — off the plot, ${(dist / 1000).toFixed(1)} km from origin` : ""}` })));
        addLabel("cell", x, y, s, `${c.id}${off ? " ⇢" : ""}`, "cell-label");
      }
    }
    // Handover marks above the zones and roads, vehicles above them, labels above everything.
    P.hoLayer = svg("g", { class: "handovers" });
    P.vehLayer = svg("g", { class: "vehicles" });
    P.labelLayer = svg("g", { class: "veh-labels" });
    P.overlay = svg("g", { class: "scale-bar", "data-testid": "plot-scale-bar" });
    plot.replaceChildren(layer, labels, P.overlay, P.hoLayer, P.vehLayer, P.labelLayer);
    P.built = true;
    layoutPlot();
    if (HO) HO.plotBuilt();
    renderPlotVehicles();
  }

  // The viewBox follows the panel's aspect ratio, so the site fills it; then everything sized
  // in pixels (dots, labels, the scale bar) is sized again.
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
    const same = P.vb && P.vb.W === w && P.vb.H === hgt && P.vb.w === bw && P.vb.h === bh
      && P.vb.x === cx - bw / 2 && P.vb.y === cy - bh / 2;
    if (same) return;
    P.vb = { x: cx - bw / 2, y: cy - bh / 2, w: bw, h: bh, W: w, H: hgt };
    P.px = bw / w;
    for (const e of P.vehEls.values()) sizeVehicle(e);
    drawScaleBar();
    placeStaticLabels();
    if (P.built) renderPlotVehicles();
  }

  // A round length near 110 px: "200 m", in a corner of the plot away from the roads (so no
  // vehicle drives under it), below the vehicles; the note on shortened labels in another.
  // The plot's x and y are metres of the site's local frame (equirectangular about its
  // origin), so the bar is exact there.
  function drawScaleBar() {
    const g = P.overlay;
    if (!g || !P.vb) return;
    const px = P.px, W = P.vb.W, H = P.vb.H;
    const target = 110 * px;
    const p = 10 ** Math.floor(Math.log10(target));
    const len = [5, 2, 1].map((m) => m * p).find((m) => m <= target) || p;
    const lenPx = len / px;
    const text = len >= 1000 ? `${len / 1000} km` : `${len} m`;
    const sample = P.prefix && P.vehEls.size ? [...P.vehEls.keys()].sort()[0] : "";
    const note = sample ? `label ${sample.slice(P.prefix.length)} = ${sample}` : "";
    const road = [];
    for (const pts of P.routes) {
      for (let i = 1; i < pts.length; i += 1) {
        const [x0, y0] = toPx(...pts[i - 1]), [x1, y1] = toPx(...pts[i]);
        const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / 4));
        for (let j = 0; j <= n; j += 1) road.push([x0 + ((x1 - x0) * j) / n, y0 + ((y1 - y0) * j) / n]);
      }
    }
    for (const s of P.statics) if (s.kind !== "ix") road.push(toPx(s.x, s.y));
    const pad = DOT_PX + 2, m = 6;
    const taken = [];
    const corner = (bw, bh) => {
      const cands = [[m, H - m - bh], [m, m], [W - m - bw, H - m - bh], [W - m - bw, m]]
        .filter(([x, y]) => !taken.some((t) => x < t.x1 && x + bw > t.x0 && y < t.y1 && y + bh > t.y0));
      let best = null, bestScore = Infinity;
      for (const [x, y] of cands) {
        const sc = road.filter(([rx, ry]) => rx > x - pad && rx < x + bw + pad
                                           && ry > y - pad && ry < y + bh + pad).length;
        if (sc < bestScore) { best = [x, y]; bestScore = sc; }
      }
      const b = best ? { x0: best[0], y0: best[1], x1: best[0] + bw, y1: best[1] + bh } : null;
      if (b) taken.push(b);
      return b;
    };
    const kids = [];
    const bar = corner(lenPx + 8, 24);
    if (bar) {
      const [mx, my] = toM(bar.x0 + 4, bar.y1 - 4);
      kids.push(
        svg("rect", { class: "sb-bg", x: bar.x0 * px + P.vb.x, y: bar.y0 * px + P.vb.y,
                      width: (bar.x1 - bar.x0) * px, height: 24 * px, rx: 3 * px }),
        svg("path", { class: "sb-bar", "stroke-width": 2 * px,
                      d: `M${mx},${my - 5 * px}V${my}H${mx + len}V${my - 5 * px}` }),
        svg("text", { class: "sb-text", x: mx + len / 2, y: my - 11 * px, "text-anchor": "middle",
                      "dominant-baseline": "central", "font-size": 10 * px, text }));
    }
    const nb = note ? corner(textWidth(note, 10, false) + 10, 16) : null;
    if (nb) {
      const [nx, ny] = toM(nb.x0 + 5, (nb.y0 + nb.y1) / 2);
      kids.push(
        svg("rect", { class: "sb-bg", x: nb.x0 * px + P.vb.x, y: nb.y0 * px + P.vb.y,
                      width: (nb.x1 - nb.x0) * px, height: 16 * px, rx: 3 * px }),
        svg("text", { class: "sb-note", x: nx, y: ny, "dominant-baseline": "central",
                      "font-size": 10 * px, text: note, "data-testid": "plot-label-note" },
            svg("title", { text: `Vehicle labels on the plot leave out “${P.prefix}”; ` +
                                 "hover a vehicle for its full name." })));
    }
    g.replaceChildren(...kids);
    g.dataset.metres = String(len);
    P.overlayBoxes = taken;
  }

  // The site's own labels, placed once per layout: intersections first, then RSUs and cells,
  // each beside its mark where nothing else is; one that fits nowhere is hidden (its mark
  // keeps a tooltip).
  function placeStaticLabels() {
    if (!P.vb) return;
    const grid = boxGrid();
    const boxes = [];
    for (const b of P.overlayBoxes) gridAdd(grid, b);
    // The site's icons are obstacles for every label.
    for (const s of P.statics) {
      if (s.kind === "ix") continue;
      const [ax, ay] = toPx(s.x, s.y);
      const rr = s.r / P.px + 1;
      const b = { x0: ax - rr, y0: ay - rr, x1: ax + rr, y1: ay + rr };
      gridAdd(grid, b);
      boxes.push(b);
    }
    // The roads too, for these labels only: the vehicles drive there and would cover them.
    const road = DOT_PX + 1;
    for (const pts of P.routes) {
      for (let i = 1; i < pts.length; i += 1) {
        const [x0, y0] = toPx(...pts[i - 1]), [x1, y1] = toPx(...pts[i]);
        const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / road));
        for (let j = 0; j <= n; j += 1) {
          const x = x0 + ((x1 - x0) * j) / n, y = y0 + ((y1 - y0) * j) / n;
          gridAdd(grid, { x0: x - road, y0: y - road, x1: x + road, y1: y + road });
        }
      }
    }
    const rank = { ix: 0, rsu: 1, cell: 2 };
    for (const s of [...P.statics].sort((a, b) => rank[a.kind] - rank[b.kind])) {
      const fs = s.kind === "ix" ? IX_LABEL_PX : STATIC_LABEL_PX;
      const w = textWidth(s.text, fs, s.kind === "ix") + 4, hgt = fs + 4;
      const [ax, ay] = toPx(s.x, s.y);
      const r = s.r / P.px + 3;
      const d = r * 0.72;
      const cands = s.kind === "ix"
        ? [[-w + d * 0.3, -d - hgt], [-d * 0.3, -d - hgt], [-w / 2, -r - hgt], [-w / 2, r],
           [d, d], [-w - d, d], [r, -hgt / 2], [-r - w, -hgt / 2]]
        : [[r, -hgt / 2], [-r - w, -hgt / 2], [-w / 2, r], [-w / 2, -r - hgt],
           [r * 0.7, r * 0.7], [r * 0.7, -r * 0.7 - hgt], [-r * 0.7 - w, r * 0.7],
           [-r * 0.7 - w, -r * 0.7 - hgt]];
      const k = firstFit(grid, ax, ay, w, hgt, cands.flat(), -1);
      if (k < 0) { s.el.style.display = "none"; continue; }
      const b = { x0: ax + cands[k][0], y0: ay + cands[k][1], x1: ax + cands[k][0] + w,
                  y1: ay + cands[k][1] + hgt };
      gridAdd(grid, b);
      boxes.push(b);
      const [mx, my] = toM(b.x0 + 2, (b.y0 + b.y1) / 2);
      s.el.style.display = "";
      setProps(s.el, { x: mx, y: my, "font-size": fs * P.px, "stroke-width": 3 * P.px });
    }
    P.staticBoxes = boxes;
  }

  function plotColour(v) {
    if (v.connectivity === "all_links_down") return "all_links_down";
    if (v.telemetry !== "fresh" || !(v.connectivity in CONN_LABEL)) return "unknown";
    return v.connectivity;
  }

  // The part of the ids every vehicle shares ("shuttle-"), up to a separator, for a big fleet.
  function commonPrefix(ids) {
    if (ids.length < SHORT_LABELS_FROM) return "";
    let p = ids[0];
    for (const id of ids) { while (p && !id.startsWith(p)) p = p.slice(0, -1); }
    const cut = Math.max(p.lastIndexOf("-"), p.lastIndexOf("_"), p.lastIndexOf("."), p.lastIndexOf("/"));
    p = cut >= 0 ? p.slice(0, cut + 1) : "";
    return ids.every((id) => id.length > p.length) ? p : "";
  }

  function sizeVehicle(e) {
    const px = P.px;
    e.ring.setAttribute("r", 8 * px); e.ring.setAttribute("stroke-width", 2 * px);
    e.pulseC.setAttribute("r", 8 * px); e.pulseC.setAttribute("stroke-width", 2.5 * px);
    e.dot.setAttribute("r", DOT_PX * px); e.dot.setAttribute("stroke-width", 1.2 * px);
    e.head.setAttribute("y2", -10 * px); e.head.setAttribute("stroke-width", 1.6 * px);
    e.label.setAttribute("font-size", LABEL_PX * px);
    e.label.setAttribute("stroke-width", 3 * px);
    e.leader.setAttribute("stroke-width", 1 * px);
  }

  function makeVehicleEl(v) {
    const g = svg("g", { class: "veh-g", "data-testid": `plot-vehicle-${v.id}` });
    g.addEventListener("click", () => select(v.id));
    const ring = svg("circle", { class: "ring" });
    const pulseC = svg("circle", { class: "pulse" });
    const pulse = svg("g", null, ring, pulseC);
    const dot = svg("circle", { class: "veh" });
    const head = svg("line", { class: "heading", x1: 0, y1: 0, x2: 0 });
    const title = svg("title");
    // The label and its leader move with the vehicle: only a change of place rewrites them.
    const label = svg("text", { class: "veh-label", "data-testid": "plot-label",
                                "dominant-baseline": "central" });
    label.dataset.vehicle = v.id;
    const leader = svg("line", { class: "leader" });
    leader.style.display = "none";
    g.append(pulse, head, leader, dot, label, title);
    const e = { id: v.id, g, pulse, ring, pulseC, dot, head, title, label, leader, x: 0, y: 0, ax: 0, ay: 0,
                w: 0, cands: null, candsPx: 0, rank: 0, cand: -1, placed: false, hover: false,
                text: null, tf: null, conn: null, take: null, rot: null, pos: null, dotCls: null,
                tip: null, lcls: null, shown: true, leaderOn: false };
    // A label that found no room shows while the pointer is on its vehicle (drawn on top).
    g.addEventListener("mouseenter", () => {
      e.hover = true;
      vehicleTip(e);
      if (!e.placed) { showHoverLabel(e); P.vehLayer.append(g); }
    });
    g.addEventListener("mouseleave", () => { e.hover = false; if (!e.placed) hideLabel(e); });
    sizeVehicle(e);
    return e;
  }

  function vehicleTip(e) {
    const v = S.vehicles.get(e.id);
    if (!v) return;
    const tip = `${v.id}: ${connWords(v.connectivity, v)}, telemetry ${codeWords(v.telemetry)}, ` +
      `${fmt(v.speed_mps == null ? null : v.speed_mps * 3.6, 0)} km/h`;
    if (chg(e, "tip", tip)) e.title.textContent = tip;
  }

  function renderPlotVehicles() {
    if (!P.built || !P.vehLayer || !P.vb) { buildPlotIfNeeded(); return; }
    const takeover = takeoverVehicles();
    const seen = new Set();
    let added = false;
    for (const v of S.vehicles.values()) {
      if (!Number.isFinite(v.lat) || !Number.isFinite(v.lon)) continue;
      seen.add(v.id);
      let e = P.vehEls.get(v.id);
      if (!e) {
        e = makeVehicleEl(v);
        P.vehLayer.append(e.g);
        P.vehEls.set(v.id, e);
        added = true;
      }
      const [x, y] = project(v.lat, v.lon);
      e.x = x; e.y = y;
      const tf = `translate(${x.toFixed(1)},${y.toFixed(1)})`;
      if (chg(e, "tf", tf)) e.g.setAttribute("transform", tf);
      const colour = plotColour(v);
      if (chg(e, "conn", v.connectivity)) e.g.dataset.connectivity = String(v.connectivity);
      const dcls = `veh f-${colour}${v.id === S.selected ? " selected" : ""}`;
      if (chg(e, "dotCls", dcls)) e.dot.setAttribute("class", dcls);
      const take = takeover.has(v.id);
      if (chg(e, "take", take)) {
        e.pulse.style.display = take ? "" : "none";
        e.g.dataset.takeover = take ? "true" : "false";
      }
      if (Number.isFinite(v.heading_deg)) {
        e.head.style.display = "";
        const rot = `rotate(${Math.round(v.heading_deg)})`;
        if (chg(e, "rot", rot)) e.head.setAttribute("transform", rot);
      } else {
        e.head.style.display = "none";
      }
      if (e.hover) vehicleTip(e);   // else written when the pointer comes (mouseenter)
    }
    let removed = false;
    for (const [id, e] of P.vehEls) {
      if (!seen.has(id)) { e.g.remove(); P.vehEls.delete(id); removed = true; }
    }
    if (added || removed) {
      const prefix = commonPrefix([...P.vehEls.keys()]);
      if (prefix !== P.prefix) { P.prefix = prefix; drawScaleBar(); placeStaticLabels(); }
      for (const e of P.vehEls.values()) e.text = null;   // labels follow the prefix
    }
    // Takeover vehicles and the selected one are drawn last, on top.
    for (const id of [...takeover, S.selected]) {
      const e = P.vehEls.get(id);
      if (e && P.vehLayer.lastChild !== e.g) P.vehLayer.append(e.g);
    }
    placeVehicleLabels(takeover);
    // Grow the plot when a vehicle drives out of it: a vehicle off the plot is a vehicle unseen.
    const B = P.bounds;
    for (const e of P.vehEls.values()) {
      if (B && (e.x < B.x0 || e.x > B.x1 || e.y < B.y0 || e.y > B.y1)) { buildPlot(); break; }
    }
  }

  // Vehicle labels, greedily, most urgent first: beside the dot (8 places), else a little
  // further out with a leader line (8 more); a label that fits nowhere is hidden and shows
  // on hover. Each label tries its previous place first, so labels do not hop between frames.
  // Nothing is measured in the page: positions are the projection, widths a canvas's.
  function placeVehicleLabels(takeover) {
    if (!P.vb) return;
    const grid = boxGrid();
    for (const b of P.staticBoxes) gridAdd(grid, b);
    for (const b of P.overlayBoxes) gridAdd(grid, b);
    const list = [];
    const r = DOT_PX + 1.5;
    const vb = P.vb, px = P.px;
    for (const [id, e] of P.vehEls) {
      const ax = (e.x - vb.x) / px, ay = (e.y - vb.y) / px;
      e.ax = ax; e.ay = ay;
      gridAdd(grid, { x0: ax - r, y0: ay - r, x1: ax + r, y1: ay + r });
      const v = S.vehicles.get(id);
      e.rank = takeover.has(id) ? -2 : id === S.selected ? -1 : v ? needRank(v, takeover) : 9;
      list.push(e);
    }
    list.sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const hgt = LABEL_PX + 3;
    for (const e of list) {
      if (e.text === null) {
        e.text = P.prefix && e.id.startsWith(P.prefix) ? e.id.slice(P.prefix.length) : e.id;
        e.label.textContent = e.text;
        e.w = textWidth(e.text, LABEL_PX, true) + 3;
        e.cands = null;
      }
      if (e.cands === null) e.cands = labelCands(e.w, hgt);
      const k = firstFit(grid, e.ax, e.ay, e.w, hgt, e.cands, e.cand);
      if (k < 0) {
        e.placed = false;
        e.cand = -1;
        if (e.hover) showHoverLabel(e); else hideLabel(e);
        continue;
      }
      const x0 = e.ax + e.cands[2 * k], y0 = e.ay + e.cands[2 * k + 1];
      gridAdd(grid, { x0, y0, x1: x0 + e.w, y1: y0 + hgt });
      e.placed = true;
      e.cand = k;
      showLabelAt(e, k);
    }
  }

  // Where a w x h label may go, its top-left from the dot's centre (px), flat: beside the dot
  // in 8 directions, then 8 more a little further out (those get a leader line).
  const NEAR_CANDS = 8;
  function labelCands(w, hgt) {
    const r = DOT_PX + 1.5, g = r + 1, d = r + 14, q = 0.72;
    return [
      g, -hgt / 2, -g - w, -hgt / 2, g * q, -g * q - hgt, g * q, g * q,
      -g * q - w, -g * q - hgt, -g * q - w, g * q, -w / 2, -g - hgt, -w / 2, g,
      d, -hgt / 2, -d - w, -hgt / 2, -w / 2, -d - hgt, -w / 2, d,
      d * q, -d * q - hgt, d * q, d * q, -d * q - w, -d * q - hgt, -d * q - w, d * q,
    ];
  }

  // Candidate k of the label, relative to the vehicle (its group is translated to the dot).
  function showLabelAt(e, k, hover = false) {
    const px = P.px, hgt = LABEL_PX + 3;
    const dx = k < 0 ? DOT_PX + 2.5 : e.cands[2 * k], dy = k < 0 ? -hgt / 2 : e.cands[2 * k + 1];
    if (chg(e, "pos", `${k}|${px}|${e.w}`)) {
      e.label.setAttribute("x", ((dx + 1.5) * px).toFixed(2));
      e.label.setAttribute("y", ((dy + hgt / 2) * px).toFixed(2));
      const leader = k >= NEAR_CANDS;
      if (leader) {
        // From the dot's edge to the nearest point of the label's box.
        const tx = Math.max(dx, Math.min(0, dx + e.w)), ty = Math.max(dy, Math.min(0, dy + hgt));
        const len = Math.hypot(tx, ty) || 1;
        const s = (DOT_PX + 1) / len;
        setProps(e.leader, { x1: (tx * s * px).toFixed(2), y1: (ty * s * px).toFixed(2),
                             x2: (tx * px).toFixed(2), y2: (ty * px).toFixed(2) });
      }
      e.leaderOn = leader;
      e.leader.style.display = leader ? "" : "none";
    }
    if (!e.shown) { e.shown = true; e.label.style.display = ""; if (e.leaderOn) e.leader.style.display = ""; }
    const cls = hover ? "veh-label hover" : "veh-label";
    if (chg(e, "lcls", cls)) e.label.setAttribute("class", cls);
  }

  function hideLabel(e) {
    if (!e.shown) return;
    e.shown = false;
    e.label.style.display = "none";
    e.leader.style.display = "none";
  }

  function showHoverLabel(e) {
    if (!P.vb) return;
    showLabelAt(e, -1, true);
  }

  // ------------------------------------------------------------------ incidents
  // Several vehicles' alerts that started together on one cell or in one junction are one
  // incident (l4mon/alerts/incidents.py): one card, one takeover cue, acknowledged as a whole.
  // Each member stays an alert of its own (resolved on its own); the hub puts the incident's
  // id on each member (`incident`), with its grouping and shared cause.

  function noteMember(a) {
    for (const [iid, m] of S.incidents) if (iid !== a.incident && m.has(a.id)) m.delete(a.id);
    if (a.incident == null) return;
    let m = S.incidents.get(a.incident);
    if (!m) S.incidents.set(a.incident, (m = new Map()));
    m.set(a.id, a);
  }

  // An incident none of whose members is open any more is over: its card goes, its members
  // stay in "Recently resolved".
  function pruneIncidents() {
    for (const [iid, m] of S.incidents) {
      let open = false;
      for (const a of m.values()) if (a.state !== "resolved") { open = true; break; }
      if (!open) S.incidents.delete(iid);
    }
  }

  // Members resolved while this page was away (or before it was loaded), from the hub.
  let incidentsLoading = false;
  async function loadIncidents() {
    if (incidentsLoading) return;
    incidentsLoading = true;
    try {
      const res = await api("GET", "/api/incidents");
      for (const g of (res && res.groups) || []) {
        if (g && g.name && !S.incidentGroups[g.name]) S.incidentGroups[g.name] = { title: g.title, by: g.by };
      }
      for (const inc of (res && res.open) || []) {
        const m = S.incidents.get(inc.id);
        if (!m) continue;
        for (const a of inc.alerts || []) if (a.state === "resolved" && !m.has(a.id)) m.set(a.id, a);
      }
      S.alertVer += 1;
      renderAlertsAndFriends();
    } catch { /* the cards stand on the open alerts alone */ } finally {
      incidentsLoading = false;
    }
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  function andList(xs) {
    return xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
  }
  // The hub's cause ("cell l5g-araya, cell lte-matsuoka-w", "intersection Araya junction") in
  // words: "cells l5g-araya and lte-matsuoka-w", "Araya junction".
  function causeWords(cause) {
    const cells = [], junctions = [], other = [];
    for (const part of String(cause ?? "").split(", ")) {
      const p = part.trim();
      if (!p) continue;
      if (p.startsWith("cell ")) cells.push(p.slice(5));
      else if (p.startsWith("intersection ")) junctions.push(ixName(p.slice(13)));
      else other.push(p);
    }
    const out = [];
    if (cells.length) out.push(`${cells.length === 1 ? "cell" : "cells"} ${andList(cells)}`);
    if (junctions.length) out.push(andList(junctions));
    out.push(...other);
    return out.length ? andList(out) : "one cause";
  }

  // What the console knows of an incident: its open members (the card), every member seen.
  function incidentSummary(iid) {
    const m = S.incidents.get(iid);
    if (!m || !m.size) return null;
    const all = [...m.values()];
    const open = all.filter((a) => a.state !== "resolved").sort(cmpAlert);
    if (!open.length) return null;
    const first = open[0];
    const group = first.incident_group ?? "";
    const g = S.incidentGroups[group];
    const vehicles = [...new Set(all.map((a) => a.vehicle).filter(Boolean))].sort();
    const openVehicles = [...new Set(open.map((a) => a.vehicle).filter(Boolean))].sort();
    let raisedAt = Infinity;
    for (const a of all) if (Number.isFinite(a.raised_at) && a.raised_at < raisedAt) raisedAt = a.raised_at;
    return {
      id: iid, group,
      title: g && g.title ? String(g.title) : group ? `Several vehicles: ${codeWords(group)}` : "Several vehicles, one cause",
      cause: String(first.incident_cause ?? ""),
      causeText: causeWords(first.incident_cause),
      open, vehicles, openVehicles,
      back: vehicles.filter((v) => !openVehicles.includes(v)),
      severity: first.severity,   // open members by severity first
      state: open.some((a) => a.state === "raised") ? "raised" : "acknowledged",
      raised_at: raisedAt,
      escalated: open.some((a) => a.escalated),
      ackedBy: [...new Set(open.map((a) => a.acknowledged_by).filter(Boolean))],
    };
  }

  // "6 vehicles lost their link on cell l5g-araya", for the takeover cue.
  function incidentPhrase(sum) {
    const n = sum.vehicles.length;
    const who = plural(n, "vehicle", "vehicles");
    switch (sum.group) {
      case "cell_outage": return `${who} lost ${n === 1 ? "its" : "their"} link on ${sum.causeText}`;
      case "intersection_trouble": return `${who} in trouble in ${sum.causeText}`;
      default: return `${who}, ${sum.causeText}: ${sum.title}`;
    }
  }

  const incidentEls = new Map();   // incident id -> its card's elements

  function makeIncidentEl(iid) {
    const e = { id: iid, members: new Map() };
    e.li = h("li", { class: "alert incident", "data-testid": `incident-${iid}` });
    e.sev = h("span", { class: "sev" });
    e.title = h("span", { class: "alert-title", "data-testid": "incident-title" });
    e.age = h("span", { class: "alert-age", "data-testid": "incident-age" });
    e.cause = h("span", { class: "inc-cause", "data-testid": "incident-cause" });
    e.count = h("span", { class: "inc-count", "data-testid": "incident-vehicles" });
    e.state = h("span", { class: "state-tag", "data-testid": "incident-state" });
    e.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "incident-escalated" });
    e.acked = h("span", { "data-testid": "incident-acked-by" });
    e.ack = h("button", { type: "button", class: "btn small primary", "data-testid": "incident-ack",
                          text: "Acknowledge incident",
                          title: "acknowledge every member of this incident at once" });
    e.error = h("span", { class: "form-error", role: "alert", "data-testid": "incident-error" });
    e.error.hidden = true;
    e.list = h("ol", { class: "inc-members", "data-testid": "incident-members" });
    e.back = h("div", { class: "inc-back", "data-testid": "incident-resolved-members" });
    e.li.append(
      h("div", { class: "alert-head" }, e.sev, e.title),
      h("div", { class: "inc-line" }, e.cause, e.count),
      h("div", { class: "alert-meta" }, e.state, e.age, e.esc, e.acked,
        h("span", { class: "alert-actions act" }, e.ack)),
      e.error, e.list, e.back,
    );
    e.ack.addEventListener("click", (ev) => { ev.stopPropagation(); acknowledgeIncident(iid, e.ack, e); });
    return e;
  }

  function updateIncidentEl(e, sum) {
    e.li.className = `alert incident sev-${sum.severity} st-${sum.state}`;
    const d = e.li.dataset;
    d.state = sum.state;
    d.severity = String(sum.severity);
    d.vehicles = String(sum.vehicles.length);
    d.group = sum.group;
    d.cause = sum.cause;
    d.escalated = sum.escalated ? "true" : "false";
    st(e.sev, String(sum.severity));
    st(e.title, `INCIDENT · ${sum.title}`);
    e.age.dataset.since = String(sum.raised_at);
    st(e.age, duration(hubNow() - sum.raised_at));
    stitle(e.age, `started ${clock(sum.raised_at)}`);
    st(e.cause, sum.causeText);
    stitle(e.cause, sum.cause ? `as the hub recorded it: ${sum.cause}` : "");
    const still = sum.openVehicles.length;
    st(e.count, plural(sum.vehicles.length, "vehicle", "vehicles") +
      (still < sum.vehicles.length ? ` · ${still} still affected` : ""));
    stitle(e.count, sum.vehicles.join(", "));
    e.state.className = `state-tag ${sum.state}`;
    st(e.state, sum.state);
    e.esc.hidden = !sum.escalated;
    st(e.acked, sum.state === "acknowledged" && sum.ackedBy.length
      ? `acknowledged by ${sum.ackedBy.join(", ")}` : "");
    e.ack.hidden = sum.state !== "raised";
    // The members, one compact line each: those still to be acknowledged first (a long list
    // scrolls), then in the queue's order.
    const ids = new Set(sum.open.map((a) => a.id));
    for (const [id, m] of e.members) if (!ids.has(id)) { m.li.remove(); e.members.delete(id); }
    const order = sum.open.slice().sort((x, y) =>
      (x.state === "raised" ? 0 : 1) - (y.state === "raised" ? 0 : 1) || cmpAlert(x, y));
    order.forEach((a, i) => {
      let m = e.members.get(a.id);
      if (!m) { m = makeMemberEl(a.id); e.members.set(a.id, m); }
      updateMemberEl(m, a);
      if (e.list.children[i] !== m.li) e.list.insertBefore(m.li, e.list.children[i] || null);
    });
    e.back.hidden = !sum.back.length;
    st(e.back, sum.back.length ? `Resolved already: ${compressIds(sum.back)}` : "");
    stitle(e.back, sum.back.length ? "members of this incident whose alerts are resolved" : "");
  }

  function makeMemberEl(id) {
    const m = { id };
    m.li = h("li", { class: "inc-member", "data-testid": `incident-member-${id}` });
    m.veh = h("span", { class: "m-veh", "data-testid": "member-vehicle" });
    m.title = h("span", { class: "m-title", "data-testid": "member-title" });
    m.state = h("span", { class: "state-tag", "data-testid": "alert-state" });
    m.esc = h("span", { class: "esc-tag", text: "ESCALATED", "data-testid": "alert-escalated" });
    m.resolve = h("button", { type: "button", class: "btn small", "data-testid": "resolve-button",
                              text: "Resolve…" });
    m.reason = h("input", { type: "text", required: true, maxlength: 500,
                            placeholder: "reason (required) — what was done?",
                            "data-testid": "reason-input", "aria-label": "reason for resolving" });
    m.confirm = h("button", { type: "submit", class: "btn small danger",
                              "data-testid": "resolve-confirm", text: "Resolve" });
    m.cancel = h("button", { type: "button", class: "btn small ghost", text: "Cancel" });
    m.form = h("form", { class: "resolve-form", "data-testid": "resolve-form", novalidate: true },
               m.reason, m.confirm, m.cancel);
    m.form.hidden = true;
    m.error = h("span", { class: "form-error", role: "alert", "data-testid": "alert-error" });
    m.error.hidden = true;
    m.li.append(
      h("div", { class: "m-row" }, h("span", { class: "m-who" }, m.veh, h("span", null, m.state, m.esc)),
        m.title, h("span", { class: "alert-actions act" }, m.resolve)),
      h("div", { class: "act" }, m.form, m.error),
    );
    m.resolve.addEventListener("click", (ev) => {
      ev.stopPropagation();
      m.form.hidden = false;
      m.resolve.hidden = true;
      m.reason.focus();
    });
    m.cancel.addEventListener("click", (ev) => {
      ev.stopPropagation();
      m.form.hidden = true;
      m.resolve.hidden = false;
      m.error.hidden = true;
    });
    m.form.addEventListener("click", (ev) => ev.stopPropagation());
    m.error.addEventListener("click", (ev) => ev.stopPropagation());
    m.form.addEventListener("submit", (ev) => { ev.preventDefault(); resolveAlert(id, m); });
    // Clicking a member shows its vehicle, as clicking an alert's vehicle does.
    m.li.addEventListener("click", (ev) => {
      const a = S.open.get(id);
      if (a && a.vehicle) { ev.stopPropagation(); select(a.vehicle); }
    });
    return m;
  }

  function updateMemberEl(m, a) {
    m.li.className = `inc-member sev-${a.severity} st-${a.state}` +
      (a.vehicle && a.vehicle === S.selected ? " selected" : "");
    const d = m.li.dataset;
    d.rule = String(a.rule);
    d.state = String(a.state);
    d.severity = String(a.severity);
    d.vehicle = a.vehicle == null ? "" : String(a.vehicle);
    d.intersection = a.intersection == null ? "" : String(a.intersection);
    d.escalated = a.escalated ? "true" : "false";
    st(m.veh, [a.vehicle, a.link].filter(Boolean).join(" · ") || where(a));
    stitle(m.veh, a.vehicle ? `show ${a.vehicle}` : "");
    st(m.title, String(a.title ?? codeWords(a.rule)));
    stitle(m.title, [a.title ?? codeWords(a.rule), a.detail ? detailWords(a.detail, a) : "",
                     `raised ${clock(a.raised_at)}`].filter(Boolean).join(" — "));
    m.state.className = `state-tag ${a.state}`;
    st(m.state, String(a.state));
    m.esc.hidden = !a.escalated;
  }

  function markSelectedMembers() {
    for (const e of incidentEls.values()) {
      for (const m of e.members.values()) {
        const a = S.open.get(m.id);
        m.li.classList.toggle("selected", Boolean(a && a.vehicle && a.vehicle === S.selected));
      }
    }
  }

  // One click acknowledges every member not yet acknowledged (each journaled as its own; each
  // also arrives as an alert frame).
  async function acknowledgeIncident(iid, button, e) {
    if (button) button.disabled = true;
    try {
      const view = await api("POST", `/api/incidents/${encodeURIComponent(iid)}/ack`, { note: "" });
      for (const a of (view && view.alerts) || []) applyOwnResult(a, false);
      renderAlertsAndFriends();
    } catch (err) {
      if (err.status === 401) return;
      const message = err.status === 409 ? "This incident is resolved already."
        : `Acknowledge failed: ${err.message}`;
      if (e) showAlertError(e, message);
      else toast(message, true);
    } finally {
      if (button) button.disabled = false;
    }
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

  // The queue: an alert on its own is a card; open alerts sharing an `incident` are ONE card
  // (the incident), most urgent first, then the oldest.
  function queueItems() {
    const items = [], seen = new Set();
    for (const a of S.open.values()) {
      if (a.incident != null) {
        if (seen.has(a.incident)) continue;
        const sum = incidentSummary(a.incident);
        if (sum) {
          seen.add(a.incident);
          items.push({ inc: sum, id: a.incident, severity: sum.severity, at: sum.raised_at });
          continue;
        }
      }
      items.push({ alert: a, id: a.id, severity: a.severity, at: a.raised_at });
    }
    return items.sort((x, y) => (SEV_RANK[x.severity] ?? 9) - (SEV_RANK[y.severity] ?? 9)
      || (x.at ?? 0) - (y.at ?? 0) || x.id - y.id);
  }

  function renderAlerts() {
    pruneIncidents();
    const items = queueItems();
    const queue = $("alert-queue");
    const singles = new Set(), incs = new Set();
    for (const it of items) (it.inc ? incs : singles).add(it.id);
    for (const [id, e] of alertEls) {
      if (!singles.has(id)) { e.li.remove(); alertEls.delete(id); S.expanded.delete(id); }
    }
    for (const [id, e] of incidentEls) {
      if (!incs.has(id)) { e.li.remove(); incidentEls.delete(id); }
    }
    for (const it of items) {
      if (it.inc) {
        let e = incidentEls.get(it.id);
        if (!e) { e = makeIncidentEl(it.id); incidentEls.set(it.id, e); }
        updateIncidentEl(e, it.inc);
      } else {
        let e = alertEls.get(it.id);
        if (!e) { e = makeAlertEl(it.id); alertEls.set(it.id, e); }
        updateAlertEl(e, it.alert);
      }
    }
    // Reorder only when the order changed: moving a node would steal the focus of a reason
    // being typed.
    const want = items.map((it) => (it.inc ? incidentEls : alertEls).get(it.id).li);
    const have = [...queue.children];
    if (want.length !== have.length || want.some((li, i) => li !== have[i])) {
      want.forEach((li, i) => { if (queue.children[i] !== li) queue.insertBefore(li, queue.children[i] || null); });
    }
    $("alert-empty").hidden = items.length > 0;
    const count = $("alert-count");
    st(count, String(items.length));
    stitle(count, incs.size ? `${S.open.size} open alerts: ${incs.size} of the cards ` +
      `${incs.size === 1 ? "is an incident" : "are incidents"} (several vehicles, one cause)` : "");
    count.classList.toggle("hot", items.some((it) => it.severity === "takeover"));
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
    st(e.detail, a.detail ? detailWords(a.detail, a) : "");
    stitle(e.detail, a.detail ? `as the hub recorded it: ${a.detail}` : "");
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
        e.error.replaceChildren(`The condition still holds (${detailWords(holds, S.open.get(id))}): resolved now, it would be ` +
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
        t.detail ? ` — ${detailWords(t.detail, S.open.get(id))}` : "",
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
            a.incident != null ? h("span", { class: "inc-note", title: String(a.incident_cause ?? ""),
                                             text: `in an incident on ${causeWords(a.incident_cause)}` }) : null,
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

  function updateCue() {
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
      text.replaceChildren(`TAKEOVER — incident: ${incidentPhrase(sum)} · `, age);
      cue.dataset.summary = `incident, ${plural(sum.vehicles.length, "vehicle", "vehicles")}`;
      stitle(text, `${sum.title} — ${sum.causeText}. Vehicles: ${sum.openVehicles.join(", ")}`);
    } else {
      // Names in the order they need a human; an incident counts once.
      const labels = [];
      const named = new Set();
      for (const en of entries) {
        if (en.inc) {
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
  function acknowledgeCue() {
    const top = cueEntries()[0];
    if (!top) return;
    if (top.inc) {
      acknowledgeIncident(top.inc.id, $("takeover-ack"), incidentEls.get(top.inc.id) || null);
      return;
    }
    const e = alertEls.get(top.alert.id);
    if (e) acknowledge(top.alert.id, e);
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
      const names = $("takeover-cue").dataset.summary || "";
      document.title = titleFlip ? `⚠ TAKEOVER ${names} ⚠` : `!!! ${names} — ${base}`;
    } else {
      const n = Number($("alert-count").textContent) || 0;   // an incident counts once
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
    renderCellOutage();
  }

  // The demo's cells (GET /api/demo `cells`), by the names the fleet table and plot show.
  function renderCellOutage() {
    const cells = ((S.demo && S.demo.cells) || []).map(String);
    $("cell-row").hidden = !cells.length;
    const sel = $("cell-select");
    if ([...sel.options].map((o) => o.value).join("|") === cells.join("|")) return;
    const keep = sel.value;
    const rat = new Map(((S.site && S.site.cells) || []).map((c) => [String(c.id), c.rat]));
    sel.replaceChildren(...cells.map((id) => h("option", {
      value: id, text: id, title: rat.has(id) ? `${ratWords(rat.get(id))} cell ${id}` : null })));
    if (cells.includes(keep)) sel.value = keep;
  }

  async function injectCellOutage() {
    const cell = $("cell-select").value;
    const duration = Number($("fault-duration").value) || 30;
    const button = $("fault-cell-outage");
    if (!cell) return;
    button.disabled = true;
    try {
      await api("POST", "/api/demo/cell-outage", { cell, duration_s: duration });
      toast(`Cell ${cell} is dark for ${duration} s: every vehicle it serves loses that link.`);
    } catch (err) {
      if (err.status !== 401) toast(`Cell outage failed: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
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
      const what = kind === "link_down" ? `Drop ${String(link).toUpperCase()}` : FAULT_LABEL[kind] ?? codeWords(kind);
      toast(`Injected “${what}”${link && kind !== "link_down" ? ` on ${link}` : ""} on ${vehicle} for ${duration} s.`);
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
    markSelectedMembers();
    renderFleet(null);
    renderPlotVehicles();
    renderVehicleSummary();
    renderCharts();
    renderDetail();
    // The fault picker follows the operator's own clicks, never an automatic selection.
    if (byHand && S.demo && demoVehicleIds().includes(id)) $("fault-vehicle").value = id;
    refreshDetailSoon();
    loadHistory();
    if (HO) HO.selected();
  }

  // The hub's points where this page has no live ones of its own (before the page was
  // loaded, or while it was disconnected); live points win where both exist.
  function mergeHistory(hist, ring) {
    const out = [];
    let j = 0;
    for (const p of hist) {
      while (j < ring.length && ring[j].t <= p.t) out.push(ring[j++]);
      const before = j > 0 ? ring[j - 1].t : -Infinity;
      const after = j < ring.length ? ring[j].t : Infinity;
      if (p.t - before > 1.5 && after - p.t > 1.5) out.push(p);
    }
    while (j < ring.length) out.push(ring[j++]);
    return out;
  }

  // The selected vehicle's last 10 minutes from the hub (GET /api/vehicles/{id}/history):
  // its points go before the live ones this page collected, so the charts show the whole
  // span, not only what happened since the page was loaded.
  async function loadHistory() {
    const id = S.selected;
    if (!id || !S.token) return;
    if (S.hist && S.hist.id === id && S.hist.state === "loading") return;
    S.hist = { id, state: "loading" };
    let d;
    try {
      d = await api("GET", `/api/vehicles/${encodeURIComponent(id)}/history`);
    } catch (err) {
      if (S.hist && S.hist.id === id) S.hist = { id, state: "failed", error: err.message };
      renderCharts();
      return;
    }
    if (id !== S.selected || !d) return;
    let rings = S.rings.get(id);
    if (!rings) S.rings.set(id, (rings = new Map()));
    let first = Infinity;
    for (const [name, c] of Object.entries(d.links || {})) {
      const ts = c.t || [];
      const hist = ts.map((t, i) => {
        const ul = c.ul_kbps ? c.ul_kbps[i] : null;
        return { t, rtt: c.rtt_p95_ms ? c.rtt_p95_ms[i] : null, ul: ul == null ? null : ul / 1000,
                 state: c.state ? c.state[i] : "unknown" };
      });
      rings.set(name, mergeHistory(hist, rings.get(name) || []));
      if (ts.length && ts[0] < first) first = ts[0];
    }
    const th = (d.thresholds && d.thresholds.rtt_p95_ms) || {};
    S.hist = { id, state: "loaded", from: Number.isFinite(first) ? first : null,
               points: Object.values(d.links || {}).reduce((n, c) => n + ((c.t || []).length), 0),
               ul_required_kbps: d.ul_required_kbps ?? null,
               rtt_degraded_ms: Number.isFinite(th.degraded) ? th.degraded : RTT_DEGRADED_MS,
               rtt_down_ms: Number.isFinite(th.down) ? th.down : RTT_DOWN_MS };
    renderVehicleSummary();
    renderCharts();
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
      pill(connClass(v.connectivity), connWords(v.connectivity, v)),
      v.unseen ? h("span", { class: "unseen", text: `state unknown: ${v.unseen}` }) : null,
      h("span", { text: modeWords(v.mode) }),
      h("span", { class: v.telemetry === "fresh" ? "" : "pill stale" },
        `telemetry ${codeWords(v.telemetry)} `, ageSpan(v.age_s, v._rx, 1), " s"),
      S.hist && S.hist.id === v.id && S.hist.state === "loaded"
        ? h("span", { class: "muted", "data-testid": "vehicle-ul-required",
                      text: S.hist.ul_required_kbps ? `uplink needs ${fmt(S.hist.ul_required_kbps / 1000, 1)} Mbit/s`
                        : "no uplink requirement" }) : null,
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
        h("b", { text: name }), " ", pill(`s-${l.state}`, stateWords(l.state)),
        l.state_since ? h("span", { class: "muted", text: ` since ${clock(l.state_since)}` }) : null,
        l.reasons && l.reasons.length ? h("div", { "data-testid": "link-reasons",
                                                   text: `why: ${reasonsWords(l)}` }) : null,
        h("div", { text: `RTT 10 s p50/p95/p99 ${fmt(w10.rtt_p50_ms, 0)}/${fmt(w10.rtt_p95_ms, 0)}/` +
                         `${fmt(w10.rtt_p99_ms, 0)} ms, jitter ${fmt(w10.rtt_jitter_ms, 1)} ms` }),
        h("div", { text: `RTT 60 s p95 ${fmt(w60.rtt_p95_ms, 0)} ms · loss 60 s ` +
                         `${w60.loss_ratio == null ? "–" : fmt(w60.loss_ratio * 100, 2)} %` }),
        h("div", { text: `seq lost ${seq.lost ?? "–"} of ${seq.received ?? "–"} · ` +
                         `cell changes ${l.cell_changes ?? "–"}` +
                         (l.clock_suspect ? " · CLOCK SUSPECT: delay figures not trusted" : "") }));
    }));
    const evs = (d.events || []).slice(0, 30);
    events.replaceChildren(...(evs.length ? evs.map((ev) => h("li", null,
      h("span", { class: "mono", text: clock(ev.received_at) }),
      h("span", { text: codeWords(ev.kind), title: String(ev.kind) }),
      h("span", { class: "muted",
                  text: ev.detail == null ? "" : typeof ev.detail === "string" ? detailWords(ev.detail)
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
    const hist = S.hist && S.hist.id === S.selected && S.hist.state === "loaded" ? S.hist : null;
    const deg = hist ? hist.rtt_degraded_ms : RTT_DEGRADED_MS;
    const down = hist ? hist.rtt_down_ms : RTT_DOWN_MS;
    drawChart($("chart-rtt"), series("rtt"), {
      log: true, floor: 10, unit: "ms",
      lines: [{ value: deg, cls: "th-degraded", kind: "rtt_degraded", label: `degraded > ${fmt(deg, 0)} ms` },
              { value: down, cls: "th-down", kind: "rtt_down", label: `down > ${fmt(down, 0)} ms` }],
    });
    const ul = series("ul");
    if (names.length > 1) {
      ul.push({ name: "Σ usable", points: usableTotal(names.map((n) => rings.get(n))), key: "ul",
                total: true });
    }
    const req = hist && hist.ul_required_kbps ? hist.ul_required_kbps / 1000 : null;
    drawChart($("chart-ul"), ul, {
      floor: 1, unit: "Mbit/s",
      lines: req ? [{ value: req, cls: "th-req", kind: "ul_required",
                      label: `vehicle needs ${fmt(req, 1)} Mbit/s` }] : [],
    });
  }

  // The uplink the vehicle's usable links (ok or degraded) carry together, at each moment
  // both were sampled: what the uplink requirement is judged against (docs/alerts.md).
  function usableTotal(rings) {
    const t0 = hubNow() - CHART_SPAN_S - 5;
    const at = new Map();
    for (const ring of rings) {
      for (const p of ring) {
        if (p.t < t0) continue;
        let s = at.get(p.t);
        if (!s) at.set(p.t, (s = { t: p.t, ul: 0, state: "ok" }));
        if (p.state !== "ok" && p.state !== "degraded") continue;   // not usable: adds nothing
        s.ul = Number.isFinite(p.ul) && s.ul !== null ? s.ul + p.ul : null;   // unknown stays so
      }
    }
    return [...at.values()].sort((a, b) => a.t - b.t);
  }

  // 1-2-5 steps: the round value at or above (up) / at or below (down) v.
  function round125(v, up) {
    const p = 10 ** Math.floor(Math.log10(v));
    const steps = up ? [1, 2, 5, 10] : [10, 5, 2, 1];
    for (const m of steps) if (up ? m * p >= v - 1e-9 : m * p <= v + 1e-9) return m * p;
    return up ? 10 * p : p;
  }

  // Chart sizes from a ResizeObserver: reading clientWidth once a second would force a layout
  // of the whole page (100 table rows) just to draw two charts.
  const chartSize = new Map();
  function drawChart(el, list, opts) {
    let size = chartSize.get(el);
    if (!size) chartSize.set(el, (size = { w: el.clientWidth || 300, h: el.clientHeight || 130 }));
    const W = size.w || 300, H = size.h || 130;
    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const banded = list.filter((s) => !s.total);
    const L = 34, R = 8, T = 6, bandH = 3, B = 16 + banded.length * (bandH + 1);
    const pw = W - L - R, ph = H - T - B;
    const t1 = hubNow(), t0 = t1 - CHART_SPAN_S;
    let max = opts.floor, min = Infinity, first = Infinity, count = 0;
    for (const s of list) for (const p of s.points) {
      const v = p[s.key];
      if (p.t < t0 || !Number.isFinite(v)) continue;
      if (v > max) max = v;
      if (v > 0 && v < min) min = v;
      if (!s.total) { count += 1; if (p.t < first) first = p.t; }
    }
    const kids = [];
    let Y;
    if (opts.log) {
      // Latency on a log axis: 20 ms and 80 ms stay apart, and the 1 s "down" line still fits.
      for (const l of opts.lines) max = Math.max(max, l.value * 1.5);
      const lo = round125(Math.min(opts.floor, min), false), hi = round125(max, true);
      const span = Math.log10(hi) - Math.log10(lo);
      Y = (v) => T + ph - ((Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / span) * ph;
      const ticks = [];
      for (let d = lo; d <= hi * 1.001; d = round125(d * 1.01, true)) ticks.push(d);
      const shown = ticks.length > 7 ? ticks.filter((d) => Math.abs(Math.log10(d) % 1) < 1e-6) : ticks;
      for (const v of shown) {
        kids.push(svg("line", { class: "grid-line", x1: L, x2: L + pw, y1: Y(v), y2: Y(v) }));
        kids.push(svg("text", { class: "axis-text", x: L - 4, y: Y(v) + 3, "text-anchor": "end",
                                text: fmt(v, 0) }));
      }
    } else {
      for (const l of opts.lines) max = Math.max(max, l.value * 1.15);
      let ticks;
      [max, ticks] = niceScale(max * 1.05);
      Y = (v) => T + ph - (Math.min(Math.max(v, 0), max) / max) * ph;
      for (let i = 0; i <= ticks; i += 1) {
        const v = (max * i) / ticks, y = Y(v);
        kids.push(svg("line", { class: "grid-line", x1: L, x2: L + pw, y1: y, y2: y }));
        kids.push(svg("text", { class: "axis-text", x: L - 4, y: y + 3, "text-anchor": "end",
                                text: fmt(v, Number.isInteger(v) ? 0 : 1) }));
      }
    }
    const X = (t) => L + ((t - t0) / CHART_SPAN_S) * pw;
    const step = pw >= 380 ? 120 : 300;   // a label every 2 min where they fit, else 5
    for (let s = 0; s <= CHART_SPAN_S; s += step) {
      const x = X(t1 - s);
      kids.push(svg("line", { class: "grid-line", x1: x, x2: x, y1: T, y2: T + ph }));
      kids.push(svg("text", { class: "axis-text", x, y: H - 3,
                              "text-anchor": s === 0 ? "end" : s === CHART_SPAN_S ? "start" : "middle",
                              text: s === 0 ? "now" : `−${s / 60} min` }));
    }
    list.forEach((s, i) => {
      const cls = s.total ? "series-total" : `series-${i}`;
      // Gaps: a missing figure, or no figure for a while, breaks the line.
      let run = [];
      const flush = () => {
        if (run.length > 1) kids.push(svg("polyline", { class: cls, points: run.join(" ") }));
        else if (run.length === 1) {
          const [x, y] = run[0].split(",");
          kids.push(svg("circle", { class: s.total ? "key-total" : `key-${i}`, cx: x, cy: y, r: 1.5 }));
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
    });
    // State bands under the plot, one per link: ok / degraded / down / no data, as runs.
    banded.forEach((s, i) => {
      const by = T + ph + 3 + i * (bandH + 1);
      const pts = s.points.filter((p) => p.t >= t0 - 5);
      let a = null, state = null, last = null;
      const emit = (end) => {
        if (a !== null && end > a) {
          kids.push(svg("rect", { class: `band-${state}`, x: X(a), y: by,
                                  width: Math.max(0.5, X(end) - X(a)), height: bandH }));
        }
      };
      for (const p of pts) {
        const t = Math.max(p.t, t0);
        if (a === null) { a = t; state = p.state; last = p.t; continue; }
        if (p.t - last > 5) { emit(last); a = t; state = p.state; }
        else if (p.state !== state) { emit(t); a = t; state = p.state; }
        last = p.t;
      }
      if (a !== null) emit(t1 - last <= 5 ? t1 : last);
    });
    // Threshold and requirement lines, labelled, above the data.
    for (const l of opts.lines) {
      const y = Y(l.value);
      const g = svg("g", { class: `thresh ${l.cls}`, "data-testid": "chart-threshold" },
        svg("line", { x1: L, x2: L + pw, y1: y, y2: y }),
        svg("text", { class: "thresh-label", x: L + 4, y: y - 3, text: l.label }));
      g.dataset.kind = l.kind;
      g.dataset.value = String(l.value);
      kids.push(g);
    }
    // Keys, right-aligned at the top.
    let kx = L + pw - 4;
    for (let i = list.length - 1; i >= 0; i -= 1) {
      const s = list[i];
      const tw = textWidth(s.name, 10, false);
      kx -= tw;
      kids.push(svg("text", { class: "axis-text key-text", x: kx, y: T + 10, text: s.name }));
      kx -= 11;
      kids.push(svg("rect", { class: s.total ? "key-total" : `key-${i}`, x: kx, y: T + 2,
                              width: 8, height: 8 }));
      kx -= 8;
    }
    if (!count) {
      const loading = S.hist && S.hist.id === S.selected && S.hist.state === "loading";
      kids.push(svg("text", { class: "axis-text", x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle",
                              text: !S.selected ? "no vehicle selected"
                                : loading ? "loading the last 10 min…" : "waiting for live figures…" }));
    }
    el.replaceChildren(...kids);
    el.dataset.vehicle = S.selected || "";
    el.dataset.points = String(count);
    if (Number.isFinite(first)) el.dataset.firstT = String(first); else delete el.dataset.firstT;
  }

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
    setInterval(() => { tickTexts(); renderCharts(); renderPerf(); if (HO) HO.tick(); }, CHART_EVERY_MS);
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
