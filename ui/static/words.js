// Operator words: what the console says for the hub's codes (link states, modes, reasons,
// alert details).

import { CONN_LABEL } from "./constants.js";
import { fmt } from "./dom.js";
import { S } from "./store.js";

// Operator words for the hub's codes (the codes stay in tooltips and data-* attributes).
const LINK_STATE_WORD = { ok: "ok", degraded: "degraded", down: "down", stale: "no data",
                          unknown: "unknown" };
const MODE_WORD = { autonomous: "autonomous", mrm: "minimal risk manoeuvre",
                    remote: "remote driving", manual: "manual", stopped: "stopped" };
const RAT_WORD = { nr: "5G", lte: "LTE", umts: "3G", gsm: "2G", none: "none" };
const CODE_WORD = {
  takeover_request: "takeover request", all_links_down: "no usable link",
  one_link_down: "a link down", in_service: "in service", out_of_service: "out of service", no_service: "no service", no_probe_answer: "no probe answer",
  no_sample: "no sample", ping_pong: "ping-pong", too_frequent: "too frequent",
  clock_skew: "clock skew", telemetry_stall: "telemetry stall", rtt_spike: "RTT spike",
  bandwidth_cap: "uplink cap", link_down: "link down", both_links_down: "both links down",
};

// Link maps and look-ahead (linkmap-layer.js, vehicle-panel.js): links, conditions, measures.
const LINK_WORD = { l5g: "Local 5G", lte: "LTE" };
const WEATHER_WORD = { clear: "clear", cloudy: "cloudy", rain: "rain", snow: "snow", fog: "fog" };
const LIGHT_WORD = { daylight: "daylight", dusk: "dusk", night: "night" };
// What failing a pass means for the map's measure (telemetry/linkmap/outlook.py measure_words).
const MEASURE_WORD = { unfit: "down or short of uplink", impaired: "impaired, down or short of uplink",
                       down: "down", ul_short: "short of uplink" };

export const codeWords = (c) => (c == null ? "?" : CODE_WORD[c] ?? String(c).replaceAll("_", " "));
// A vehicle's connectivity in words that fit one to four links, as the hub's alert titles:
// "its only link down", "both links down", "all 3 links down", "1 of 3 links down".
export function connWords(c, v) {
  const n = v && v.links ? Object.keys(v.links).length : 0;
  if (c === "all_links_down" && n) {
    return n === 1 ? "its only link down" : n === 2 ? "both links down" : `all ${n} links down`;
  }
  if (c === "one_link_down" && n > 2) {
    const down = Object.values(v.links).filter((l) => l.state === "down" || l.state === "stale").length;
    return `${down} of ${n} links down`;
  }
  return CONN_LABEL[c] ?? codeWords(c);
}
// "out of service since 18:02: end of shift"; null for a vehicle in service (or that never said).
export function serviceWords(v) {
  const s = v && v.service;
  if (!s || s.status !== "out_of_service") return null;
  const since = s.since ? ` since ${new Date(s.since * 1000).toLocaleTimeString()}` : "";
  return `out of service${since}${s.reason ? `: ${s.reason}` : ""}`;
}
export const linkWords = (l) => (l == null ? "?" : LINK_WORD[l] ?? String(l));
// "snow, daylight"; what is not known is left out ("night"), unless nothing is.
export function conditionWords(weather, light) {
  const w = weather === "unknown" ? null : WEATHER_WORD[weather] ?? codeWords(weather);
  const l = light === "unknown" ? null : LIGHT_WORD[light] ?? codeWords(light);
  return w && l ? `${w}, ${l}` : w || l || "condition unknown";
}
export const measureWords = (m) => MEASURE_WORD[m] ?? codeWords(m);

// One link's outlook from the vehicle brief's `ahead` (l4mon/views.py ahead_brief), in words:
// "Local 5G: weak stretch in 12 s, 4 of 5 past passes".
export function outlookWords(link, a) {
  const name = linkWords(link);
  if (!a) return `${name}: outlook unknown`;
  if (!a.weak) return `${name}: ${a.mapped ? "no weak stretch ahead" : "not mapped ahead"}`;
  const failed = Number.isFinite(a.share) && Number.isFinite(a.passes)
    ? Math.round(a.share * a.passes) : null;
  const when = !Number.isFinite(a.in_s) || a.in_s <= 0 ? "here" : `in ${Math.round(a.in_s)} s`;
  const passes = failed === null ? "" : `, ${failed} of ${a.passes} past passes`;
  return `${name}: weak stretch ${when}${passes}${a.pooled ? " (all conditions pooled)" : ""}`;
}

export const stateWords = (s) => LINK_STATE_WORD[s] ?? codeWords(s);
export const modeWords = (m) => (m == null ? "mode unknown" : MODE_WORD[m] ?? codeWords(m));
export const ratWords = (r) => (r == null ? "–" : RAT_WORD[r] ?? String(r).toUpperCase());
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
export const reasonsWords = (l) => (l && l.reasons && l.reasons.length
  ? l.reasons.map((r) => reasonWords(r, l)).join(", ") : "");

// An alert's detail as the hub wrote it ("connectivity=all_links_down", "state=degraded,
// rtt_p95_ms=182.3", "takeover_request: ...") in words; anything else unchanged.
export function detailWords(detail, a) {
  const text = String(detail ?? "");
  const pairs = /^\s*[a-z_0-9]+=[^,=]+(,\s*[a-z_0-9]+=[^,=]+)*\s*$/.test(text)
    ? text.split(",").map((p) => p.trim().split("=")) : null;
  if (!pairs && a && a.rule === "weak_link_ahead") {
    // "l5g weak in 13 s (81 m ahead): ... (under snow/daylight); ..." (outlook.py describe)
    return text.replace(/^(\S+) weak\b/, (m, l) => `${linkWords(l)} weak`)
      .replace(/\bunder ([a-z_]+)\/([a-z_]+)/, (m, w, l) => `in ${conditionWords(w, l)}`);
  }
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
export function compressIds(ids) {
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
