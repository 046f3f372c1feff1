// The link map from the hub (GET /api/linkmap) for the plot's layer: which link and
// condition is asked for, loaded again when "now" drifts; announced when it came or went
// (linkmap-layer.js draws it).

import { api } from "./api.js";
import { S, announce } from "./store.js";

const RETRY_MS = 10000;        // the hub did not answer: try again
const DRIFT_CHECK_MS = 30000;  // "now" moved (dusk fell): reload at most this often

export const LMD = {
  status: "unknown",   // unknown | loading | none (404: no map) | loaded | error
  data: null,          // the last GET /api/linkmap
  link: null,          // asked for (null: the hub's default)
  cond: "",            // "" = the hub's current condition, else "weather/light"
  retry: null,
  lastDrift: 0,
  driftTo: null,       // the vehicles' condition the last reload for "now" was for
  seq: 0,              // answers to an older request are dropped
};

export const hasMap = () => LMD.status === "loaded";

export async function loadLinkmap() {
  clearTimeout(LMD.retry);
  if (!S.token) return;
  const seq = (LMD.seq += 1);
  const q = new URLSearchParams();
  if (LMD.link) q.set("link", LMD.link);
  if (LMD.cond) {
    const [weather, light] = LMD.cond.split("/");
    q.set("weather", weather);
    q.set("light", light);
  }
  if (LMD.status !== "loaded") LMD.status = "loading";
  let d;
  try {
    d = await api("GET", `/api/linkmap${q.toString() ? `?${q}` : ""}`);
  } catch (err) {
    if (seq !== LMD.seq || err.status === 401) return;
    if (err.status === 404) {           // this hub has no map: nothing to show, no control
      LMD.status = "none";
      LMD.data = null;
      announce("linkmap");
      return;
    }
    if (err.status === 400 && (LMD.link || LMD.cond)) {   // a new hub's map lacks the choice
      LMD.link = null;
      LMD.cond = "";
      loadLinkmap();
      return;
    }
    if (LMD.status !== "loaded") LMD.status = "error";
    LMD.retry = setTimeout(loadLinkmap, RETRY_MS);
    return;
  }
  if (seq !== LMD.seq || !d) return;
  LMD.data = d;
  LMD.status = "loaded";
  LMD.link = d.link;
  announce("linkmap");
}

export function chooseLink(link) { LMD.link = link; loadLinkmap(); }
export function chooseCondition(cond) { LMD.cond = cond; loadLinkmap(); }

// The vehicles' condition moved away from the map's "now" (dusk fell): reload, not too often.
export function followDrift(drift) {
  if (drift !== LMD.driftTo && LMD.status === "loaded" && Date.now() - LMD.lastDrift > DRIFT_CHECK_MS) {
    LMD.lastDrift = Date.now();
    LMD.driftTo = drift;
    loadLinkmap();
  }
}

export function startLinkmap() { LMD.status = "unknown"; LMD.link = null; LMD.cond = ""; loadLinkmap(); }

export function stopLinkmap() {
  clearTimeout(LMD.retry);
  LMD.seq += 1;
  LMD.status = "unknown";
  LMD.data = null;
  announce("linkmap");
}

// A snapshot: perhaps a new hub (and map). The hub caches the layer; redrawn only if changed.
export function linkmapSnapshot() { if (LMD.status !== "loading" && LMD.status !== "unknown") loadLinkmap(); }
