// What to redraw when: everything (a snapshot) or the alert-driven parts.

import { renderAlerts, renderResolved } from "./alerts.js";
import { renderCharts } from "./charts.js";
import { updateCue } from "./cue.js";
import { syncDemoVehicles } from "./demo-panel.js";
import { renderDuty } from "./duty.js";
import { renderFilterChoices } from "./fleet-filter.js";
import { renderFleet } from "./fleet-table.js";
import { handovers } from "./handovers.js";
import { buildPlotIfNeeded, renderPlotVehicles } from "./site-plot.js";
import { loadHistory, refreshDetailSoon, renderVehicleSummary } from "./vehicle-panel.js";

export function renderAll() {
  renderFilterChoices();
  renderFleet(null);
  buildPlotIfNeeded();
  renderPlotVehicles();
  renderAlertsAndFriends();
  renderDuty();
  renderVehicleSummary();
  renderCharts();
  syncDemoVehicles();
  refreshDetailSoon();
  loadHistory();
  handovers.selected();
}

export function renderAlertsAndFriends() {
  renderAlerts();
  renderResolved();
  renderFleet(null);
  renderPlotVehicles();
  updateCue();
}
