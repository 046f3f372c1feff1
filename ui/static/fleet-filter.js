// The fleet table's filter bar: the operator's id text, site and link choices, and the counts
// per state (buttons that filter by their state). Input writes the filter to the store
// (setFleetFilter); the table, its counts and the duty choice are then drawn from it.

import { $, h } from "./dom.js";
import { FLEET_STATES, STATE_LABEL, fleetChoices } from "./fleet-query.js";
import { S, announce, setFleetFilter } from "./store.js";
import { linkWords } from "./words.js";

function changed(patch) {
  setFleetFilter(patch);
  announce("filter");
}

export function installFleetFilter() {
  $("state-counts").replaceChildren(...FLEET_STATES.map((k) => {
    const b = h("button", { type: "button", id: `state-count-${k}`, class: `sc c-${k}`,
                            "data-testid": `state-count-${k}`, "data-state": k, "aria-pressed": "false",
                            title: `show only the vehicles: ${STATE_LABEL[k]} (again: all)` },
                h("span", { class: "n", text: "0" }), ` ${STATE_LABEL[k]}`);
    b.addEventListener("click", () => changed({ state: S.fleetFilter.state === k ? "" : k }));
    return b;
  }));
  $("fleet-search").addEventListener("input", (ev) => changed({ text: ev.target.value.trim() }));
  $("fleet-site").addEventListener("change", (ev) => changed({ site: ev.target.value }));
  $("fleet-link").addEventListener("change", (ev) => changed({ link: ev.target.value }));
  $("fleet-clear").addEventListener("click", () => {
    $("fleet-search").value = "";
    changed({ text: "", state: "", site: "", link: "" });
    renderFilterChoices();
  });
  renderFilterChoices();
}

// The site and link choices follow the fleet (a snapshot may bring other sites or links).
export function renderFilterChoices() {
  const { sites, links } = fleetChoices();
  const f = S.fleetFilter;
  fillSelect($("fleet-site"), [["", sites.length > 1 ? "every site" : "site: all"],
    ...sites.map((x) => [x, `site ${x}`])], f.site);
  fillSelect($("fleet-link"), [["", "any link"],
    ...links.map((x) => [x, `${linkWords(x)} not ok`])], f.link);
}

function fillSelect(sel, options, value) {
  const key = options.map(([v, w]) => `${v}=${w}`).join("|");
  if (sel.dataset.key !== key) {
    sel.dataset.key = key;
    sel.replaceChildren(...options.map(([v, w]) => h("option", { value: v, text: w })));
  }
  if (sel.value !== value) sel.value = value;
}
