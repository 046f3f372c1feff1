"""Grading budgets per vehicle: what a figure rests on, why it is not graded, who misses it.

A link is redundancy only for its own vehicle, so every budget is held against each vehicle in
each condition on its own: a per-link budget is met when one of *its* links meets it, a
vehicle-level one (the usable links' uplink, availability) on the vehicle's replay KPIs. Pooling
vehicles would let one vehicle's good link pass another vehicle's bad one; that is never done.

Every observation carries its sample size (samples and drive time). A figure on fewer than
``[report] min_samples`` samples, or of a vehicle with under ``[report] min_drive_s`` of drive
time, is "too little data to grade", never PASS. Every N/A carries one of the ``REASONS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from l4mon.config import ReportSettings
from l4mon.faces.report.budgets import Budget, uplink_met
from telemetry.quantiles import Quantiles

Result = Literal["pass", "fail", "n/a", "too little data"]
#: The reasons a budget is not graded, each the first words of an N/A's ``reason``.
NOT_MEASURED = "not measured by the input"
NO_REQUIREMENT = "no requirement"
APP_TRAFFIC = "application traffic is not capacity"
TOO_LITTLE = "too little data to grade"
NEEDS_REPLAY = "needs a replay"
REASONS = (NOT_MEASURED, NO_REQUIREMENT, APP_TRAFFIC, TOO_LITTLE, NEEDS_REPLAY)


class Counted(Protocol):
    """What a per-link budget reads: a vehicle's link (``VehicleLinkRaw``) or, descriptive
    only, a link of all vehicles pooled (``LinkRaw``)."""

    @property
    def rtt(self) -> Quantiles: ...
    @property
    def timeouts(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def loss_samples(self) -> int: ...
    @property
    def loss_not_measured(self) -> bool: ...
    @property
    def delay_n(self) -> int: ...
    @property
    def ul_n(self) -> int: ...
    @property
    def dl_n(self) -> int: ...
    @property
    def ul_capacity_n(self) -> int: ...
    @property
    def dl_capacity_n(self) -> int: ...
    @property
    def rtt_within(self) -> dict[float, int]: ...
    @property
    def delay_within(self) -> dict[float, int]: ...
    @property
    def ul_at_least(self) -> dict[float, int]: ...
    @property
    def dl_at_least(self) -> dict[float, int]: ...


@dataclass(frozen=True)
class Observation:
    """One figure against one budget: the value (None: not graded, see ``reason``) and how
    many samples, or seconds for a time share, it rests on."""

    value: float | None
    samples: int = 0
    seconds: float = 0.0
    reason: str | None = None

    @property
    def measured(self) -> bool:
        return self.value is not None


def _na(reason: str, detail: str) -> Observation:
    return Observation(None, reason=f"{reason}: {detail}")


def observe_link(budget: Budget, raw: Counted) -> Observation:
    """The figure of one link (one vehicle's, or pooled) a per-link budget is about."""
    m = budget.metric
    probes = raw.rtt.n + raw.timeouts
    if m in ("rtt_p95", "rtt_share_within") and not probes:
        return _na(NOT_MEASURED, "no RTT probe in these samples")
    if m == "rtt_p95":
        # Every probe unanswered is the worst round trip there is, not an absent one.
        value = raw.rtt.quantile(0.95) if raw.rtt.n else math.inf
        return Observation(value, probes)
    if m == "loss":
        if raw.loss_not_measured:
            return _na(NOT_MEASURED, "its seq numbers rows, not samples (manifest "
                       "not_measured: loss)")
        expected = raw.lost + raw.loss_samples
        if not expected:
            return _na(NOT_MEASURED, "no sequence-numbered sample")
        return Observation(raw.lost / expected, expected)
    # An unanswered probe, or a sample that never arrived, did not make it in time either.
    if m == "rtt_share_within":
        return Observation(raw.rtt_within.get(budget.limit, 0) / probes, probes)
    if m == "delay_share_within":
        if not raw.delay_n:
            return _na(NOT_MEASURED, "no sample with a synchronised sender clock")
        n = raw.delay_n + raw.lost
        return Observation(raw.delay_within.get(budget.limit, 0) / n, n)
    if m in ("ul_share_at_least", "dl_share_at_least"):
        up = m == "ul_share_at_least"
        reported, capacity = (raw.ul_n, raw.ul_capacity_n) if up else (raw.dl_n,
                                                                      raw.dl_capacity_n)
        at_least = raw.ul_at_least if up else raw.dl_at_least
        what = "UL" if up else "DL"
        if not reported:
            return _na(NOT_MEASURED, f"no {what} throughput reported")
        if not capacity:
            return _na(APP_TRAFFIC, f"its {reported:,} {what} figures are what an app "
                       "carried, not what the link could (manifest not_measured: capacity)")
        return Observation(at_least.get(budget.limit, 0) / capacity, capacity)
    raise ValueError(f"{budget.id} is graded per vehicle: use observe_vehicle")


def observe_vehicle(budget: Budget, kpis: list[dict[str, Any]]) -> Observation:
    """A vehicle-level budget over one vehicle's replay KPIs (one dict per run of it)."""
    if budget.metric == "availability":
        if not budget.target:
            return _na(NO_REQUIREMENT, "[requirements] availability_min = 0")
        seconds = up = 0.0
        for kp in kpis:
            share, span = kp.get("availability"), float(kp.get("in_service_s") or 0.0)
            if share is not None and span > 0:
                seconds += span
                up += float(share) * span
        if not seconds:
            return _na(NOT_MEASURED, "no link state was known while in service")
        return Observation(up / seconds, seconds=seconds)
    if budget.metric != "ul_usable_required":
        raise ValueError(f"{budget.id} is graded per link: use observe_link")
    required = {kp.get("ul_required_kbps") for kp in kpis}
    if required and required <= {0}:
        return _na(NO_REQUIREMENT, "its hub config's ul_required_kbps is 0")
    met, judged = uplink_met(kpis)
    if not judged:
        return _na(NOT_MEASURED, "the usable links' uplink was never reported"
                   if None not in required else "the usable links' uplink was never "
                   "reported, or the vehicle has no requirement")
    return Observation(met / judged, seconds=judged)


def passes(budget: Budget, value: float) -> bool:
    if budget.target is None:
        return value <= budget.limit
    return value >= budget.target


def short_drive(settings: ReportSettings, drive_s: float) -> str | None:
    """Why a vehicle's drive time is too little to grade any of its figures, or None."""
    if drive_s < settings.min_drive_s:
        have, need = _duration(drive_s), _duration(settings.min_drive_s)
        if have == need:  # 599 s is "10.0 min" too: say the seconds rather than "10 of 10"
            have, need = f"{drive_s:,.0f} s", f"{settings.min_drive_s:,.0f} s"
        return f"{TOO_LITTLE}: {have} of drive time (needs {need})"
    return None


def enough(obs: Observation, settings: ReportSettings, *, drive_s: float) -> str | None:
    """Why ``obs`` is too little to grade, or None when it is enough."""
    short = short_drive(settings, drive_s)
    if short is not None:
        return short
    if obs.seconds:
        if obs.seconds < settings.min_drive_s:
            return (f"{TOO_LITTLE}: {_duration(obs.seconds)} judged (needs "
                    f"{_duration(settings.min_drive_s)})")
        return None
    if obs.samples < settings.min_samples:
        return f"{TOO_LITTLE}: {obs.samples:,} samples (needs {settings.min_samples:,})"
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def show(budget: Budget, value: float | None) -> str:
    """A figure as the Budgets table words it."""
    if value is None:
        return "not measured"
    if budget.metric == "rtt_p95":
        return "no probe answered" if math.isinf(value) else f"{value:,.1f} ms"
    if budget.metric == "loss":
        return f"{value:.3%}"
    what = "time in service" if budget.metric == "availability" else (
        "vehicle time" if budget.per_vehicle else "samples")
    return f"{value:.3%} of {what}"


def best(budget: Budget, values: list[float]) -> float:
    """The figure closest to meeting the budget: the lowest cap, the highest share."""
    return min(values) if budget.target is None else max(values)


__all__ = ["APP_TRAFFIC", "NEEDS_REPLAY", "NOT_MEASURED", "NO_REQUIREMENT", "REASONS",
           "TOO_LITTLE", "Observation", "Result", "best", "enough", "observe_link",
           "observe_vehicle", "passes", "short_drive", "show"]
