// Sign-in and sign-out: the token from the URL fragment or the login form, and what
// starts when a session begins.

import { loadResolved } from "./alert-actions.js";
import { TOKEN_KEY } from "./constants.js";
import { loadDemo } from "./demo-actions.js";
import { $ } from "./dom.js";
import { loadDuty } from "./duty-actions.js";
import { startHandovers, stopHandovers } from "./handover-data.js";
import { startLinkmap, stopLinkmap } from "./linkmap-data.js";
import { loadMe } from "./me.js";
import { loadSite } from "./site-data.js";
import { connect, dropSocket } from "./socket.js";
import { S, announce } from "./store.js";

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
  stopHandovers();
  stopLinkmap();
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
  loadDuty().catch(() => {});
  announce("shown");   // the plot can size itself now that the page is visible
  startHandovers();
  startLinkmap();
}
