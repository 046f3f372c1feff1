// DOM helpers: element builders, writes that touch the DOM only when something changed, text
// measuring, number and time formatting, toasts. Server strings reach the page only as text
// (textContent or text nodes), never as HTML.

import { CONN_LABEL } from "./constants.js";
import { S } from "./store.js";

export const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

export function setProps(e, props) {
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
export function h(tag, props, ...kids) {
  const e = document.createElement(tag);
  setProps(e, props);
  appendKids(e, kids);
  return e;
}
export function svg(tag, props, ...kids) {
  const e = document.createElementNS(SVG_NS, tag);
  setProps(e, props);
  appendKids(e, kids);
  return e;
}

export const fmt = (v, digits) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);

export function duration(s) {
  if (!Number.isFinite(s)) return "–";
  s = Math.max(0, Math.floor(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} m`;
}
// One formatter for every time shown: toLocaleTimeString builds a new one per call, which
// showed at the top of the console's profile once a link map kept dozens of alerts open.
const TIME = new Intl.DateTimeFormat([], { hour: "numeric", minute: "numeric", second: "numeric",
                                           hour12: false });
export function clock(epoch) {
  if (!Number.isFinite(epoch)) return "–";
  return TIME.format(new Date((epoch - S.hubOffset) * 1000));
}
export function pill(cls, text, title) { return h("span", { class: `pill ${cls}`, text, title }); }
export function connClass(c) { return `c-${c in CONN_LABEL ? c : "unknown"}`; }

// Toasts live in their own strip at the foot of the screen, newest first, one line each
// (the whole message in the tooltip): they never cover the plot, alerts, table or charts.
const TOASTS_MAX = 4;
export function toast(message, isError) {
  const t = h("div", { class: isError ? "toast err" : "toast", role: "status",
                       "data-testid": "toast", title: message, text: message });
  const box = $("toasts");
  box.prepend(t);
  while (box.children.length > TOASTS_MAX) box.lastElementChild.remove();
  setTimeout(() => t.remove(), isError ? 10000 : 5000);
}

export const ageEls = new Set();   // age figures that tick between frames (tickTexts)

// Updates that touch the DOM only when something changed. The last value lives in plain JS
// objects (row and mark records), never as expando properties on DOM nodes.
export function chg(o, k, v) { if (o[k] === v) return false; o[k] = v; return true; }
// A text that is often rewritten: one Text node, its `data` replaced when the text changed.
export class Field {
  constructor(el, text = "") { this.v = text; this.node = document.createTextNode(text); el.append(this.node); }
  set(text) { if (text !== this.v) { this.v = text; this.node.data = text; } }
}
// An age that ticks between frames (tickTexts): the hub's figure plus local time since.
export class AgeField extends Field {
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
export function st(e, text) { if (e.textContent !== text) e.textContent = text; }
export function stitle(e, title) { if (e.title !== title) e.title = title; }
export function shide(e, hidden) { if (e.hidden !== hidden) e.hidden = hidden; }

// ---- text widths without touching the layout: a canvas measures them, once per string
const textWidths = new Map();
let measureCtx = null;
export function textWidth(text, px, bold) {
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

// An age figure that ticks between frames (console.js tickTexts).
export function ageSpan(base, rx, digits) {
  const e = h("span", { text: fmt(base, digits) });
  if (base !== null && base !== undefined) {
    e.dataset.ageBase = String(base);
    e.dataset.ageRx = String(rx);
    e.dataset.ageDigits = String(digits);
  }
  return e;
}
