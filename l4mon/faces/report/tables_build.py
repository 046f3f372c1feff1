"""The report's tables, built from the raw-sample aggregates and the pipeline runs.

Each function makes one table; which figures come from where is stated in its note and in
docs/reports.md: distributions from the Parquet scan (aggregate.py), states, handovers and
alerts from the pipeline (pipeline.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from l4mon.faces.report.aggregate import LinkRaw, RawFigures
from l4mon.faces.report.budgets import USABLE_LINKS, Budget, observe_vehicles
from l4mon.faces.report.grading import observe_link, passes, show
from l4mon.faces.report.model import Column, Table
from l4mon.faces.report.pipeline import StateRun
from telemetry.quantiles import EXACT_MAX, RELATIVE_ERROR
from telemetry.site import Site

C, L = Column("condition", "Condition", "text"), Column("link", "Link", "text")
OUTSIDE = "(between intersections)"
#: Whether every percentile of a row is the exact order statistic (telemetry/quantiles.py's one
#: rule, the replay KPIs' ``exact`` too), so a reader knows which figures to hold bit for bit.
EXACT = Column("exact", "Exact", "bool")
EXACT_RULE = (f"Percentiles are exact order statistics (numpy's linear interpolation) while a "
              f"link has at most {EXACT_MAX:,} values in a condition, within "
              f"{RELATIVE_ERROR:.1%} (relative) beyond, never capped; Exact says which "
              f"(the replay KPIs' exact follows the same rule).")
#: Reads the vehicles' uplink KPI the same way the site budget grades it (limit not used).
UPLINK_KPI = Budget("ul", "", "ul_usable_required", 0.0, None, "", False)


def _q(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def latency(raw: dict[str, RawFigures]) -> Table:
    t = Table("latency", "Latency, jitter and loss per link (raw samples)", [
        C, L, Column("vehicles", "Vehicles", "int"), Column("samples", "Samples", "int"),
        Column("hours", "Link-hours (data)", digits=2), Column("probes", "Probes", "int"),
        Column("probe_timeouts", "Probe timeouts", "int", better="lower"),
        Column("rtt_p50_ms", "RTT p50", unit="ms", better="lower"),
        Column("rtt_p95_ms", "RTT p95", unit="ms", better="lower"),
        Column("rtt_p99_ms", "RTT p99", unit="ms", better="lower"),
        Column("rtt_p999_ms", "RTT p99.9", unit="ms", better="lower"),
        Column("rtt_max_ms", "RTT max", unit="ms"),
        Column("delay_p50_ms", "One-way p50", unit="ms", better="lower"),
        Column("delay_p95_ms", "One-way p95", unit="ms", better="lower"),
        Column("delay_p99_ms", "One-way p99", unit="ms", better="lower"),
        Column("delay_samples", "One-way samples", "int"),
        Column("jitter_ms", "Jitter", unit="ms", digits=2, better="lower"),
        Column("loss_ratio", "Loss", "pct", digits=3, better="lower"),
        Column("lost", "Lost (seq)", "int"),
        EXACT,
    ], note="From every new sample in the drive logs' Parquet, streamed in record batches. "
            f"{EXACT_RULE} "
            "jitter = mean |ΔRTT| of consecutive answered probes per stream; loss = missing "
            "seq numbers ÷ (missing + received). Link-hours: each vehicle's time with data "
            "on the link (silences over 10 min not counted), summed. Probes = answered + "
            "unanswered: samples that carried no probe are neither, and with none RTT is N/A "
            "(not measured). One-way delay = receive time − sender ts, only from samples "
            "with a synchronised sender clock (N/A without: drive-test imports have none).")
    for cond, figs in raw.items():
        for name, r in sorted(figs.links.items()):
            p = r.rtt.quantiles([0.5, 0.95, 0.99, 0.999])
            d = r.delay.quantiles([0.5, 0.95, 0.99])
            t.rows.append({
                "condition": cond, "link": name, "vehicles": len(r.vehicles),
                "samples": r.samples, "probes": r.probes, "probe_timeouts": r.timeouts,
                "hours": sum(v.seconds for (_, lk), v in figs.vehicle_links.items()
                             if lk == name) / 3600.0,
                "rtt_p50_ms": p[0], "rtt_p95_ms": p[1], "rtt_p99_ms": p[2], "rtt_p999_ms": p[3],
                "rtt_max_ms": r.rtt.maximum if r.rtt.n else None,
                "delay_p50_ms": d[0], "delay_p95_ms": d[1], "delay_p99_ms": d[2],
                "delay_samples": r.delay.n,
                "jitter_ms": r.jitter_ms, "loss_ratio": r.loss_ratio,
                "lost": r.lost if r.loss_samples else None,
                "exact": r.rtt.exact and r.delay.exact})
    return t


def throughput(raw: dict[str, RawFigures], requirement: str) -> Table:
    t = Table("throughput", "Uplink and downlink throughput vs the vehicles' requirement", [
        C, L, Column("ul_samples", "UL samples", "int"),
        Column("ul_mean_kbps", "UL mean", unit="kbit/s", digits=0, better="higher"),
        Column("ul_p5_kbps", "UL p5", unit="kbit/s", digits=0, better="higher"),
        Column("ul_p50_kbps", "UL p50", unit="kbit/s", digits=0, better="higher"),
        Column("ul_share_meeting_requirement", "UL ≥ requirement", "pct", digits=2,
               better="higher"),
        Column("dl_samples", "DL samples", "int"),
        Column("dl_mean_kbps", "DL mean", unit="kbit/s", digits=0, better="higher"),
        Column("dl_p5_kbps", "DL p5", unit="kbit/s", digits=0, better="higher"),
        Column("dl_p50_kbps", "DL p50", unit="kbit/s", digits=0, better="higher"),
        Column("rate_is", "The rates are", "text"),
        EXACT,
    ], note=f"The modems' own measured throughput per sample (N/A: not measured, e.g. "
            f"CICV5G carries none). {EXACT_RULE} "
            f"Rates that are an application's traffic (a phone app's bitrate: the manifest's "
            f"not_measured has capacity) are shown but grade no rate budget: they say what "
            f"was sent, not what the link could carry. "
            f"Requirement: {requirement}; this column is each link on its own, which "
            f"says what one link could carry alone. The budget grades the {USABLE_LINKS} "
            f"(Budgets, and Vehicles).")
    for cond, figs in raw.items():
        for name, r in sorted(figs.links.items()):
            ul, dl = r.ul.quantiles([0.05, 0.5]), r.dl.quantiles([0.05, 0.5])
            t.rows.append({
                "condition": cond, "link": name, "ul_samples": r.ul.n,
                "dl_samples": r.dl.n, "ul_mean_kbps": r.ul.mean,
                "ul_p5_kbps": ul[0], "ul_p50_kbps": ul[1],
                "ul_share_meeting_requirement": r.ul_meets_required / r.ul_judged
                if r.ul_judged else None,
                "dl_mean_kbps": r.dl.mean, "dl_p5_kbps": dl[0], "dl_p50_kbps": dl[1],
                "rate_is": _rate_is(r), "exact": r.ul.exact and r.dl.exact})
    return t


def _rate_is(r: LinkRaw) -> str:
    if not r.ul.n and not r.dl.n:
        return "not measured"
    if r.ul_capacity_n + r.dl_capacity_n == 0:
        return "application traffic, not capacity (not graded)"
    if r.ul_capacity_n + r.dl_capacity_n < r.ul.n + r.dl.n:
        return "capacity, and some application traffic (not graded)"
    return "link capacity"


def availability(runs: list[StateRun], conditions: list[str]) -> tuple[Table, Table]:
    links = Table("availability", "Link availability: share of time ok, degraded, down", [
        C, L, Column("hours", "Link-hours", digits=2),
        Column("ok", "Ok", "pct", digits=2, better="higher"),
        Column("degraded", "Degraded", "pct", digits=2, better="lower"),
        Column("down", "Down or stale", "pct", digits=3, better="lower"),
        Column("unknown", "Not yet heard", "pct", digits=2),
        Column("availability", "Available (ok or degraded)", "pct", digits=3,
               better="higher"),
        Column("source", "From", "text"),
    ], note="The hub's own link states (docs/link-health.md), summed over the 0.25 s ticks of "
            "a replay through the live pipeline, all vehicles together.")
    vehicles = Table("vehicle_availability", "Vehicles: time with a usable link", [
        C, Column("vehicles", "Vehicles", "int"), Column("hours", "Vehicle-hours", digits=2),
        Column("availability", "With a usable link", "pct", digits=4, better="higher"),
        Column("all_links_down_s", "All links down", unit="s", digits=1, better="lower"),
        Column("ul_requirement_met", "Usable UL ≥ requirement", "pct", digits=3,
               better="higher"),
        Column("source", "From", "text"),
    ], note="A vehicle is reachable while any of its links is ok or degraded; its uplink "
            "meets the requirement while its usable links' uplink, summed, does (replay KPIs: "
            "`availability`, `time_all_links_down_s`, `ul_requirement_met`).")
    by: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    veh: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    uplink: dict[str, list[dict[str, Any]]] = defaultdict(list)
    origin: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        origin[run.condition].add(run.origin)
        for kp in run.doc.get("kpis", {}).values():
            span = 0.0
            for name, lk in kp.get("links", {}).items():
                times = lk.get("time_in_state_s", {})
                by[(run.condition, name)].update({k: float(v) for k, v in times.items()})
                span = max(span, sum(float(v) for v in times.values()))
            v = veh[run.condition]
            v[0] += 1
            v[1] += span
            v[2] += float(kp.get("availability") or 0.0) * span
            v[3] += float(kp.get("time_all_links_down_s") or 0.0)
            uplink[run.condition].append(kp)
    for (cond, name), c in sorted(by.items()):
        total = sum(c.values())
        share = {k: (c[k] / total if total else None) for k in ("ok", "degraded", "unknown")}
        down = (c["down"] + c["stale"]) / total if total else None
        links.rows.append({"condition": cond, "link": name, "hours": total / 3600.0, **share,
                           "down": down,
                           "availability": (c["ok"] + c["degraded"]) / total if total else None,
                           "source": "; ".join(sorted(origin[cond]))})
    for cond in conditions:
        if cond not in veh:
            continue
        n, hours, avail, down = veh[cond]
        vehicles.rows.append({"condition": cond, "vehicles": int(n), "hours": hours / 3600.0,
                              "availability": avail / hours if hours else None,
                              "all_links_down_s": down,
                              "ul_requirement_met": observe_vehicles(UPLINK_KPI, uplink[cond]),
                              "source": "; ".join(sorted(origin[cond]))})
    return links, vehicles


def _zone(h: dict[str, Any], site: Site | None) -> str:
    """The handover's intersection: the pipeline's tag when it has one, else the site's zone."""
    if "intersection" in h:
        return h["intersection"] or OUTSIDE
    if site is not None and h.get("lat") is not None and h.get("lon") is not None:
        ix = site.intersection_at(h["lat"], h["lon"])
        return ix.id if ix is not None else OUTSIDE
    return OUTSIDE


def handover_zones(runs: list[StateRun], site: Site | None) -> list[tuple[str, str, dict]]:
    return [(run.condition, _zone(h, site), h) for run in runs for h in run.doc.get("handovers",
                                                                                    [])]


def handovers(runs: list[StateRun], site: Site | None) -> Table:
    t = Table("handovers", "Handovers per intersection", [
        C, Column("intersection", "Intersection", "text"), L,
        Column("handovers", "Handovers", "int"), Column("success", "Success", "int"),
        Column("failure", "Failures", "int", better="lower"),
        Column("ping_pong", "Ping-pong", "int", better="lower"),
        Column("too_frequent", "Too frequent", "int"),
        Column("success_rate", "Success rate", "pct", digits=1, better="higher"),
        Column("ping_pong_rate", "Ping-pong rate", "pct", digits=1, better="lower"),
        Column("interruption_p50_ms", "Interruption p50", unit="ms", digits=0,
               better="lower"),
        Column("interruption_p95_ms", "Interruption p95", unit="ms", digits=0,
               better="lower"),
        Column("interruption_max_ms", "Interruption max", unit="ms", digits=0),
    ], note="Every handover record of the pipeline (docs/handover.md), placed in the "
            "intersection the pipeline tagged it with, or else the site zone containing its "
            "position. Interruption percentiles are exact (numpy, linear).")
    names = {ix.id: ix.name for ix in site.intersections} if site else {}
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for cond, zone, h in handover_zones(runs, site):
        groups[(cond, zone, h.get("link", ""))].append(h)
    for (cond, zone, link), hs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1] == OUTSIDE, kv[0][1], kv[0][2])):
        kinds = Counter(h.get("kind") for h in hs)
        gaps = [float(h["interruption_ms"]) for h in hs if h.get("interruption_ms") is not None]
        t.rows.append({
            "condition": cond, "intersection": names.get(zone, zone), "link": link,
            "handovers": len(hs), "success": kinds["success"], "failure": kinds["failure"],
            "ping_pong": kinds["ping_pong"], "too_frequent": kinds["too_frequent"],
            "success_rate": kinds["success"] / len(hs), "ping_pong_rate":
            kinds["ping_pong"] / len(hs), "interruption_p50_ms": _q(gaps, 50),
            "interruption_p95_ms": _q(gaps, 95),
            "interruption_max_ms": max(gaps) if gaps else None})
    return t


def zones(runs: list[StateRun], site: Site | None) -> Table:
    """The pipeline's per-intersection link figures (results "intersections"), when present."""
    t = Table("intersection_links", "Links inside intersections (pipeline)", [
        C, Column("intersection", "Intersection", "text"), L,
        Column("time_in_zone_s", "Time in zone", unit="s", digits=0),
        Column("time_degraded_s", "Degraded", unit="s", digits=1, better="lower"),
        Column("time_down_s", "Down", unit="s", digits=1, better="lower"),
        Column("min_rsrp_dbm", "Min RSRP", unit="dBm", digits=1, better="higher"),
        Column("min_sinr_db", "Min SINR", unit="dB", digits=1, better="higher"),
        Column("v2i_aoi_p95_s", "V2I AoI p95", unit="s", digits=2, better="lower"),
    ], note="From the replay results' `intersections` object (the pipeline's intersection "
            "tagging); times add up over runs, minima are the lowest, the age of the RSUs' "
            "information (AoI) is the worst run's p95. V2I delivery is in the V2I table: the "
            "same in-zone definition, counted over every raw sample.")
    acc: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:
        for ix_id, ix in (run.doc.get("intersections") or {}).items():
            name = ix.get("name") or ix_id
            v2i = ix.get("v2i") or {}
            for link, f in (ix.get("links") or {}).items():
                a = acc.setdefault((run.condition, name, link), {
                    "time_in_zone_s": 0.0, "time_degraded_s": 0.0, "time_down_s": 0.0,
                    "min_rsrp_dbm": [], "min_sinr_db": [], "aoi": []})
                for k in ("time_in_zone_s", "time_degraded_s", "time_down_s"):
                    a[k] += float(f.get(k) or 0.0)
                for k in ("min_rsrp_dbm", "min_sinr_db"):
                    if f.get(k) is not None:
                        a[k].append(float(f[k]))
                if v2i.get("aoi_p95_s") is not None:
                    a["aoi"].append(float(v2i["aoi_p95_s"]))
    for (cond, name, link), a in sorted(acc.items()):
        t.rows.append({
            "condition": cond, "intersection": name, "link": link,
            "time_in_zone_s": a["time_in_zone_s"], "time_degraded_s": a["time_degraded_s"],
            "time_down_s": a["time_down_s"],
            "min_rsrp_dbm": min(a["min_rsrp_dbm"]) if a["min_rsrp_dbm"] else None,
            "min_sinr_db": min(a["min_sinr_db"]) if a["min_sinr_db"] else None,
            "v2i_aoi_p95_s": max(a["aoi"]) if a["aoi"] else None})
    return t


def v2i(raw: dict[str, RawFigures], site: Site | None, runs: list[StateRun]) -> Table:
    """V2I delivery inside each intersection: the pipeline's figure wherever the pipeline ran
    (the live definition, GET /api/intersections), else the raw scan's count of the same
    definition, or why it could not be computed."""
    t = Table("v2i", "V2I delivery per intersection and RSU", [
        C, Column("rsu", "RSU", "text"), Column("intersection", "Intersection", "text"),
        Column("received", "Received", "int"),
        Column("expected", "Broadcast while in the zone", digits=0),
        Column("delivery_ratio", "Delivery ratio", "pct", digits=1, better="higher"),
        Column("not_computed", "Not computed because", "text"),
        Column("source", "From", "text"),
    ], note="docs/protocol.md's definition: vehicles' received messages over the RSU's "
            "broadcast while they were in its intersection's zone (the site plot's circle or "
            "polygon). From the pipeline (a replay, or a results.json): per intersection, "
            "sampled at the 0.25 s ticks with the RSU's count interpolated to the vehicle's "
            "time, the live figure itself. From the raw scan, only where the pipeline did not "
            "run (logs too big to replay here): per RSU, increases of a vehicle's v2i_rx "
            "between consecutive state reports that both carry the RSU and are both in the "
            "zone, over those intervals × the RSU's broadcast rate; on the simulator the two "
            "agree within 0.1 percentage point.")
    names = {ix.id: ix.name for ix in site.intersections} if site else {}
    rsus_at: dict[str, list[str]] = defaultdict(list)
    for rsu in site.rsus if site else ():
        rsus_at[rsu.intersection].append(rsu.id)
    piped: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for run in runs:
        for ix, figures in (run.doc.get("intersections") or {}).items():
            book = piped[run.condition].setdefault(ix, [0.0, 0.0])
            book[0] += figures["v2i"]["received"]
            book[1] += figures["v2i"]["expected"]
    missing: dict[str, list[str]] = defaultdict(list)
    for cond in [*raw, *(c for c in piped if c not in raw)]:
        if piped.get(cond):
            for ix, (received, expected) in sorted(piped[cond].items()):
                t.rows.append({
                    "condition": cond, "rsu": ", ".join(sorted(rsus_at.get(ix, []))) or None,
                    "intersection": names.get(ix, ix), "received": int(received),
                    "expected": expected, "not_computed": None, "source": "pipeline",
                    "delivery_ratio": min(1.0, received / expected) if expected else None})
            continue
        for rsu, total in sorted(raw[cond].v2i.items()):
            ix = total.intersection or ""
            if total.missing and rsu not in missing[total.missing]:
                missing[total.missing].append(rsu)
            t.rows.append({"condition": cond, "rsu": rsu, "intersection": names.get(ix, ix),
                           "received": None if total.missing else total.received,
                           "expected": total.expected, "delivery_ratio": total.ratio,
                           "not_computed": total.missing, "source": "raw scan"})
    for why, rsus in missing.items():
        t.note += f" Not computed for {', '.join(rsus)}: {why}."
    return t


def alerts(runs: list[StateRun]) -> tuple[Table, Table]:
    t = Table("alerts", "Alerts by rule and severity", [
        C, Column("rule", "Rule", "text"), Column("severity", "Severity", "text"),
        Column("count", "Alerts", "int", better="lower"),
        Column("escalated", "Escalated", "int", better="lower"),
        Column("flaps", "Reopened", "int"),
        Column("acknowledged", "Acknowledged", "int"),
        Column("ack_p50_s", "To ack p50", unit="s", digits=1),
        Column("ack_p95_s", "To ack p95", unit="s", digits=1),
        Column("resolved", "Resolved", "int"),
        Column("resolve_p50_s", "To resolve p50", unit="s", digits=1, better="lower"),
        Column("resolve_p95_s", "To resolve p95", unit="s", digits=1, better="lower"),
        Column("open_at_end", "Open at end", "int"),
    ], note="Every alert the pipeline raised (replay results `alerts`). In a replay nobody "
            "acknowledges, so time to acknowledge exists only for recorded operator actions.")
    false = Table("false_alarms", "False alarms (where replay expectations define them)", [
        C, Column("run", "Run", "text"), Column("expectation", "Expectation", "text"),
        Column("false_alarms", "False alarms", "int", better="lower"),
        Column("passed", "Held", "text"),
    ], note="`no_alert` expectations of scenario replays: alerts raised where the scenario "
            "says none should be.")
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for run in runs:
        for a in run.doc.get("alerts", []):
            groups[(run.condition, a.get("rule", ""), a.get("severity", ""))].append(a)
        for e in run.doc.get("expectations", []):
            if e.get("type") == "no_alert" or e.get("false_alarms"):
                false.rows.append({"condition": run.condition,
                                   "run": run.doc.get("input", {}).get("name") or run.label,
                                   "expectation": e.get("id", ""),
                                   "false_alarms": len(e.get("false_alarms") or []),
                                   "passed": "yes" if e.get("passed") else "no"})
    for (cond, rule, sev), al in sorted(groups.items()):
        ack = [a["acknowledged_at"] - a["raised_at"] for a in al
               if a.get("acknowledged_at") is not None]
        res = [a["resolved_at"] - a["raised_at"] for a in al if a.get("resolved_at") is not None]
        t.rows.append({"condition": cond, "rule": rule, "severity": sev, "count": len(al),
                       "escalated": sum(1 for a in al if a.get("escalated")),
                       "flaps": sum(int(a.get("flaps") or 0) for a in al),
                       "acknowledged": len(ack), "ack_p50_s": _q(ack, 50),
                       "ack_p95_s": _q(ack, 95), "resolved": len(res),
                       "resolve_p50_s": _q(res, 50), "resolve_p95_s": _q(res, 95),
                       "open_at_end": len(al) - len(res)})
    return t, false


def link_checks(raw: dict[str, RawFigures], all_budgets: list[Budget]) -> Table:
    """Per-link budgets on each link's samples of all vehicles pooled: what the network
    delivered, descriptive only. The verdict never reads this table (verdict.py)."""
    t = Table("link_budgets", "Budgets per link, all vehicles pooled (descriptive)", [
        C, L, Column("vehicles", "Vehicles", "int"), Column("budget", "Budget", "text"),
        Column("requirement", "Requirement", "text"), Column("observed", "Observed", "text"),
        Column("value", "Value", digits=6), Column("samples", "Samples", "int"),
        Column("within", "Within", "text"), Column("reason", "Not graded because", "text"),
        Column("binding", "Kind", "text"),
    ], note="Every vehicle's samples of a link together: a description of the network, not "
            "a grade — a link is redundancy only for its own vehicle, so pooling vehicles "
            "can hide one that misses a budget. The verdict is per vehicle (Budgets).")
    for cond, figs in raw.items():
        for name, r in sorted(figs.links.items()):
            for b in all_budgets:
                if b.per_vehicle:
                    continue
                obs = observe_link(b, r)
                t.rows.append({
                    "condition": cond, "link": name, "vehicles": len(r.vehicles),
                    "budget": b.id, "requirement": b.requirement,
                    "observed": show(b, obs.value), "value": obs.value,
                    "samples": obs.samples if obs.measured else None,
                    "within": "" if obs.value is None else "yes" if passes(b, obs.value)
                    else "no", "reason": obs.reason,
                    "binding": "site" if b.binding else "reference"})
    return t


def link_raw(raw: dict[str, RawFigures], cond: str, link: str) -> LinkRaw | None:
    figs = raw.get(cond)
    return figs.links.get(link) if figs else None
