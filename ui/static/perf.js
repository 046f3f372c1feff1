// The console's own cost per state frame, for the status bar and bench/console_frames.py.

import { PERF_KEEP } from "./constants.js";
import { $, fmt } from "./dom.js";
import { S } from "./store.js";

// The console's own cost: parse + apply of each state frame (performance.now(), ms), kept
// for the last PERF_KEEP frames; bench/console_frames.py reads window.l4monPerf().
export function notePerf(ms) {
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
export function renderPerf() {
  const e = $("perf");
  if (!e) return;
  const p95 = perfP95();
  e.textContent = p95 === null ? "" : `console: state frame ${fmt(p95, 1)} ms p95`;
  e.title = "time this page takes to apply one state frame (parse and update), 95th " +
    "percentile of the last 120 frames";
}
