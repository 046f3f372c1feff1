"""The facts a rule condition may name, per scope, computed from fleet state at a given time.

Each scope's fact names are listed once (``*_FACTS``) so rules are validated against them when
loaded; the classes compute exactly those names. Missing values are ``None``.
"""

from __future__ import annotations

from typing import Final

from telemetry.fleet import RsuTrack
from telemetry.link import LinkTrack
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE
from telemetry.vehicle import VehicleTrack
from telemetry.wire import VehicleEvent

VEHICLE_FACTS: Final = frozenset({
    "connectivity", "telemetry", "mode", "speed_mps", "telemetry_age_s", "links_total",
    "links_ok", "links_degraded", "links_down", "ul_kbps_usable", "ul_required_kbps",
    "clock_suspect", "site",
})
LINK_FACTS: Final = frozenset({
    "link", "state", "rat", "cell_id", "rtt_p95_ms", "loss_ratio", "rsrp_dbm", "sinr_db",
    "ul_kbps", "dl_kbps", "age_s", "clock_suspect", "vehicle_mode", "vehicle_connectivity",
})
RSU_FACTS: Final = frozenset({"health", "age_s", "intersection", "site"})
EVENT_FACTS: Final = frozenset({"kind", "detail"})

SCOPE_FACTS: Final = {"vehicle": VEHICLE_FACTS, "link": LINK_FACTS, "rsu": RSU_FACTS,
                      "event": EVENT_FACTS}


class VehicleFacts:
    __slots__ = tuple(sorted(VEHICLE_FACTS))

    def __init__(self, vehicle: VehicleTrack, now: float, *, ul_required_kbps: float) -> None:
        state = vehicle.state
        self.site = vehicle.site
        self.connectivity = vehicle.connectivity
        self.telemetry = vehicle.telemetry
        self.mode = state.mode if state else None
        self.speed_mps = state.speed_mps if state else None
        self.telemetry_age_s = None if vehicle.state_rx is None else now - vehicle.state_rx
        states = [link.health.state for link in vehicle.links.values()]
        self.links_total = len(states)
        self.links_ok = states.count(OK)
        self.links_degraded = states.count(DEGRADED)
        self.links_down = states.count(DOWN) + states.count(STALE)
        usable = 0.0
        for link in vehicle.links.values():
            last = link.last
            if link.health.state in (OK, DEGRADED) and last is not None and last.ul_kbps:
                usable += last.ul_kbps
        self.ul_kbps_usable = usable
        self.ul_required_kbps = ul_required_kbps
        self.clock_suspect = any(link.clock_suspect for link in vehicle.links.values())


class LinkFacts:
    __slots__ = tuple(sorted(LINK_FACTS))

    def __init__(self, vehicle: VehicleTrack, link: LinkTrack, now: float) -> None:
        last = link.last
        self.link = link.name
        self.state = link.health.state
        self.rat = last.rat if last else None
        self.cell_id = last.cell_id if last else None
        self.rtt_p95_ms = link.judged_rtt_p95_ms
        self.loss_ratio = link.judged_loss_ratio
        self.rsrp_dbm = last.rsrp_dbm if last else None
        self.sinr_db = last.sinr_db if last else None
        self.ul_kbps = last.ul_kbps if last else None
        self.dl_kbps = last.dl_kbps if last else None
        self.age_s = link.age(now)
        self.clock_suspect = link.clock_suspect
        self.vehicle_mode = vehicle.state.mode if vehicle.state else None
        self.vehicle_connectivity = vehicle.connectivity


class RsuFacts:
    __slots__ = tuple(sorted(RSU_FACTS))

    def __init__(self, rsu: RsuTrack, now: float) -> None:
        last = rsu.last
        self.site = rsu.site
        self.health = last.health if last else None
        self.intersection = last.intersection if last else None
        self.age_s = None if rsu.last_rx is None else now - rsu.last_rx


class EventFacts:
    __slots__ = tuple(sorted(EVENT_FACTS))

    def __init__(self, event: VehicleEvent) -> None:
        self.kind = event.kind
        self.detail = event.detail
