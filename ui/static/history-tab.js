// The History tab: every alert the hub's journal keeps, newest first, a page at a time
// (GET /api/history/alerts). Read from the journal, not from what this page saw: it reaches
// back past a hub restart and past the page's load. Fetched when the tab is opened, on
// "Newest", and a page further back on "Older alerts"; never on every frame.

import { where } from "./alert-words.js";
import { loadJournalPage } from "./alert-actions.js";
import { $, clock, duration, h } from "./dom.js";
import { S } from "./store.js";
import { installTab } from "./tabs.js";
import { codeWords, detailWords } from "./words.js";

const PAGE = 50;

const DAY = new Intl.DateTimeFormat([], { month: "short", day: "numeric" });
function when(epoch) {
  const t = clock(epoch);
  const d = new Date((epoch - S.hubOffset) * 1000);
  return d.toDateString() === new Date().toDateString() ? t : `${DAY.format(d)} ${t}`;
}

function query(before) {
  const p = new URLSearchParams({ limit: String(PAGE) });
  const vehicle = $("hv-vehicle").value.trim();
  if (vehicle) p.set("vehicle", vehicle);
  if ($("hv-severity").value) p.set("severity", $("hv-severity").value);
  if ($("hv-state").value) p.set("state", $("hv-state").value);
  if (before) p.set("before", String(before));
  return `/api/history/alerts?${p}`;
}

let loading = 0;   // the newest request: an older answer that comes late is dropped
async function load(older) {
  const ticket = ++loading;
  const path = query(older ? S.alertHistory.next : null);
  $("hv-note").textContent = "reading the journal…";
  if (await loadJournalPage(path, older, () => ticket === loading)) renderHistoryTab();
}

export function installAlertHistory() {
  installTab("history", () => load(false));
  $("hv-newest").addEventListener("click", () => load(false));
  $("hv-older").addEventListener("click", () => load(true));
  for (const id of ["hv-severity", "hv-state"]) $(id).addEventListener("change", () => load(false));
  $("hv-vehicle").addEventListener("change", () => load(false));
}

function ending(a) {
  if (a.state === "resolved") {
    const by = a.resolved_by ? `resolved by ${a.resolved_by}` : "cleared by its rule";
    const took = a.resolved_at && a.raised_at ? ` after ${duration(a.resolved_at - a.raised_at)}` : "";
    return `${by}${took}${a.resolve_reason ? `: “${a.resolve_reason}”` : ""}`;
  }
  return a.state === "acknowledged" ? `open, acknowledged by ${a.acknowledged_by ?? "?"}` : "open";
}

export function renderHistoryTab() {
  const H = S.alertHistory;
  const rows = H.rows.map((a) => h("tr", {
    class: `hv-row sev-${a.severity} st-${a.state}`, "data-testid": `history-alert-${a.id}`,
    title: `${a.severity} · alert ${a.id}${a.escalated ? " · escalated" : ""}`,
    dataset: { rule: String(a.rule), vehicle: a.vehicle ?? "", state: String(a.state),
               severity: String(a.severity) } },
    h("td", { class: "mono", text: when(a.raised_at) }),
    h("td", { text: where(a), title: where(a) }),
    h("td", { title: [a.title ?? codeWords(a.rule), a.detail ? detailWords(a.detail, a) : ""]
      .filter(Boolean).join(" — ") },
      String(a.title ?? codeWords(a.rule)),
      a.detail ? h("span", { class: "muted", text: ` — ${detailWords(a.detail, a)}` }) : null),
    h("td", { text: ending(a), title: ending(a) })));
  $("hv-rows").replaceChildren(...(rows.length ? rows
    : [h("tr", null, h("td", { colspan: 4, class: "empty",
                               text: H.error ? "" : "no alert in the journal matches" }))]));
  $("hv-older").hidden = H.next == null;
  const note = H.error ? `history: ${H.error}`
    : `${H.rows.length} from the journal${H.next == null ? " (all of them)" : ""}`;
  $("hv-note").textContent = note;
  $("hv-note").classList.toggle("form-error", Boolean(H.error));
}
