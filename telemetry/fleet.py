"""The whole fleet's state, fed one decoded message at a time.

This is the only place that turns wire messages into state; live ingest and replay both call it,
with the hub's clock or the replay clock, so they cannot drift apart.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple, Protocol

import msgspec

from telemetry.link import LinkTrack, LinkWatcher, SampleObserver
from telemetry.linkstate import DEGRADED, OK, STATES, LinkThresholds
from telemetry.sequence import DUPLICATE, NEW, SeqTracker
from telemetry.topics import Route
from telemetry.vehicle import VehicleTrack
from telemetry.wire import Message, RsuStatus

log = logging.getLogger("l4mon.fleet")

#: Folds one message received at a hub time into state: 0/False duplicate, 1/True new,
#: URGENT new and in need of the hub's attention after this batch.
Handler = Callable[[Any, float], int]

#: The live hub's handover (and failover) log, newest kept: what the API and console show. 20,000
#: is over 17 min of a 1,000-vehicle fleet changing cells every ~50 s (the soak's load), more
#: than a day of a 20-shuttle site; at ~570 bytes a record it stays near 11 MB. Reports read
#: drive logs, and a replay keeps every record, so nothing else depends on this bound.
HANDOVERS_KEPT: Final = 20_000


class HandoverRecord(Protocol):
    """What the fleet reads of a final handover record (handover/detect.py ``Handover``):
    its kind, and where it started and ended, to tag it with the intersection."""

    @property
    def kind(self) -> str: ...

    @property
    def lat(self) -> float | None: ...

    @property
    def lon(self) -> float | None: ...

    @property
    def end_lat(self) -> float | None: ...

    @property
    def end_lon(self) -> float | None: ...


class FailoverWatcher(Protocol):
    """Follows whether each of one vehicle's links is usable and reports the failover events
    that ends (handover/detect.py ``FailoverTracker``)."""

    def observe_state(self, now: float, link: str, usable: bool) -> list[Any]: ...


class HandoverEntry(NamedTuple):
    """A final handover record with whose link it was and the intersection it happened in."""

    vehicle: str
    link: str
    intersection: str | None
    record: Any  # a HandoverRecord: handover/detect.py Handover


def _nowhere(lat: float | None, lon: float | None) -> str | None:
    return None

CAPACITY: Final = "capacity"
SITE_CONFLICT: Final = "site_conflict"


class Refused(Exception):
    """Valid on the wire but not acceptable as state (full tables, identity clash)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RsuTrack:
    __slots__ = ("id", "site", "last", "last_rx", "seq")

    def __init__(self, rsu_id: str, site: str) -> None:
        self.id = rsu_id
        self.site = site
        self.last: RsuStatus | None = None
        self.last_rx: float | None = None
        self.seq = SeqTracker()

    def add(self, msg: RsuStatus, now: float) -> bool:
        kind = self.seq.observe(msg.seq)
        if kind == DUPLICATE:
            return False
        if kind == NEW:
            self.last = msg
            self.last_rx = now
        return True


class FleetLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Caps on what one hub tracks, so no sender can make its memory grow without bound."""

    max_vehicles: int = 10_000
    max_links_per_vehicle: int = 4
    max_rsus: int = 2_000
    #: One-way delays beyond these say the sender's clock is wrong, not that the radio is slow.
    max_clock_offset_s: float = 2.0
    max_behind_s: float = 0.25
    def __post_init__(self) -> None:
        if min(self.max_vehicles, self.max_links_per_vehicle, self.max_rsus) < 1:
            raise ValueError("fleet: max_vehicles, max_links_per_vehicle, max_rsus must be >= 1")


class Fleet:
    """Vehicles and RSUs by id; ids are unique across sites (see docs/protocol.md)."""

    def __init__(self, *, thresholds: LinkThresholds | None = None,
                 limits: FleetLimits | None = None,
                 watch_link: Callable[[], LinkWatcher] | None = None,
                 watch_failover: Callable[[], FailoverWatcher] | None = None) -> None:
        self.thresholds = thresholds or LinkThresholds()
        self.limits = limits or FleetLimits()
        #: Builds each new link's watcher (handover detection) and each vehicle's failover
        #: watcher: given by the hub, which knows the layer above; None: not watched.
        self.watch_link = watch_link
        self.watch_failover = watch_failover
        self.vehicles: dict[str, VehicleTrack] = {}
        self.rsus: dict[str, RsuTrack] = {}
        self._links_created = 0
        #: Handovers whose classification is final, newest last (bounded: reports read the
        #: drive logs, not this), and how many of each kind there have been.
        self.handovers: deque[HandoverEntry] = deque(maxlen=HANDOVERS_KEPT)
        self.handover_counts: Counter[str] = Counter()
        #: Final records not yet taken by the hub (for the intersection book and alert rules).
        self.fresh_handovers: list[HandoverEntry] = []
        #: Failover between each vehicle's links (docs/handover.md), newest last, bounded.
        self.failovers: deque[tuple[str, Any]] = deque(maxlen=HANDOVERS_KEPT)
        self._failover: dict[str, FailoverWatcher] = {}
        #: The intersection a position is in (the hub sets it from the site): tags each record.
        self.zone_at: Callable[[float | None, float | None], str | None] = _nowhere
        #: Gives each new link its per-sample observer (vehicle id, link name): a replay's
        #: books. None live.
        self.observe_link: Callable[[str, str], SampleObserver] | None = None
        #: Vehicles with a service change (or will) not yet taken by the hub.
        self.serviced: set[str] = set()
        #: How many vehicles are out of service: whether any is in service is one comparison
        #: (a replay asks before every batch, to count only the time someone was driving).
        self.out_of_service = 0

    def _vehicle(self, route: Route) -> VehicleTrack:
        track = self.vehicles.get(route.source)
        if track is None:
            if len(self.vehicles) >= self.limits.max_vehicles:
                raise Refused(CAPACITY, f"already tracking {len(self.vehicles)} vehicles")
            track = self.vehicles[route.source] = VehicleTrack(
                route.source, route.site, max_links=self.limits.max_links_per_vehicle,
                turn=len(self.vehicles))
        elif track.site != route.site:
            raise Refused(SITE_CONFLICT, f"vehicle {route.source} belongs to site {track.site}")
        return track

    def bind(self, route: Route) -> Handler:
        """The handler that folds messages of ``route`` into state, creating the track if new.

        Raises ``Refused`` (creating nothing) when the tables are full or ids clash. The hub
        caches the handler per topic, so this runs once per topic, not once per message.
        """
        kind = route.kind
        if kind == "rsu":
            return self._rsu(route).add
        vehicle = self._vehicle(route)
        if kind == "link":
            name: str = route.link  # type: ignore[assignment]
            link = vehicle.links.get(name)
            if link is None:
                # Golden-ratio phases spread the links' judging times evenly over the interval,
                # deterministically (the same log replayed gives the same phases).
                phase = (self._links_created * 0.6180339887498949) % 1.0
                watcher = self.watch_link() if self.watch_link is not None else None
                link = vehicle.link(name, phase=phase, handovers=watcher)
                if link is None:
                    raise Refused(CAPACITY, f"vehicle {route.source} has too many links")
                if self.observe_link is not None:
                    link.observer = self.observe_link(vehicle.id, name)
                self._links_created += 1
            return link.add
        if kind == "state":
            return vehicle.add_state
        if kind == "service":
            return self._service_handler(vehicle)
        return vehicle.add_event

    def apply(self, route: Route, msg: Message, now: float) -> int:
        """Fold one valid message into the state: falsy if it was a duplicate."""
        return self.bind(route)(msg, now)

    def _rsu(self, route: Route) -> RsuTrack:
        track = self.rsus.get(route.source)
        if track is None:
            if len(self.rsus) >= self.limits.max_rsus:
                raise Refused(CAPACITY, f"already tracking {len(self.rsus)} RSUs")
            track = self.rsus[route.source] = RsuTrack(route.source, route.site)
        elif track.site != route.site:
            raise Refused(SITE_CONFLICT, f"RSU {route.source} belongs to site {track.site}")
        return track

    def evaluate(self, now: float, *, judge_interval_s: float = 1.0,
                 vehicles: Iterable[str] | None = None) -> list[tuple[str, str | None]]:
        """Bring every link and vehicle up to ``now``; returns what changed as (vehicle, link).

        Each link's window figures are re-judged at most every ``judge_interval_s``, and links
        are judged at staggered times (each from its own first sample), so a tick's cost is
        spread evenly rather than landing on one tick a second.
        """
        thr = self.thresholds
        lim = self.limits
        changed: list[tuple[str, str | None]] = []
        tracks = self.vehicles.values() if vehicles is None \
            else [self.vehicles[v] for v in vehicles if v in self.vehicles]
        for vehicle in tracks:
            if not vehicle.serving:
                continue  # out of service: expected to be silent, nothing to judge
            for link in vehicle.links.values():
                suspect = link.clock_suspect
                if link.evaluate(now, thr, judge_interval_s=judge_interval_s,
                                 max_clock_offset_s=lim.max_clock_offset_s,
                                 max_behind_s=lim.max_behind_s):
                    changed.append((vehicle.id, link.name))
                    self._observe_failover(now, vehicle.id, link.name, link.health.state)
                if link.clock_suspect != suspect:
                    self._warn_clock(vehicle.id, link)
                if link.final_handovers:
                    for record in link.final_handovers:
                        self._keep(vehicle.id, link.name, record)
                    link.final_handovers.clear()
            if vehicle.refresh(now, thr):
                changed.append((vehicle.id, None))
        return changed

    def _service_handler(self, vehicle: VehicleTrack) -> Handler:
        """Folds a vehicle's service status in and, when it says something new, names the
        vehicle in ``serviced`` for the hub to act on after the batch (not URGENT: a change
        of service judges nothing at once, it starts and ends what is judged)."""
        def take(msg: Any, now: float) -> int:
            said, was = len(vehicle.unseen_service), vehicle.serving
            vehicle.add_service(msg, now)
            if len(vehicle.unseen_service) > said:
                self.serviced.add(vehicle.id)
                self.out_of_service += was - vehicle.serving
            return True
        return take

    def expect(self, vehicle: str, site: str) -> VehicleTrack:
        """A vehicle the hub is told to expect (a timetable names it): known before it is
        heard, so that not hearing it can be said. Refused like any vehicle when full."""
        return self._vehicle(Route("state", site, vehicle))

    def resume_service(self, vehicle: str, site: str, status: str, since: float,
                       reason: str | None, now: float) -> VehicleTrack | None:
        """A restarted hub takes up each vehicle's service as its journal kept it: one out of
        service stays apart and unjudged; one in service must be heard, its silence counted
        from ``now`` (the hub's start), as if it had just entered service. None when the
        tables are full (the vehicle is then learned when it reports)."""
        try:
            track = self._vehicle(Route("service", site, vehicle))
        except Refused:
            return None
        was = track.serving
        track.set_service(status, since, reason)
        self.out_of_service += was - track.serving
        track.restart(now)
        return track

    @property
    def anyone_serving(self) -> bool:
        """Whether any vehicle is in service (or never said otherwise)."""
        return len(self.vehicles) > self.out_of_service

    def service_changed(self, vehicle: str) -> None:
        """The vehicle entered or left service: a failover open before is not one after."""
        self._failover.pop(vehicle, None)

    def end_session(self) -> list[VehicleTrack]:
        """Forget every vehicle and RSU (telemetry/sessions.py): the next drive starts with
        none known. Returns the vehicles retired, whose books a replay still reports. The
        handover and failover history stays."""
        retired = list(self.vehicles.values())
        self.vehicles = {}
        self.rsus = {}
        self._failover = {}
        self.fresh_handovers = []
        self.serviced = set()
        self.out_of_service = 0
        return retired

    def drain_handovers(self, now: float) -> None:
        """End of input: collect every handover still waiting for its classification window."""
        for vehicle in self.vehicles.values():
            for link in vehicle.links.values():
                drained = link.handovers.drain(now) if link.handovers is not None else []
                for record in link.final_handovers + drained:
                    self._keep(vehicle.id, link.name, record)
                link.final_handovers.clear()

    def _keep(self, vehicle: str, link: str, record: HandoverRecord) -> None:
        zone = self.zone_at(record.lat, record.lon)
        if zone is None and record.kind == "failure":
            zone = self.zone_at(record.end_lat, record.end_lon)  # it ended inside one
        entry = HandoverEntry(vehicle, link, zone, record)
        self.handovers.append(entry)
        self.fresh_handovers.append(entry)
        self.handover_counts[record.kind] += 1

    def _observe_failover(self, now: float, vehicle: str, link: str, state: str) -> None:
        if self.watch_failover is None:
            return
        tracker = self._failover.get(vehicle)
        if tracker is None:
            tracker = self._failover[vehicle] = self.watch_failover()
        for event in tracker.observe_state(now, link, state in (OK, DEGRADED)):
            self.failovers.append((vehicle, event))

    def take_fresh_handovers(self) -> list[HandoverEntry]:
        fresh, self.fresh_handovers = self.fresh_handovers, []
        return fresh

    def keep_every_record(self) -> None:
        """Keep every handover and failover from now on, not the newest ``HANDOVERS_KEPT``.

        For replays, whose results must list all of a long log's records (growing with the
        events, not the samples). A live hub never calls this: it runs for months and keeps
        its bound. Swapping in unbounded deques costs the live path nothing at all.
        """
        self.handovers = deque(self.handovers)
        self.failovers = deque(self.failovers)

    @staticmethod
    def _warn_clock(vehicle: str, link: LinkTrack) -> None:
        if link.clock_suspect:
            log.warning("vehicle %s link %s: clock offset implausible (smallest one-way delay "
                        "%.3f s); its delay figures cannot be trusted", vehicle, link.name,
                        link.min_owd_s)
        else:
            log.info("vehicle %s link %s: clock offset plausible again", vehicle, link.name)

    def clock_suspect_links(self) -> int:
        return sum(1 for v in self.vehicles.values() for link in v.links.values()
                   if link.clock_suspect)

    def link_state_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter({s: 0 for s in STATES})
        for vehicle in self.vehicles.values():
            for link in vehicle.links.values():
                counts[link.health.state] += 1
        return counts

