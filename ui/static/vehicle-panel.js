// The selected vehicle's panel: its summary, the road ahead, its links and events (choosing
// and loading it: selection.js).

import { $, ageSpan, clock, connClass, fmt, h, pill } from "./dom.js";
import { coverOf } from "./fleet-query.js";
import { hasMap } from "./linkmap-data.js";
import { S } from "./store.js";
import { codeWords, connWords, detailWords, linkWords, modeWords, outlookWords, reasonsWords,
         serviceWords, stateWords } from "./words.js";

export function renderVehicleSummary() {
  const id = S.selected;
  const v = id && S.vehicles.get(id);
  const title = $("vp-title");
  renderOutlook(v);
  if (!v) {
    title.replaceChildren("Vehicle ", h("span", { class: "muted", text: "— click one in the table or plot" }));
    $("vp-summary").replaceChildren();
    return;
  }
  title.replaceChildren(`Vehicle ${v.id}`);
  title.dataset.vehicle = v.id;
  const cover = coverOf(v.id);
  $("vp-summary").replaceChildren(...[   // replaceChildren would print a null as "null"
    serviceWords(v)
      ? pill("c-out_of_service", "out of service", serviceWords(v))
      : pill(connClass(v.connectivity), connWords(v.connectivity, v)),
    serviceWords(v) ? h("span", { class: "muted", "data-testid": "vehicle-service",
                                  text: serviceWords(v) }) : null,
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

// What the link map says of the road ahead, one line per link, in words; the brief's figures
// in the tooltip. Rewritten only when its words or figures changed (this runs on every state
// frame of the selected vehicle). Hidden while the hub has no map.
const outlook = { key: null };
function renderOutlook(v) {
  const box = $("vp-ahead");
  const show = Boolean(v) && (hasMap() || Boolean(v.ahead));
  if (box.hidden === show) box.hidden = !show;
  if (!show) { outlook.key = null; return; }
  const ahead = v.ahead;
  const lines = ahead
    ? Object.keys(ahead).sort().map((link) => {
      const a = ahead[link];
      const raw = a ? Object.entries(a).map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(",") : x}`).join(" ") : "";
      return { link, weak: Boolean(a && a.weak), text: outlookWords(link, a), tip: `${link}: ${raw}` };
    })
    : [{ link: "", weak: false, text: "Link map: no recent position, the road ahead is unknown",
         tip: "the vehicle's position is unknown or older than 3 s" }];
  const key = `${v.id}|${lines.map((l) => `${l.text}|${l.tip}`).join("|")}`;
  if (key === outlook.key) return;
  outlook.key = key;
  box.dataset.vehicle = v.id;
  box.replaceChildren(
    h("span", { class: "vp-ahead-head", text: "Road ahead",
                title: "what past drives on the link map say of the next stretch, per link" }),
    ...lines.map((l) => h("span", {
      class: `vp-ahead-line${l.weak ? " weak" : ""}`, title: l.tip, "data-link": l.link,
      "data-weak": l.weak ? "true" : "false", "aria-label": l.link ? `${linkWords(l.link)} outlook` : null,
      text: l.text })));
}

export function renderDetail() {
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
