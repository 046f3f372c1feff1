// Sign-in and sign-out: the token from the URL fragment or the login form, and what
// starts when a session begins.

import { loadResolved } from "./alerts.js";
import { api } from "./api.js";
import { TOKEN_KEY } from "./constants.js";
import { loadDemo } from "./demo-panel.js";
import { $, h } from "./dom.js";
import { applyDuty, renderDuty } from "./duty.js";
import { handovers } from "./handovers.js";
import { linkmap } from "./linkmap-layer.js";
import { layoutPlot, loadSite } from "./site-plot.js";
import { connect, dropSocket } from "./socket.js";
import { S } from "./store.js";

export function readFragmentToken() {
  const m = /(?:^#|[#&])token=([^&]*)/.exec(location.hash);
  if (!m) return;
  const token = decodeURIComponent(m[1]);
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
}

export function showLogin(message) {
  document.body.classList.add("no-auth");
  $("app").hidden = true;
  $("login").hidden = false;
  const msg = $("login-message");
  msg.hidden = !message;
  msg.textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

export function signOut(message) {
  S.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  dropSocket();
  clearTimeout(S.reconnectTimer);
  S.reconnectTimer = null;
  clearInterval(S.detailTimer);
  S.detailTimer = null;
  S.me = null;
  handovers.stop();
  linkmap.stop();
  showLogin(message);
}

export async function start() {
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
  handovers.start();
  linkmap.start();
}

export async function loadMe() {
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
