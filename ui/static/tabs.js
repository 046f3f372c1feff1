// The table panel's tabs (Fleet, Intersections, History): which views each shows, and who is
// told when one is opened. Views only: the modules behind each tab load their own data.

import { $ } from "./dom.js";

// Tab name -> [its button, the elements it shows].
const TABS = {
  fleet: ["tab-fleet", ["fleet-filter", "fleet-view"]],
  ix: ["tab-ix", ["ix-view"]],
  history: ["tab-history", ["history-view"]],
};
const opened = new Map();   // tab name -> what to do when it is opened
let current = "fleet";

export const currentTab = () => current;

export function showTab(which) {
  if (!(which in TABS)) return;
  current = which;
  for (const [name, [button, views]] of Object.entries(TABS)) {
    for (const id of views) $(id).hidden = name !== which;
    $(button).setAttribute("aria-selected", name === which ? "true" : "false");
  }
  const then = opened.get(which);
  if (then) then();
}

// Each tab's button opens it; `then` runs whenever it is opened.
export function installTab(which, then) {
  if (then) opened.set(which, then);
  $(TABS[which][0]).addEventListener("click", () => showTab(which));
}
