// Demo faults: the panel that injects faults into the simulated fleet (demo hubs only).

import { demoAction } from "./demo-actions.js";
import { $, h, toast } from "./dom.js";
import { demoVehicleIds } from "./fleet-query.js";
import { S } from "./store.js";
import { codeWords, ratWords } from "./words.js";

const FAULT_LABEL = {
  both_links_down: "Drop both links",
  telemetry_stall: "Stall telemetry",
  takeover_request: "Request takeover",
  rtt_spike: "RTT spike",
  bandwidth_cap: "Cap uplink",
  clock_skew: "Skew clock",
  deaf_to_commands: "Deaf to commands",
};
const LINK_OPTIONAL_FAULTS = new Set(["rtt_spike", "bandwidth_cap"]);

export function renderDemo() {
  const panel = $("demo");
  panel.hidden = !S.demo;
  if (!S.demo) return;
  syncDemoVehicles();
  const links = new Set();
  for (const v of S.vehicles.values()) for (const name of Object.keys(v.links || {})) links.add(name);
  if (!links.size) { links.add("l5g"); links.add("lte"); }
  const linkSel = $("fault-link");
  linkSel.replaceChildren(h("option", { value: "", text: "all" }),
    ...[...links].sort().map((n) => h("option", { value: n, text: n })));
  const buttons = [];
  for (const kind of S.demo.faults || []) {
    if (kind === "link_down") {
      for (const n of [...links].sort()) {
        buttons.push(faultButton(`Drop ${n.toUpperCase()}`, kind, n, `fault-link_down-${n}`));
      }
    } else {
      const label = FAULT_LABEL[kind] ?? kind.replaceAll("_", " ");
      buttons.push(faultButton(LINK_OPTIONAL_FAULTS.has(kind) ? `${label} (link above)` : label,
                               kind, undefined, `fault-${kind}`));
    }
  }
  buttons.push(serviceButton("End service", false, "service-end"),
               serviceButton("Start service", true, "service-start"));
  $("fault-buttons").replaceChildren(...buttons);
  renderCellOutage();
}

// The demo's cells (GET /api/demo `cells`), by the names the fleet table and plot show.
function renderCellOutage() {
  const cells = ((S.demo && S.demo.cells) || []).map(String);
  $("cell-row").hidden = !cells.length;
  const sel = $("cell-select");
  if ([...sel.options].map((o) => o.value).join("|") === cells.join("|")) return;
  const keep = sel.value;
  const rat = new Map(((S.site && S.site.cells) || []).map((c) => [String(c.id), c.rat]));
  sel.replaceChildren(...cells.map((id) => h("option", {
    value: id, text: id, title: rat.has(id) ? `${ratWords(rat.get(id))} cell ${id}` : null })));
  if (cells.includes(keep)) sel.value = keep;
}

export async function injectCellOutage() {
  const cell = $("cell-select").value;
  const duration = Number($("fault-duration").value) || 30;
  const button = $("fault-cell-outage");
  if (!cell) return;
  button.disabled = true;
  try {
    await demoAction("cell-outage", { cell, duration_s: duration });
    toast(`Cell ${cell} is dark for ${duration} s: every vehicle it serves loses that link.`);
  } catch (err) {
    if (err.status !== 401) toast(`Cell outage failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}

// The operator picked a vehicle by hand: the fault picker follows (never an automatic pick).
export function followSelection(byHand) {
  const id = S.selected;
  if (byHand && S.demo && demoVehicleIds().includes(id)) $("fault-vehicle").value = id;
}

export function syncDemoVehicles() {
  if (!S.demo) return;
  const sel = $("fault-vehicle");
  const ids = demoVehicleIds();
  const have = [...sel.options].map((o) => o.value);
  if (have.join() !== ids.join()) {
    const keep = sel.value;
    sel.replaceChildren(...ids.map((id) => h("option", { value: id, text: id })));
    if (ids.includes(keep)) sel.value = keep;
  }
}

// A shuttle ends its shift (it says so, then powers off) or starts one: nothing is raised for
// a vehicle out of service, while one that falls silent in service is a takeover.
function serviceButton(label, inService, testid) {
  const b = h("button", { type: "button", class: "btn", "data-testid": testid, text: label });
  b.addEventListener("click", async () => {
    const vehicle = $("fault-vehicle").value;
    b.disabled = true;
    try {
      await demoAction("service", { vehicle, in_service: inService,
                                    reason: inService ? "shift start" : "end of shift" });
      toast(`${vehicle} ${inService ? "enters service" : "leaves service and powers off"}.`);
    } catch (err) {
      if (err.status !== 401) toast(`Service change failed: ${err.message}`, true);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function faultButton(label, kind, link, testid) {
  const b = h("button", { type: "button", class: kind === "both_links_down" || kind === "takeover_request"
    ? "btn danger" : "btn", "data-testid": testid, text: label });
  b.addEventListener("click", () => injectFault(kind, link, b));
  return b;
}

async function injectFault(kind, fixedLink, button) {
  const vehicle = $("fault-vehicle").value;
  const duration = Number($("fault-duration").value) || 30;
  let link = null;
  if (fixedLink !== undefined) link = fixedLink;
  else if (LINK_OPTIONAL_FAULTS.has(kind)) link = $("fault-link").value || null;
  button.disabled = true;
  try {
    await demoAction("faults", { kind, vehicle, link, duration_s: duration });
    const what = kind === "link_down" ? `Drop ${String(link).toUpperCase()}` : FAULT_LABEL[kind] ?? codeWords(kind);
    toast(`Injected “${what}”${link && kind !== "link_down" ? ` on ${link}` : ""} on ${vehicle} for ${duration} s.`);
  } catch (err) {
    if (err.status !== 401) toast(`Fault injection failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}
