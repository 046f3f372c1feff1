// Who is signed in (GET /api/me): their name and role, asked again while the hub is away.

import { api } from "./api.js";
import { S, announce } from "./store.js";

// False when the hub refused the token (the page signs out); true otherwise.
export async function loadMe() {
  try {
    S.me = await api("GET", "/api/me");
  } catch (err) {
    if (err.status === 401) return false;
    // The hub may simply be down: stay on the console (it shows "not live") and retry.
    setTimeout(() => { if (S.token && !S.me) loadMe(); }, 2000);
    return true;
  }
  announce("me");
  return true;
}
