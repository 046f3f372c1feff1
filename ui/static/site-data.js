// The site's geometry from the hub (GET /api/site), or null when it has none; retried while
// the hub cannot answer. Announced so the plot is built for it.

import { api } from "./api.js";
import { S, announce } from "./store.js";

export async function loadSite() {
  try {
    S.site = await api("GET", "/api/site");
  } catch (err) {
    if (err.status === 401) return;
    S.site = null;
    if (err.status !== 404) setTimeout(loadSite, 5000);
  }
  announce("site");
}
