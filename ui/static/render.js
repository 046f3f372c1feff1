// The one render step: what changed (store.js `announce`) → which views draw. Actions and
// frames write the store and announce; only this module calls the views' renderers.

import { renderAlerts, renderResolved } from "./alerts.js";
import { renderCharts } from "./charts.js";
import { renderCommands } from "./commands.js";
import { updateCue } from "./cue.js";
import { followSelection, renderDemo, syncDemoVehicles } from "./demo-panel.js";
import { renderDuty, renderMe, renderScope } from "./duty.js";
import { renderFilterChoices } from "./fleet-filter.js";
import { renderFleet } from "./fleet-table.js";
import { plotHooks } from "./geometry.js";
import { handovers } from "./handovers.js";
import { markSelectedMembers } from "./incident-cards.js";
import { linkmap, renderAhead } from "./linkmap-layer.js";
import { buildPlotIfNeeded, layoutPlot, renderPlotVehicles, siteLoaded } from "./site-plot.js";
import { S, onChange } from "./store.js";
import { renderDetail, renderVehicleSummary } from "./vehicle-panel.js";

function vehicleSummary() {
  renderVehicleSummary();
  renderCommands();
}

function alertsAndFriends() {
  renderAlerts();
  renderResolved();
  renderFleet(null);
  renderPlotVehicles();
  updateCue();
}

const STEPS = {
  snapshot() {
    renderFilterChoices();
    renderFleet(null);
    buildPlotIfNeeded();
    renderPlotVehicles();
    alertsAndFriends();
    renderDuty();
    vehicleSummary();
    renderCharts();
    syncDemoVehicles();
    handovers.selected();
  },
  vehicles(changed) {
    renderFleet(changed);
    renderScope();   // "the N shown": a filter by state follows the vehicles' states
    renderPlotVehicles();
    // The charts follow on their own 1 s beat (CHART_EVERY_MS): 1 px is ~1 s of 10 min.
    if (changed.includes(S.selected)) vehicleSummary();
  },
  alerts: alertsAndFriends,
  resolved: renderResolved,
  selection({ byHand }) {
    markSelectedMembers();
    renderFleet(null);
    renderPlotVehicles();
    vehicleSummary();
    renderCharts();
    renderDetail();
    followSelection(byHand);
    handovers.selected();
  },
  history() { vehicleSummary(); renderCharts(); },
  detail: renderDetail,
  duty() { renderDuty(); renderFleet(null); vehicleSummary(); },
  me() { renderMe(); renderDuty(); renderCommands(); },
  commands: renderCommands,
  filter() { renderFleet(null); renderDuty(); },
  demo: renderDemo,
  site: siteLoaded,
  shown: layoutPlot,
  handovers: () => handovers.records(),
  "handovers-stopped": () => handovers.stopped(),
  intersections: () => handovers.intersections(),
  "intersection-focus": (id) => handovers.showIntersection(id),
  linkmap: () => linkmap.loaded(),
  "alert-focus": (a) => linkmap.focusAlert(a),
};

export function installRender() {
  plotHooks.built.push(() => handovers.plotBuilt(), () => linkmap.plotBuilt());
  plotHooks.drawn.push(renderAhead);
  onChange((what, detail) => {
    const step = STEPS[what];
    if (step) step(detail);
  });
}
