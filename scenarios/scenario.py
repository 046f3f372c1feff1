"""Scenario files: what to replay, under which conditions, what to break, what must hold.

A scenario (TOML) names drive logs or a generator, the conditions, fault injections and
expectations; ``run_scenario`` replays it through the live pipeline (``scenarios.replay``) and
grades every expectation. The results document is described in docs/replay.md.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeGuard

import msgspec

from l4mon.alerts.rules import Group, RuleSet, load_rules
from l4mon.config import HubConfig, load_config
from l4mon.context import linkmap_for_replay, replay_context, with_linkmap
from l4mon.records.alert import SEVERITY_RANK, Alert
from scenarios import replay
from scenarios.sim import Fault, SimFleet
from telemetry import codec
from telemetry.drivelog import Manifest, iter_wire_messages, read_manifest
from telemetry.ranges import KBPS, RTT_MS, Range, merged
from telemetry.site import DEMO_SITE_PATH, Site, load_site
from telemetry.wire import LenientLinkSample, LinkSample

RESULTS_FORMAT: Final = "l4mon-replay-results"
RESULTS_VERSION: Final = 1
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=7 * 86_400.0)]

FaultKind = Literal["link_down", "both_links_down", "telemetry_stall", "rtt_spike",
                    "bandwidth_cap", "takeover_request", "clock_skew", "packet_loss",
                    "handover_storm", "state_stall", "broker_outage", "cell_outage"]
#: Faults the generator produces itself; the rest (and all faults on logs) are stream edits.
_SIM_FAULTS: Final = frozenset({"link_down", "both_links_down", "telemetry_stall", "rtt_spike",
                                "bandwidth_cap", "takeover_request", "clock_skew"})


class ScenarioError(ValueError):
    """A scenario file that cannot be run; names the file and the field."""


class GeneratorSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    vehicles: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 3
    seed: int = 1
    duration_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 120.0
    rate_hz: Annotated[float, msgspec.Meta(gt=0, le=50)] = 10.0
    #: "demo" for the bundled demo site, or a site TOML path relative to the scenario file.
    site: str = "demo"
    #: Generator start time (epoch s); fixed so a scenario is the same run after run.
    start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FaultSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: FaultKind
    #: The vehicle it happens to; none for ``broker_outage`` (the hub loses every message of
    #: every vehicle: its own blindness, l4mon/site_watch.py) and ``cell_outage`` (every vehicle
    #: served by the cell).
    vehicle: str | None = None
    #: cell_outage: the cell that goes dark. Its area has no service from any other cell (the
    #: rural case): a link that reports this cell reports no service instead; a vehicle whose
    #: every link does is cut off (nothing it sends arrives).
    cell: str | None = None
    at_s: Seconds
    duration_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)]
    id: str | None = None
    link: Literal["l5g", "lte"] | str | None = None
    #: rtt_spike: ms added; bandwidth_cap: kbit/s; clock_skew: s; packet_loss: ratio 0-1.
    value: float | None = None
    #: Start when the vehicle first enters this intersection zone (at or after ``at_s``),
    #: by the positions it reports, instead of at ``at_s`` itself.
    at_intersection: str | None = None


class Expectation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["alert", "no_alert", "kpi", "incident"]
    id: str | None = None
    rule: str | None = None
    severity: Literal["info", "warning", "takeover"] | None = None
    vehicle: str | None = None
    link: str | None = None
    #: alert: within this many seconds of the fault's start (after_fault) or of at_s.
    after_fault: str | None = None
    at_s: Seconds | None = None
    within_s: Seconds | None = None
    #: no_alert: the window, seconds from the start (default: the whole run).
    from_s: Seconds | None = None
    to_s: Seconds | None = None
    #: kpi: a figure from the results' kpis, bounded by min and/or max.
    metric: Literal["rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "availability", "loss_ratio",
                    "ul_kbps_mean", "time_all_links_down_s", "handover_success_rate",
                    "ping_pong_rate", "interruption_p95_ms",
                    "ul_requirement_met"] | None = None
    min: float | None = None
    max: float | None = None
    #: incident: the grouping (a ``[[group]]`` of the rules); exactly ``count`` incidents of it
    #: open in the window (from_s..to_s; with after_fault, the first within within_s of it),
    #: each with at least ``min_vehicles`` vehicles, and at most ``ungrouped_max`` alerts of
    #: its rules raised in the window outside any incident.
    group: str | None = None
    count: Annotated[int, msgspec.Meta(ge=0)] = 1
    min_vehicles: Annotated[int, msgspec.Meta(ge=1)] | None = None
    ungrouped_max: Annotated[int, msgspec.Meta(ge=0)] | None = None


class ScenarioSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    #: Generator: a condition model name (scenarios.conditions). Logs: ignored (the logs'
    #: manifests carry their own conditions).
    conditions: str = "daylight"
    generator: GeneratorSpec | None = None
    logs: list[str] = []
    #: Hub config for the replay (relative path); default: the built-in defaults.
    config: str | None = None
    #: Site file for place-based faults on logs ("demo" for the bundled one); the generator's
    #: site is used for generated runs.
    site: str | None = None
    fault: list[FaultSpec] = []
    expect: list[Expectation] = []


def load_scenario(path: str | Path) -> ScenarioSpec:
    path = Path(path)
    try:
        spec = msgspec.convert(tomllib.loads(path.read_text(encoding="utf-8")), ScenarioSpec)
    except OSError as error:
        raise ScenarioError(f"cannot read scenario {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    except msgspec.ValidationError as error:
        raise ScenarioError(f"{path}: {error}") from None
    if (spec.generator is None) == (not spec.logs):
        raise ScenarioError(f"{path}: give either [generator] or logs, not both or neither")
    for f in spec.fault:
        fleet_wide = f.kind in ("broker_outage", "cell_outage")
        if (f.vehicle is None) != fleet_wide:
            raise ScenarioError(f"{path}: a {f.kind} fault " + (
                "concerns no one vehicle (it hits every vehicle it reaches)" if fleet_wide
                else "needs vehicle"))
        if fleet_wide and f.at_intersection is not None:
            raise ScenarioError(f"{path}: {f.kind} cannot be placed at an intersection")
        if (f.cell is None) == (f.kind == "cell_outage"):
            raise ScenarioError(f"{path}: " + ("a cell_outage fault needs cell"
                                               if f.kind == "cell_outage"
                                               else f"a {f.kind} fault takes no cell"))
        if f.kind == "link_down" and f.link is None:
            raise ScenarioError(f"{path}: a link_down fault needs link")
        if f.at_intersection is not None and f.kind == "takeover_request":
            raise ScenarioError(f"{path}: takeover_request cannot be placed at an intersection")
    ids = [f.id for f in spec.fault if f.id]
    if len(ids) != len(set(ids)):
        raise ScenarioError(f"{path}: fault ids must be unique")
    for e in spec.expect:
        if e.type == "alert" and (e.within_s is None
                                  or (e.after_fault is None) == (e.at_s is None)):
            raise ScenarioError(f"{path}: an alert expectation needs within_s and one of "
                                "after_fault or at_s")
        if e.after_fault is not None and e.after_fault not in ids:
            raise ScenarioError(f"{path}: expectation refers to unknown fault {e.after_fault!r}")
        if e.type == "kpi" and (e.metric is None or (e.min is None and e.max is None)):
            raise ScenarioError(f"{path}: a kpi expectation needs metric and min and/or max")
        if e.type == "incident" and e.group is None:
            raise ScenarioError(f"{path}: an incident expectation needs group")
        if e.type in ("alert", "no_alert") and e.rule is None and e.severity is None:
            raise ScenarioError(f"{path}: an {e.type} expectation needs rule or severity")
    return spec


# -- the message stream ---------------------------------------------------------------------------

def _generated(spec: ScenarioSpec, base: Path) -> tuple[Iterator[replay.Delivery], Site, dict]:
    gen = spec.generator
    assert gen is not None
    site = load_site(DEMO_SITE_PATH if gen.site == "demo" else base / gen.site)
    kwargs: dict[str, Any] = {}
    conditions: dict[str, Any] = {"model": spec.conditions}
    try:
        from scenarios.conditions import model_for
    except ImportError:  # pragma: no cover - the condition models arrive later
        model_for = None
    if model_for is not None:
        model = model_for(spec.conditions)
        kwargs["conditions"] = model
        conditions.update(msgspec.to_builtins(model.conditions))
    fleet = SimFleet(site=site, vehicles=gen.vehicles, rate_hz=gen.rate_hz, seed=gen.seed,
                     start=gen.start, **kwargs)
    for f in spec.fault:
        if f.kind in _SIM_FAULTS and f.at_intersection is None:  # placed faults are edits
            fleet.inject(Fault(kind=f.kind, vehicle=f.vehicle, link=f.link,
                               start=gen.start + f.at_s, duration=f.duration_s, value=f.value))
    step = 0.05  # the fleet's own grid decides message times; this only chunks the calls

    def stream() -> Iterator[replay.Delivery]:
        n = 1
        end = gen.start + gen.duration_s
        while True:
            now = min(gen.start + n * step, end)
            for topic, payload in fleet.advance(now):
                yield now, topic, payload, None
            if now >= end:
                return
            n += 1

    return stream(), site, conditions


def _logs(spec: ScenarioSpec, base: Path) -> tuple[Iterator[replay.Delivery], list[Manifest]]:
    manifests = [read_manifest(base / p) for p in spec.logs]
    streams = [iter_wire_messages(base / p) for p in spec.logs]  # streamed: any size
    import heapq
    return heapq.merge(*streams, key=lambda d: d[0]), manifests


def _edited(stream: Iterator[replay.Delivery], faults: list[FaultSpec], start: float,
            *, generator: bool, site: Site | None = None,
            started: dict[int, float] | None = None) -> Iterator[replay.Delivery]:
    """Apply the faults that are stream edits (all of them for logs, and every fault placed at
    an intersection). ``started`` receives each fault's actual start offset, by index."""
    started = {} if started is None else started
    edits = [(n, f) for n, f in enumerate(faults)
             if not (generator and f.kind in _SIM_FAULTS and f.at_intersection is None)]
    for n, f in enumerate(faults):
        if f.at_intersection is None:
            started[n] = f.at_s
    zones = {}
    for _, f in edits:
        if f.at_intersection is not None:
            zone = site.intersection(f.at_intersection) if site is not None else None
            if zone is None:
                raise ScenarioError(f"fault at unknown intersection {f.at_intersection!r} "
                                    "(set the scenario's site)")
            zones[f.at_intersection] = zone
    if not edits:
        yield from stream
        return
    outages = [(n, f) for n, f in edits if f.kind == "cell_outage"]
    cut = _CellOutages()
    for recv_time, topic, original, content_type in stream:
        payload = original
        offset = recv_time - start
        parts = topic.split("/")
        vehicle = parts[4] if len(parts) > 4 and parts[3] == "vehicle" else None
        link = parts[6] if len(parts) == 7 and parts[5] == "link" else None
        if outages and vehicle is not None:
            dark = {f.cell for n, f in outages if started[n] <= offset < started[n] + f.duration_s}
            edited = cut.edit(vehicle, link, payload, content_type, dark)
            if edited is None:
                continue  # the vehicle is cut off: nothing it sends arrives
            payload = edited
        if zones and parts[-1] == "state":
            where = codec.decode(payload, content_type)
            for n, f in edits:
                if n not in started and f.vehicle == vehicle and offset >= f.at_s \
                        and zones[f.at_intersection].contains(where["lat"], where["lon"]):
                    started[n] = offset  # the vehicle has just entered the zone
        drop = False
        for n, f in edits:
            begin = started.get(n)
            if begin is None or not begin <= offset < begin + f.duration_s:
                continue
            if f.kind == "broker_outage":  # the hub receives nothing at all
                drop = True
                continue
            if vehicle != f.vehicle:
                continue
            on_link = link is not None and (f.link is None or f.link == link)
            if f.kind == "state_stall":
                drop = drop or parts[-1] == "state"  # the vehicle's app hangs; modems report
            elif f.kind == "telemetry_stall":
                drop = True
            elif f.kind in ("both_links_down", "link_down"):
                drop = drop or (on_link if f.kind == "link_down" else link is not None)
            elif f.kind == "packet_loss":
                if on_link:
                    ratio = 0.2 if f.value is None else f.value
                    digest = hashlib.blake2s(f"{topic}|{recv_time!r}".encode(), digest_size=4)
                    drop = drop or int.from_bytes(digest.digest(), "big") / 2**32 < ratio
            elif f.kind in ("rtt_spike", "bandwidth_cap", "handover_storm") and on_link:
                payload = _edit_link(f, payload, offset, content_type)
            elif f.kind == "clock_skew":
                payload = _edit_ts(payload, 5.0 if f.value is None else f.value, content_type)
        if not drop:
            yield recv_time, topic, payload, content_type


class _CellOutages:
    """Which links of each vehicle are in a dark cell's area, by the cell they last reported."""

    def __init__(self) -> None:
        self.links: dict[str, set[str]] = {}  # vehicle -> links it has
        self.dark: dict[str, set[str]] = {}  # vehicle -> links in a dark cell's area

    def edit(self, vehicle: str, link: str | None, payload: bytes, content_type: str | None,
             dark_cells: set[str | None]) -> bytes | None:
        """The message as it arrives under the outage, or None when it cannot arrive."""
        if not dark_cells:
            self.dark.clear()
            return payload
        if link is None:  # state and events go out on any link still served
            return None if self._cut_off(vehicle) else payload
        self.links.setdefault(vehicle, set()).add(link)
        msg = _as_sent(payload, content_type)
        dark = self.dark.setdefault(vehicle, set())
        if msg.cell_id is not None and msg.cell_id in dark_cells:
            dark.add(link)
        elif msg.cell_id is not None:
            dark.discard(link)  # the vehicle drove out of the dark area
        if link not in dark:
            return payload
        if self._cut_off(vehicle):
            return None
        # The modem reports that it has no service; the report travels on the other link.
        return codec.encode(LinkSample(ts=msg.ts, seq=msg.seq, rat="none", probe=False,
                                       sender_clock=msg.sender_clock), content_type)

    def _cut_off(self, vehicle: str) -> bool:
        links = self.links.get(vehicle)
        return bool(links) and links <= self.dark.get(vehicle, set())


def _as_sent(payload: bytes, content_type: str | None) -> LinkSample:
    """A recorded link sample as its sender wrote it, a figure outside its physical range
    included (a recording keeps the payload as sent): a fault edits what was sent, and the
    hub screens the edited payload as it would have the original (telemetry/ranges.py)."""
    return LinkSample(**msgspec.structs.asdict(
        codec.decode(payload, content_type, LenientLinkSample)))


def _edit_link(f: FaultSpec, payload: bytes, offset: float, content_type: str | None) -> bytes:
    msg = _as_sent(payload, content_type)
    # A marker (a figure outside its physical range) is no measurement to slow down or cap:
    # it stays as sent, for the hub to screen.
    if f.kind == "rtt_spike" and _measured(msg.rtt_ms, RTT_MS):
        msg = msgspec.structs.replace(msg, rtt_ms=msg.rtt_ms + (250.0 if f.value is None
                                                               else f.value))
    elif f.kind == "bandwidth_cap" and _measured(msg.ul_kbps, KBPS):
        msg = msgspec.structs.replace(msg, ul_kbps=min(msg.ul_kbps, 500.0 if f.value is None
                                                       else f.value))
    elif f.kind == "handover_storm":
        # Flip between the serving cell and a neighbour every half second: a ping-pong storm.
        flip = math.floor((offset - f.at_s) * 2) % 2 == 1
        msg = msgspec.structs.replace(msg, cell_id=f"{msg.cell_id}-nb" if flip else msg.cell_id)
    return codec.encode(msg, content_type)


def _measured(value: float | None, bounds: Range) -> TypeGuard[float]:
    return value is not None and bounds.reason(value) is None


def _edit_ts(payload: bytes, skew: float, content_type: str | None) -> bytes:
    data = codec.decode(payload, content_type)
    data["ts"] = data["ts"] + skew
    return codec.encode(data, content_type)


# -- grading --------------------------------------------------------------------------------------

def _matches(alert: Alert, e: Expectation) -> bool:
    if e.rule is not None and alert.rule != e.rule:
        return False
    if e.severity is not None and SEVERITY_RANK[alert.severity] < SEVERITY_RANK[e.severity]:
        return False
    if e.vehicle is not None and alert.vehicle != e.vehicle:
        return False
    return e.link is None or alert.link == e.link


def grade(spec: ScenarioSpec, outcome: replay.Outcome, kpis: dict[str, Any],
          start: float, started: dict[int, float] | None = None,
          groups: Iterable[Group] = ()) -> list[dict[str, Any]]:
    """Check every expectation; ``started`` holds faults' actual start offsets by index;
    ``groups`` are the rules' groupings (incident expectations)."""
    started = started or {}
    group_rules = {g.name: g.rules for g in groups}
    faults = {f.id: started.get(n, f.at_s) for n, f in enumerate(spec.fault) if f.id}
    results = []
    for n, e in enumerate(spec.expect):
        name = e.id or f"{e.type}-{n + 1}"
        if e.type == "alert":
            origin = faults[e.after_fault] if e.after_fault else e.at_s
            assert e.within_s is not None
            if origin is None:  # a placed fault whose vehicle never reached the place
                results.append({"id": name, "type": e.type, "passed": False,
                                "observed_delay_s": None,
                                "detail": f"fault {e.after_fault} never started"})
                continue
            hits = [a for a in outcome.alerts if _matches(a, e)
                    and origin <= a.raised_at - start <= origin + e.within_s]
            first = min((a.raised_at - start - origin for a in hits), default=None)
            results.append({"id": name, "type": e.type, "passed": bool(hits),
                            "observed_delay_s": None if first is None else round(first, 3),
                            "detail": f"{len(hits)} matching alert(s) within {e.within_s:g} s"})
        elif e.type == "no_alert":
            low = e.from_s or 0.0
            high = e.to_s if e.to_s is not None else math.inf
            hits = [a for a in outcome.alerts if _matches(a, e)
                    and low <= a.raised_at - start <= high]
            results.append({"id": name, "type": e.type, "passed": not hits,
                            "false_alarms": [a.id for a in hits],
                            "detail": f"{len(hits)} alert(s) in the window"})
        elif e.type == "incident":
            origin = faults[e.after_fault] if e.after_fault else e.at_s
            results.append(_grade_incident(e, name, outcome.alerts, start, origin,
                                           group_rules.get(e.group or "")))
        else:
            values = _kpi_values(kpis, e)
            # A figure a link does not have (no handovers, no answered probe) is not
            # applicable, not a failure; but at least one link must have it.
            measured = [(k, v) for k, v in values if v is not None]
            bad = [(k, v) for k, v in measured
                   if (e.min is not None and v < e.min) or (e.max is not None and v > e.max)]
            # Not measured is not within bounds: a bound on a figure the input cannot give
            # fails, so the scenario's author sees it (an import's loss, say), never a pass.
            unmeasured = (f"not measured: the input does not measure {e.metric} "
                          "(its manifest's not_measured: loss)"
                          if e.metric == "loss_ratio" and "loss" in outcome.not_measured
                          else "no matching vehicle/link has this figure (not measured, or "
                          "none applies)")
            results.append({"id": name, "type": e.type, "metric": e.metric,
                            "passed": bool(measured) and not bad,
                            "observed": {k: v for k, v in values},
                            "detail": unmeasured
                            if not measured else f"{len(bad)} of {len(measured)} out of bounds"})
    return results


def _incidents(alerts: list[Alert], start: float) -> list[dict[str, Any]]:
    """Each incident of the run with its members, as the alerts' journal rows say."""
    members: dict[int, list[Alert]] = {}
    for a in alerts:
        if a.incident is not None:
            members.setdefault(a.incident, []).append(a)
    out = []
    for incident, group in sorted(members.items()):
        opened = min(a.raised_at for a in group)
        out.append({"id": incident, "group": group[0].incident_group,
                    "cause": group[0].incident_cause, "opened_offset_s": round(opened - start, 3),
                    "vehicles": sorted({a.vehicle for a in group if a.vehicle}),
                    "alerts": sorted(a.id for a in group),
                    "severity": max((a.severity for a in group), key=SEVERITY_RANK.__getitem__)})
    return out


def _grade_incident(e: Expectation, name: str, alerts: list[Alert], start: float,
                    origin: float | None, rules: frozenset[str] | None) -> dict[str, Any]:
    """One cause, one incident: how many incidents of the grouping opened in the window, how
    many vehicles each holds, and how many of its rules' alerts stayed outside any."""
    out: dict[str, Any] = {"id": name, "type": e.type, "group": e.group}
    if rules is None:
        return {**out, "passed": False, "detail": f"the rules have no group {e.group!r}"}
    low = e.from_s or 0.0
    high = e.to_s if e.to_s is not None else math.inf
    members: dict[int, list[Alert]] = {}
    for a in alerts:
        if a.incident is not None and a.incident_group == e.group:
            members.setdefault(a.incident, []).append(a)
    opened = {i: min(a.raised_at for a in group) - start for i, group in members.items()}
    incidents = sorted((i for i, t in opened.items() if low <= t <= high), key=opened.get)
    vehicles = {i: sorted({a.vehicle for a in members[i] if a.vehicle}) for i in incidents}
    ungrouped = [a.id for a in alerts if a.rule in rules and a.incident is None
                 and low <= a.raised_at - start <= high]
    failures = []
    if len(incidents) != e.count:
        failures.append(f"{len(incidents)} incident(s), expected {e.count}")
    small = [i for i in incidents if e.min_vehicles and len(vehicles[i]) < e.min_vehicles]
    if small:
        failures.append(f"incident(s) {small} with fewer than {e.min_vehicles} vehicles")
    if e.ungrouped_max is not None and len(ungrouped) > e.ungrouped_max:
        failures.append(f"{len(ungrouped)} alert(s) of the group's rules outside any incident")
    delay = None
    if e.after_fault is not None or e.at_s is not None:
        if origin is None:
            failures.append(f"fault {e.after_fault} never started")
        elif incidents:
            delay = round(opened[incidents[0]] - origin, 3)
            if not 0.0 <= delay <= (e.within_s if e.within_s is not None else math.inf):
                failures.append(f"first incident {delay:g} s after the fault")
    return {**out, "passed": not failures, "incidents": incidents,
            "vehicles": {str(i): v for i, v in vehicles.items()},
            "ungrouped_alerts": ungrouped, "observed_delay_s": delay,
            "detail": "; ".join(failures) or (
                f"{len(incidents)} incident(s): " + ", ".join(
                    f"{members[i][0].incident_cause}, {len(vehicles[i])} vehicles"
                    for i in incidents))}


def _kpi_values(kpis: dict[str, Any], e: Expectation) -> list[tuple[str, float | None]]:
    out = []
    for vid, vehicle in kpis.items():
        if e.vehicle is not None and vid != e.vehicle:
            continue
        if e.metric in ("time_all_links_down_s", "ul_requirement_met") or (
                e.metric == "availability" and e.link is None):
            out.append((vid, vehicle[e.metric]))
            continue
        for name, link in vehicle["links"].items():
            if e.link is None or name == e.link:
                out.append((f"{vid}/{name}", link.get(e.metric or "")))
    return out


# -- results --------------------------------------------------------------------------------------

def results_document(*, input_info: dict[str, Any], outcome: replay.Outcome,
                     expectations: list[dict[str, Any]]) -> dict[str, Any]:
    start = outcome.start
    verdict = "no_expectations" if not expectations else \
        "pass" if all(e["passed"] for e in expectations) else "fail"
    return {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION,
        "input": input_info, "verdict": verdict, "expectations": expectations,
        # duration_s: the drives' own time (the sessions'), not the calendar time they span
        "span": {"start": start, "end": outcome.end,
                 "duration_s": round(outcome.active_s, 3),
                 "calendar_s": round(outcome.end - start, 3), "messages": outcome.messages},
        "sessions": [session.to_dict() for session in outcome.sessions],
        "alerts": [{
            "id": a.id, "rule": a.rule, "severity": a.severity, "vehicle": a.vehicle,
            "link": a.link, "rsu": a.rsu, "intersection": a.intersection, "detail": a.detail,
            "state": a.state,
            "raised_at": a.raised_at, "raised_offset_s": round(a.raised_at - start, 3),
            "acknowledged_at": a.acknowledged_at, "resolved_at": a.resolved_at,
            "resolved_by": a.resolved_by, "escalated": a.escalated, "flaps": a.flaps,
            "incident": a.incident, "incident_group": a.incident_group,
            "incident_cause": a.incident_cause,
        } for a in outcome.alerts],
        "incidents": _incidents(outcome.alerts, start),
        "handovers": [{"vehicle": vehicle, "link": link, "intersection": intersection,
                       **msgspec.to_builtins(record), "offset_s": round(record.at - start, 3)}
                      for vehicle, link, intersection, record in outcome.handovers],
        "kpis": replay.kpis(outcome),
        "intersections": outcome.hub.intersections.snapshot(outcome.end),
        "quarantine": dict(sorted(outcome.hub.quarantine.counts.items())),
        # the recorded commands and their answers' times (l4mon/commands/trail.py)
        "commands": outcome.commands,
    }


class Prepared(msgspec.Struct):
    """A scenario or log ready to replay: its message stream and what to grade it with."""

    stream: Any
    start: float
    started: dict[int, float]
    config: HubConfig
    site: Site | None
    info: dict[str, Any]
    spec: ScenarioSpec | None
    rules: Any = None  # list[Rule] a recording's hub ran with; None: the config's own
    end: float | None = None  # the input's last receive time, where known (for progress)


def prepare(path: str | Path, *, config: HubConfig | None = None,
            site: Site | None = None, linkmap: str | None = None) -> Prepared:
    """Open a scenario file or a drive log directory for replay.

    A drive log replays with the hub config, rules and site it was recorded with (when it
    kept them: l4mon/context.py); ``config`` and ``site`` override, for logs and scenarios.
    ``linkmap``: the map to look ahead on (a log recorded with one uses it when it is still
    there, unchanged), under the drive's own conditions.
    """
    path = Path(path)
    if not path.is_file():
        if not path.exists():
            raise ScenarioError(f"{path}: no such file or directory")
        manifest = read_manifest(path)
        ctx = replay_context(manifest, config=config, site=site)
        map_path, map_said = linkmap_for_replay(manifest, linkmap)
        info = {"kind": "log", "path": str(path), "site": manifest.site,
                "conditions": msgspec.to_builtins(manifest.conditions),
                "sources": [manifest.source],
                "not_measured": list(manifest.not_measured),
                # figures the importer found outside their physical range, set to None
                "fields_not_measured": merged([manifest.fields_not_measured]),
                "context": {"config": "given" if config is not None else
                            "recorded" if manifest.hub_config else "defaults",
                            "site": ctx.site.name if ctx.site is not None else None,
                            "linkmap": map_said}}
        cfg = with_linkmap(ctx.config, map_path, manifest.conditions.weather,
                           manifest.conditions.light) if map_path or linkmap is not None \
            else ctx.config
        return Prepared(stream=iter_wire_messages(path), start=manifest.start or 0.0,
                        started={}, config=cfg, site=ctx.site, info=info, spec=None,
                        rules=ctx.rules, end=manifest.end)
    spec = load_scenario(path)
    base = path.parent
    rules = None
    if config is None and spec.config:
        config = load_config(base / spec.config)
    if spec.generator is not None:
        # the generator's own site: its vehicles drive on it, whatever --site says
        stream, site, conditions = _generated(spec, base)
        start = spec.generator.start
        end: float | None = start + spec.generator.duration_s
        sources: list[dict[str, Any]] = [{"kind": "generator",
                                          **msgspec.to_builtins(spec.generator)}]
        fields_not_measured: dict[str, dict[str, int]] = {}
        quantities: list[str] = []
        site_name = site.name
        config = config or HubConfig()
    else:
        stream, manifests = _logs(spec, base)
        if site is None and spec.site is not None:
            site = load_site(DEMO_SITE_PATH if spec.site == "demo" else base / spec.site)
        if config is None:  # the logs' own, as `l4mon replay LOG` runs them
            config, rules = _logs_config(spec, manifests)
        # What a log's source does not measure stays unmeasured in the replay (an import's
        # loss is null, never the 0 its row numbers would give): one log's is all of them.
        quantities = sorted({q for m in manifests for q in m.not_measured})
        names = {m.site for m in manifests if m.site}
        site_name = next(iter(names)) if len(names) == 1 else None
        conditions = msgspec.to_builtins(manifests[0].conditions)
        starts = [m.start for m in manifests if m.start is not None]
        start = min(starts) if starts else 0.0
        ends = [m.end for m in manifests if m.end is not None]
        end = max(ends) if ends else None
        sources = [m.source for m in manifests]
        fields_not_measured = merged(m.fields_not_measured for m in manifests)
    started: dict[int, float] = {}
    stream = _edited(stream, spec.fault, start, generator=spec.generator is not None,
                     site=site, started=started)
    if linkmap is not None:
        config = with_linkmap(config, linkmap, conditions.get("weather", "unknown"),
                              conditions.get("light", "unknown"))
    info = {"kind": "scenario", "path": str(path), "name": spec.name,
            "description": spec.description, "conditions": conditions, "sources": sources,
            "faults": [msgspec.to_builtins(f) for f in spec.fault],
            "site": site_name, "not_measured": quantities,
            "fields_not_measured": fields_not_measured,
            "context": {"linkmap": f"given ({linkmap})" if linkmap else "none"}}
    return Prepared(stream=stream, start=start, started=started, config=config, site=site,
                    info=info, spec=spec, rules=rules, end=end)


def _logs_config(spec: ScenarioSpec, manifests: list[Manifest]) -> tuple[HubConfig, Any]:
    """The hub config (and rules) the scenario's logs were recorded or imported with: a
    phone trace's "no uplink requirement" holds in its scenario as in its own replay. Logs
    that disagree need the scenario to say which (``config``)."""
    kept = {msgspec.json.encode(m.hub_config, order="sorted") for m in manifests}
    if len(kept) > 1:
        raise ScenarioError(f"scenario {spec.name!r}: its logs were made with different hub "
                            "configs; give the scenario a config file (config = \"...\")")
    ctx = replay_context(manifests[0])
    return ctx.config, ctx.rules


def run_prepared(prepared: Prepared, *, before_batch: replay.Hook | None = None
                 ) -> dict[str, Any]:
    outcome = replay.run(prepared.stream, config=prepared.config, site=prepared.site,
                         before_batch=before_batch, rules=prepared.rules,
                         not_measured=prepared.info.get("not_measured", ()))
    kpis = replay.kpis(outcome)
    start = prepared.start if prepared.spec is not None else outcome.start
    rules = prepared.rules if isinstance(prepared.rules, RuleSet) \
        else load_rules(prepared.config.alerts.rules or None)
    expectations = grade(prepared.spec, outcome, kpis, start, prepared.started,
                         groups=rules.groups) if prepared.spec else []
    return results_document(input_info=prepared.info, outcome=outcome,
                            expectations=expectations)


def run_scenario(path: str | Path, *, config: HubConfig | None = None,
                 site: Site | None = None) -> dict[str, Any]:
    return run_prepared(prepare(path, config=config, site=site))


def run_log(path: str | Path, *, config: HubConfig | None = None,
            site: Site | None = None, linkmap: str | None = None) -> dict[str, Any]:
    return run_prepared(prepare(path, config=config, site=site, linkmap=linkmap))


def encode_results(doc: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, so the same replay gives the same bytes."""
    return msgspec.json.format(msgspec.json.encode(doc, order="sorted"), indent=2) + b"\n"
