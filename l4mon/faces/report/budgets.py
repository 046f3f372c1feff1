"""The budgets a report grades figures against, each with where it comes from.

Two kinds: the site's own thresholds from the hub config ([links], [requirements]) — these are
what the service was set up to deliver and decide the summary verdict — and 3GPP figures for
remote and tele-operated driving, shown as references a reviewer will ask about. The 3GPP
values are service requirements for an end-to-end path; our probes measure the vehicle's own
round trip and one-way delay over the radio link and the network behind it, which is the part
of that path the mobile network answers for. Bracketed values in the study are "[to be
confirmed]" in the document itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from l4mon.config import HubConfig

Metric = Literal["rtt_share_within", "delay_share_within", "ul_share_at_least",
                 "dl_share_at_least", "rtt_p95", "loss", "ul_usable_required",
                 "availability"]
#: Graded per vehicle from the pipeline's states (replay KPIs), not per link.
VEHICLE_METRICS: frozenset[str] = frozenset({"ul_usable_required", "availability"})
#: How the Budgets table names the "link" of a vehicle-level row.
USABLE_LINKS = "usable links together"

TR_22_856 = ("3GPP TR 22.856 (Rel-19, v19.2.0), Feasibility Study on Localized Mobile "
             "Metaverse Services: KPI table of the use case \"Metaverse-based Tele-Operated "
             "Driving\", UL row (real-time video/sensor data): max end-to-end latency [100] ms, "
             "reliability 99 %, user-experienced data rate [10-50] Mbit/s")
TR_22_856_DL = ("3GPP TR 22.856 (Rel-19, v19.2.0), the same KPI table, DL row (commands): max "
                "end-to-end latency [20] ms, reliability 99.999 %, user-experienced data rate "
                "[0.1-0.4] Mbit/s")
TS_22_186 = ("3GPP TS 22.186 (v18.0.1), Enhancement of 3GPP support for V2X scenarios: §5.5 "
             "Remote driving, Table 5.5-1 [R.5.5-002], information exchange between a UE "
             "supporting V2X application and a V2X application server: max end-to-end latency "
             "5 ms, reliability 99.999 %, data rate UL 25 Mbit/s, DL 1 Mbit/s ([R.5.5-001]: "
             "vehicle speed up to 250 km/h)")


@dataclass(frozen=True)
class Budget:
    id: str
    title: str
    metric: Metric
    limit: float  # ms, kbit/s or ratio, by metric
    target: float | None  # the share that must hold (share metrics); None for caps
    source: str
    binding: bool  # the site's own: decides the verdict
    unit: str = ""

    @property
    def per_vehicle(self) -> bool:
        return self.metric in VEHICLE_METRICS

    @property
    def requirement(self) -> str:
        if self.metric == "rtt_p95":
            return f"RTT p95 ≤ {self.limit:g} ms"
        if self.metric == "loss":
            return f"loss ≤ {self.limit:.1%}"
        if self.metric == "availability":
            return f"a usable link in ≥ {100 * (self.target or 0):g} % of time in service"
        what = {"rtt_share_within": f"RTT ≤ {self.limit:g} ms",
                "delay_share_within": f"one-way delay ≤ {self.limit:g} ms",
                "ul_share_at_least": f"UL ≥ {self.limit / 1000:g} Mbit/s",
                "dl_share_at_least": f"DL ≥ {self.limit / 1000:g} Mbit/s",
                "ul_usable_required": "UL of the usable links summed ≥ the vehicle's "
                                      "requirement"}[self.metric]
        of = "of vehicle time" if self.per_vehicle else "of samples"
        return f"{what} in ≥ {100 * (self.target or 0):g} % {of}"


def budgets(config: HubConfig) -> list[Budget]:
    links, req = config.links, config.requirements
    site = []
    if links.degraded.rtt_p95_ms is not None:
        site.append(Budget("site-rtt-p95", "RTT p95 under the degraded threshold", "rtt_p95",
                           links.degraded.rtt_p95_ms, None,
                           "hub config [links] degraded.rtt_p95_ms", True, "ms"))
    if links.degraded.loss_ratio is not None:
        site.append(Budget("site-loss", "Loss under the degraded threshold", "loss",
                           links.degraded.loss_ratio, None,
                           "hub config [links] degraded.loss_ratio", True))
    # One definition with the uplink_below_requirement alert rule: the video rides whichever
    # links are usable, so their uplink is summed, and judged at the pipeline's ticks.
    site.append(Budget("site-ul-required", "Uplink meets the vehicles' requirement",
                       "ul_usable_required", req.ul_required_kbps, 0.99,
                       "hub config [requirements] ul_required_kbps of each vehicle's log (its "
                       "recorded or imported config, or --config; per-vehicle overrides "
                       "applied; 0: no requirement), summed over the ok or degraded "
                       "links as the uplink_below_requirement alert rule does; 99 % as "
                       "TR 22.856's UL reliability", True, "kbit/s"))
    site.append(Budget("site-availability", "Each vehicle reachable over a usable link",
                       "availability", 0.0, req.availability_min,
                       f"hub config [requirements] availability_min ({req.availability_min:g}"
                       "; 0: none); the vehicle's replay KPI `availability`: time with an ok or "
                       "degraded link over its time in service with its links' state known",
                       True))
    return [*site,
            Budget("tr22856-ul-delay", "Tele-operated driving UL latency (one-way)",
                   "delay_share_within", 100.0, 0.99, TR_22_856, False, "ms"),
            Budget("tr22856-ul-rtt", "Tele-operated driving UL latency (RTT, conservative)",
                   "rtt_share_within", 100.0, 0.99,
                   TR_22_856 + "; graded on RTT, which bounds the one-way delay from above "
                   "and needs no clock sync", False, "ms"),
            Budget("tr22856-ul-rate", "Tele-operated driving UL data rate (low end)",
                   "ul_share_at_least", 10_000.0, 0.99, TR_22_856, False, "kbit/s"),
            Budget("tr22856-dl-rate", "Tele-operated driving DL data rate (low end)",
                   "dl_share_at_least", 100.0, 0.99999, TR_22_856_DL, False, "kbit/s"),
            Budget("ts22186-latency", "Remote driving latency (one-way)",
                   "delay_share_within", 5.0, 0.99999, TS_22_186, False, "ms"),
            Budget("ts22186-ul", "Remote driving UL data rate", "ul_share_at_least",
                   25_000.0, 0.99999, TS_22_186, False, "kbit/s"),
            Budget("ts22186-dl", "Remote driving DL data rate", "dl_share_at_least",
                   1_000.0, 0.99999, TS_22_186, False, "kbit/s")]


def thresholds(all_budgets: list[Budget]) -> dict[str, tuple[float, ...]]:
    """The limits exact counts must be kept for while scanning."""
    pick = {"rtt_share_within": "rtt", "delay_share_within": "delay",
            "ul_share_at_least": "ul", "dl_share_at_least": "dl"}
    out: dict[str, set[float]] = {v: set() for v in pick.values()}
    for b in all_budgets:
        if b.metric in pick:
            out[pick[b.metric]].add(b.limit)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def observe_vehicles(budget: Budget, kpis: list[dict[str, Any]]) -> float | None:
    """The uplink share over replay KPIs (one dict per vehicle), time-weighted: descriptive;
    the verdict grades each vehicle alone (grading.py)."""
    if budget.metric != "ul_usable_required":
        raise ValueError(f"{budget.id} is graded per link: use observe")
    met, judged = uplink_met(kpis)
    return met / judged if judged else None


def uplink_met(kpis: list[dict[str, Any]]) -> tuple[float, float]:
    """(seconds the uplink requirement was met, seconds it was judged) over replay KPIs: the
    one weighting of the descriptive table and the per-vehicle verdict."""
    judged = met = 0.0
    for kp in kpis:
        seconds, share = kp.get("ul_requirement_judged_s"), kp.get("ul_requirement_met")
        if seconds and share is not None:
            judged += float(seconds)
            met += float(share) * float(seconds)
    return met, judged
