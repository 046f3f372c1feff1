// Timings, limits and ranks the console's modules share.

export const TOKEN_KEY = "l4mon.token";
export const SOUND_KEY = "l4mon.sound";
export const PING_EVERY_MS = 2000;
export const DEAD_AFTER_MS = 3000;        // no frame for this long: the screen is not live
export const FORCE_RECONNECT_MS = 6000;   // ...and for this long: drop the socket and dial again
export const HANDSHAKE_TIMEOUT_MS = 5000; // a hub that accepts TCP but never answers the upgrade
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 5000;
export const CHART_SPAN_S = 600;          // the charts: the last 10 min (the hub's history, then live)
export const CHART_EVERY_MS = 1000;       // charts redraw once a second, not on every state frame
export const RING_KEEP_S = 130;           // live points kept per link of a vehicle not selected...
export const RING_KEEP_SELECTED_S = 610;  // ...and of the selected one
export const RING_MAX = 1400;
export const PERF_KEEP = 600;             // state-frame apply times kept (Performance API, ms)
// Link RTT thresholds of the hub's verdicts ([links] in the hub config); the history
// response carries the hub's own, these are the defaults until it has answered.
export const RTT_DEGRADED_MS = 150;
export const RTT_DOWN_MS = 1000;
export const DETAIL_REFRESH_MS = 3000;
export const RESOLVED_KEEP = 30;
export const SEV_RANK = { takeover: 0, warning: 1, info: 2 };
export const STATE_RANK = { raised: 0, acknowledged: 1, resolved: 2 };
export const CONN_LABEL = {
  ok: "ok", degraded: "degraded", one_link_down: "a link down",
  all_links_down: "no usable link", unknown: "unknown", out_of_service: "out of service",
};
// Who needs a human first: the fleet table's order (then by id, so it never jumps). Vehicles
// out of service come last, apart: nothing is expected of them.
export const NEED_RANK = { all_links_down: 1, one_link_down: 2, degraded: 3, unknown: 4, ok: 5,
                           out_of_service: 9 };
export const NEED_TAKEOVER = 0;
