"""The verdict: every site budget against every vehicle in every condition.

``vehicle_rows`` grades each (condition, vehicle, budget) on the vehicle's own figures
(grading.py); ``summary`` counts them per condition and budget; ``decide`` turns that into
PASS / FAIL / NOT GRADED with the lines that say why. Adding another vehicle's runs can add
failures, never remove one: no figure of one vehicle is pooled with another's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from l4mon.config import ReportSettings
from l4mon.faces.report.aggregate import RawFigures
from l4mon.faces.report.budgets import Budget
from l4mon.faces.report.grading import (
    APP_TRAFFIC,
    NEEDS_REPLAY,
    NOT_MEASURED,
    TOO_LITTLE,
    Observation,
    Result,
    best,
    enough,
    observe_link,
    observe_vehicle,
    passes,
    short_drive,
    show,
)
from l4mon.faces.report.model import Column, Table
from l4mon.faces.report.pipeline import StateRun

Verdict = Literal["pass", "fail", "not graded"]
#: Vehicles named per line of the verdict; the Budgets table lists them all.
NAMED = 8


@dataclass
class _Vehicle:
    """One vehicle in one condition: its links' raw figures and its runs' KPIs."""

    links: dict[str, Any] = field(default_factory=dict)  # link → VehicleLinkRaw
    kpis: list[dict[str, Any]] = field(default_factory=list)
    drive_s: float | None = None


def _vehicles(raw: dict[str, RawFigures], runs: list[StateRun]
              ) -> dict[str, dict[str, _Vehicle]]:
    out: dict[str, dict[str, _Vehicle]] = defaultdict(dict)
    for cond, figs in raw.items():
        for (vehicle, link), vraw in figs.vehicle_links.items():
            out[cond].setdefault(vehicle, _Vehicle()).links[link] = vraw
        for vehicle, mine in out[cond].items():
            mine.drive_s = figs.vehicle_s.get(vehicle, 0.0)
    for run in runs:
        for vehicle, kp in (run.doc.get("kpis") or {}).items():
            out[run.condition].setdefault(vehicle, _Vehicle()).kpis.append(kp)
    return out


def _drive_s(mine: _Vehicle) -> float:
    if mine.drive_s is not None:
        return mine.drive_s
    return sum(float(kp.get("in_service_s") or 0.0) for kp in mine.kpis)


def vehicle_rows(raw: dict[str, RawFigures], runs: list[StateRun],
                 all_budgets: list[Budget], settings: ReportSettings,
                 conditions: list[str]) -> Table:
    t = Table("budgets", "Budgets per vehicle and condition", [
        Column("condition", "Condition", "text"), Column("vehicle", "Vehicle", "text"),
        Column("budget", "Budget", "text"), Column("requirement", "Requirement", "text"),
        Column("result", "Result", "text"), Column("links", "Met by", "text"),
        Column("observed", "Observed per link (samples)", "text"),
        Column("value", "Value", digits=6), Column("samples", "Samples", "int"),
        Column("judged_s", "Time judged", unit="s", digits=0),
        Column("hours", "Drive time", unit="h", digits=2),
        Column("reason", "Not graded because", "text"),
        Column("binding", "Kind", "text"), Column("source", "Source", "text"),
    ], note=f"Each vehicle on its own figures: a per-link budget is met when one of the "
            f"vehicle's own links meets it (its value is the best of its links), a vehicle "
            f"budget on its replay KPIs. Graded only with ≥ {settings.min_drive_s:g} s of "
            f"drive time in the condition and ≥ {settings.min_samples:,} samples behind a "
            f"figure (≥ {settings.min_drive_s:g} s judged for a time share): [report] "
            f"min_drive_s, min_samples. Shares count an unanswered probe or a lost sample "
            f"as late.")
    books = _vehicles(raw, runs)
    for cond in conditions:
        for vehicle, mine in sorted(books.get(cond, {}).items()):
            drive_s = _drive_s(mine)
            for b in all_budgets:
                t.rows.append({"condition": cond, "vehicle": vehicle, "budget": b.id,
                               "hours": drive_s / 3600.0,
                               "binding": "site" if b.binding else "reference",
                               "source": b.source,
                               **(_vehicle_budget(b, mine, settings, drive_s) if b.per_vehicle
                                  else _link_budget(b, mine, settings, drive_s))})
    return t


def _vehicle_budget(b: Budget, mine: _Vehicle, settings: ReportSettings,
                    drive_s: float) -> dict[str, Any]:
    requirement = b.requirement
    need = {kp.get("ul_required_kbps") for kp in mine.kpis} - {None}
    if b.metric == "ul_usable_required":
        requirement = ("no requirement (ul_required_kbps = 0)" if need and need <= {0.0}
                       else "UL of the usable links summed ≥ "
                       + (" / ".join(f"{x:,.0f}" for x in sorted(need)) if need
                          else "the vehicle's requirement")
                       + " kbit/s in ≥ 99 % of vehicle time")
    no_need = b.metric == "ul_usable_required" and bool(need) and need <= {0.0}
    if b.metric == "ul_usable_required" and not no_need and _app_traffic_only(mine):
        # What an app sent is not what the link could carry: a phone or modem logger's
        # uplink below the video's need says nothing of the link (manifest not_measured).
        obs = Observation(None, reason=f"{APP_TRAFFIC}: the uplink figures are what an "
                          "application carried, not what the links could (manifest "
                          "not_measured: capacity)")
    elif not mine.kpis:
        obs = Observation(None, reason=f"{NEEDS_REPLAY}: link states come from the "
                          "pipeline (the report's own replay, or a results.json of `l4mon "
                          "replay` given beside the log)")
    else:
        obs = observe_vehicle(b, mine.kpis)
    row: dict[str, Any] = {"requirement": requirement, "links": "usable links together",
                           "observed": show(b, obs.value) if obs.measured else "",
                           "value": obs.value, "samples": None,
                           "judged_s": obs.seconds or None}
    return {**row, **_result(b, obs, settings, drive_s)}


def _app_traffic_only(mine: _Vehicle) -> bool:
    """The vehicle's links report an uplink, none of it as capacity."""
    links = mine.links.values()
    return any(raw.ul_n for raw in links) and not any(raw.ul_capacity_n for raw in links)


def _result(b: Budget, obs: Observation, settings: ReportSettings, drive_s: float
            ) -> dict[str, Any]:
    if obs.value is None:
        return {"result": "n/a", "reason": obs.reason}
    short = enough(obs, settings, drive_s=drive_s)
    if short is not None:
        return {"result": "too little data", "reason": short}
    return {"result": "pass" if passes(b, obs.value) else "fail", "reason": None}


def _link_budget(b: Budget, mine: _Vehicle, settings: ReportSettings,
                 drive_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {"requirement": b.requirement, "judged_s": None}
    if not mine.links:
        return {**row, "links": "", "observed": "", "value": None, "samples": None,
                "result": "n/a", "reason": f"{NOT_MEASURED}: a results file carries no raw "
                "samples (give the drive log)"}
    graded: list[tuple[str, Observation, bool]] = []
    short: list[str] = []
    reasons: list[str] = []
    words: list[str] = []
    for link, vraw in sorted(mine.links.items()):
        obs = observe_link(b, vraw)
        if obs.value is None:
            reasons.append(str(obs.reason))
            words.append(f"{link} not measured")
            continue
        words.append(f"{link} {show(b, obs.value)} ({obs.samples:,})")
        why = enough(obs, settings, drive_s=drive_s)
        if why is not None:
            short.append(f"{link}: {why}")
            continue
        graded.append((link, obs, passes(b, obs.value)))
    row["observed"] = "; ".join(words)
    met = [(link, obs) for link, obs, ok in graded if ok]
    if met:
        value = best(b, [float(obs.value or 0.0) for _, obs in met])
        return {**row, "links": ", ".join(link for link, _ in met), "value": value,
                "samples": sum(obs.samples for _, obs in met), "result": "pass",
                "reason": None}
    if graded:
        value = best(b, [float(obs.value or 0.0) for _, obs, _ in graded])
        return {**row, "links": "", "value": value,
                "samples": sum(obs.samples for _, obs, _ in graded), "result": "fail",
                "reason": None}
    if short:
        # the vehicle's drive time is one reason for all its links: said once
        why = short_drive(settings, drive_s) or "; ".join(short)
        return {**row, "links": "", "value": None, "samples": None,
                "result": "too little data", "reason": why}
    return {**row, "links": "", "value": None, "samples": None, "result": "n/a",
            "reason": "; ".join(dict.fromkeys(reasons))}


def summary(rows: Table, all_budgets: list[Budget], conditions: list[str]) -> Table:
    """Per condition and budget: how many vehicles met it, missed it, or could not be
    graded, and the condition's result for it."""
    t = Table("budget_summary", "Budgets per condition: every vehicle held to each", [
        Column("condition", "Condition", "text"), Column("budget", "Budget", "text"),
        Column("requirement", "Requirement", "text"), Column("result", "Result", "text"),
        Column("vehicles", "Vehicles", "int"), Column("passed", "Met", "int"),
        Column("failed", "Missed", "int"), Column("too_little", "Too little data", "int"),
        Column("not_graded", "N/A", "int"), Column("detail", "Which, and why", "text"),
        Column("binding", "Kind", "text"),
    ], note="A condition meets a budget when no vehicle misses it and at least one vehicle "
            "was graded; vehicles with too little data are named, never counted as met.")
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows.rows:
        by[(r["condition"], r["budget"])].append(r)
    for cond in conditions:
        for b in all_budgets:
            mine = by.get((cond, b.id), [])
            if not mine:
                continue
            count = {k: [r for r in mine if r["result"] == k]
                     for k in ("pass", "fail", "too little data", "n/a")}
            result: Result = ("fail" if count["fail"] else "pass" if count["pass"]
                              else "too little data" if count["too little data"] else "n/a")
            t.rows.append({
                "condition": cond, "budget": b.id,
                "requirement": _requirement(mine, b), "result": result,
                "vehicles": len(mine), "passed": len(count["pass"]),
                "failed": len(count["fail"]), "too_little": len(count["too little data"]),
                "not_graded": len(count["n/a"]), "detail": _detail(result, count),
                "binding": "site" if b.binding else "reference"})
    return t


def _requirement(rows: list[dict[str, Any]], b: Budget) -> str:
    said = list(dict.fromkeys(r["requirement"] for r in rows))
    return said[0] if len(said) == 1 else b.requirement


def _named(rows: list[dict[str, Any]], what: str) -> str:
    names = [f"{r['vehicle']} ({str(r[what]).removeprefix(TOO_LITTLE + ': ')})"
             for r in rows[:NAMED]]
    more = f" and {len(rows) - NAMED} more" if len(rows) > NAMED else ""
    return ", ".join(names) + more


def _detail(result: Result, count: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    if count["fail"]:
        parts.append(f"missed by {_named(count['fail'], 'observed')}")
    if count["too little data"]:
        parts.append(f"{TOO_LITTLE}: {_named(count['too little data'], 'reason')}")
    if result == "n/a":
        reasons = dict.fromkeys(str(r["reason"]) for r in count["n/a"])
        parts.append("; ".join(reasons))
    return "; ".join(parts)


def decide(table: Table, conditions: list[str], settings: ReportSettings
           ) -> tuple[Verdict, list[str]]:
    """FAIL when a vehicle misses a site budget in some condition; PASS only when every
    condition met every site budget it could grade and no condition was left with too
    little data; otherwise NOT GRADED. The lines say which vehicles, budgets and reasons."""
    site = [r for r in table.rows if r["binding"] == "site"]
    detail: list[str] = []
    states: dict[str, str] = {}
    for cond in conditions:
        mine = [r for r in site if r["condition"] == cond]
        results = {r["result"] for r in mine}
        states[cond] = ("fail" if "fail" in results else "too little data"
                        if "too little data" in results else "pass" if "pass" in results
                        else "n/a")
        for r in mine:
            if r["result"] == "fail":
                detail.append(f"{cond}: {r['budget']} ({r['requirement']}) missed by "
                              f"{r['failed']} of {r['vehicles']} vehicles: "
                              + r["detail"].removeprefix("missed by "))
            elif r["result"] == "too little data":
                detail.append(f"{cond}: {r['budget']}: {r['detail']}")
            elif r["result"] == "n/a":
                detail.append(f"{cond}: {r['budget']} not graded: {r['detail']}")
            elif r["too_little"]:
                detail.append(f"{cond}: {r['budget']} met by the {r['passed']} graded "
                              f"vehicles; {r['detail']}")
    rule = (f"Graded per vehicle: ≥ {settings.min_drive_s:g} s of drive time per vehicle "
            f"and condition, ≥ {settings.min_samples:,} samples behind each figure "
            "([report] min_drive_s, min_samples).")
    if not site:
        return "not graded", ["No vehicle to grade: give the drive logs or replay results."]
    if "fail" in states.values():
        return "fail", [*detail, rule]
    if states and all(s == "pass" for s in states.values()):
        return "pass", [*detail, rule]
    open_ = [c for c, s in states.items() if s != "pass"]
    return "not graded", [*detail, f"Not graded as a whole: {', '.join(open_)} could not "
                          "be graded (above). Nothing here says the site passes or fails "
                          "there.", rule]
