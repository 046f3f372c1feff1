"""The whole fleet's state, fed one decoded message at a time.

This is the only place that turns wire messages into state; live ingest and replay both call it,
with the hub's clock or the replay clock, so they cannot drift apart.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from telemetry.link import LinkTrack, LinkWatcher, SampleObserver
from telemetry.linkstate import STATES, LinkThresholds
from telemetry.newcomers import NO_ALERT, Newcomers
from telemetry.register import RSU, VEHICLE, Register
from telemetry.sequence import DUPLICATE, NEW, SeqTracker
from telemetry.topics import Route
from telemetry.vehicle import IN_SERVICE, VehicleTrack
from telemetry.wire import Message, RsuStatus

log = logging.getLogger("l4mon.fleet")

#: Folds one message received at a hub time into state: 0/False duplicate, 1/True new,
#: URGENT new and in need of the hub's attention after this batch.
Handler = Callable[[Any, float], int]

#: Told of each handover record that became final: (vehicle, link, record). The record is the
#: link watcher's (telemetry/link.py ``LinkWatcher``); what it is, the layer above knows.
RecordFinal = Callable[[str, str, Any], None]
#: Told of each link whose state the fleet judged changed: (hub time, vehicle, link, state).
LinkJudged = Callable[[float, str, str, str], None]


def _no_alerts(vehicle: str) -> int:
    return NO_ALERT


CAPACITY: Final = "capacity"
SITE_CONFLICT: Final = "site_conflict"
#: A vehicle's id on an RSU topic or the reverse: the register (or, without one, the tables)
#: know it as the other kind.
WRONG_KIND: Final = "wrong_kind"
#: An id the site register does not name: no track, no alert.
UNREGISTERED: Final = "unregistered"
#: The fleet's quarantine reasons (metric label values: a closed set).
REASONS: Final = (CAPACITY, SITE_CONFLICT, WRONG_KIND, UNREGISTERED)
#: How often the newcomers are looked over (confirmed, or forgotten when idle).
SWEEP_EVERY_S: Final = 1.0


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
    #: Vehicles no register vouches for (telemetry/newcomers.py): this many are judged at
    #: once, then this many a second; beyond it, a newcomer is on probation (shown, its
    #: events raise, its silence is not judged) until confirmed. Not optional: > 0.
    new_vehicles_burst: int = 100
    new_vehicles_per_s: float = 1.0
    #: A newcomer heard over this long is confirmed: a vehicle like any other from then on.
    confirm_after_s: float = 10.0
    #: A newcomer silent this long, with no open alert, is forgotten; with open alerts nobody
    #: acknowledged, after the second (its alerts resolved as evicted). With one an operator
    #: acknowledged, never.
    forget_newcomer_after_s: float = 60.0
    forget_alerting_newcomer_after_s: float = 600.0

    def __post_init__(self) -> None:
        if min(self.max_vehicles, self.max_links_per_vehicle, self.max_rsus) < 1:
            raise ValueError("fleet: max_vehicles, max_links_per_vehicle, max_rsus must be >= 1")
        if self.new_vehicles_burst < 0 or not 0 < self.new_vehicles_per_s < float("inf"):
            raise ValueError("fleet: need new_vehicles_burst >= 0 and 0 < new_vehicles_per_s "
                             "(finite): the cap on newcomers is not optional")
        if not 0 < self.confirm_after_s < float("inf") \
                or not 0 < self.forget_newcomer_after_s <= self.forget_alerting_newcomer_after_s \
                or self.forget_alerting_newcomer_after_s == float("inf"):
            raise ValueError("fleet: need confirm_after_s > 0 and 0 < forget_newcomer_after_s "
                             "<= forget_alerting_newcomer_after_s (finite)")


class Fleet:
    """Vehicles and RSUs by id; ids are unique across sites (see docs/protocol.md)."""

    def __init__(self, *, thresholds: LinkThresholds | None = None,
                 limits: FleetLimits | None = None,
                 watch_link: Callable[[], LinkWatcher] | None = None,
                 on_final: RecordFinal | None = None,
                 on_judged: LinkJudged | None = None,
                 register: Register | None = None,
                 alerts_of: Callable[[str], int] | None = None,
                 on_evict: Callable[[VehicleTrack, float, str], None] | None = None,
                 observe_link: Callable[[str, str], SampleObserver] | None = None) -> None:
        self.thresholds = thresholds or LinkThresholds()
        self.limits = limits = limits or FleetLimits()
        #: The site register (telemetry/register.py): when set, only its ids, each as its kind
        #: on its site, become vehicles and RSUs; every other is refused.
        self.register = register
        #: Vehicles heard but not vouched for, and their admission (telemetry/newcomers.py).
        self.newcomers = Newcomers(rate_per_s=limits.new_vehicles_per_s,
                                   burst=limits.new_vehicles_burst,
                                   confirm_s=limits.confirm_after_s,
                                   idle_s=limits.forget_newcomer_after_s,
                                   alerting_idle_s=limits.forget_alerting_newcomer_after_s)
        #: Whether a vehicle has alerts open (newcomers.NO_ALERT, OPEN_ALERT, HANDLED_ALERT):
        #: the hub answers from its alert engine; asked only about newcomers.
        self.alerts_of: Callable[[str], int] = alerts_of or _no_alerts
        #: Told of each vehicle evicted (track, hub time, why) before anything else happens,
        #: so the hub can drop what points at it (its topics' handlers, its alerts).
        self.on_evict = on_evict
        self.evicted = 0
        self._swept_at: float | None = None
        #: The newest time the fleet was given: what a caller without a time means by now.
        self._latest = 0.0
        #: Builds each new link's watcher (handover detection), and is told of its final records
        #: and of each link judged changed (failover): given by the hub, which knows the layer
        #: above (handover/book.py); None: not watched, not told.
        self.watch_link = watch_link
        self.on_final = on_final
        self.on_judged = on_judged
        self.vehicles: dict[str, VehicleTrack] = {}
        self.rsus: dict[str, RsuTrack] = {}
        self._links_created = 0
        #: Gives each new link its per-sample observer (vehicle id, link name): a replay's
        #: books. None live.
        self.observe_link = observe_link
        #: Vehicles with a service change (or will) not yet taken by the hub.
        self.serviced: set[str] = set()
        #: How many vehicles are out of service: whether any is in service is one comparison
        #: (a replay asks before every batch, to count only the time someone was driving).
        self.out_of_service = 0

    def _vehicle(self, route: Route, now: float, *, vouched: bool = False) -> VehicleTrack:
        """The vehicle's track, created if new. ``vouched``: the hub was told to expect it (a
        timetable, the journal), so it is no newcomer."""
        track = self.vehicles.get(route.source)
        if track is None:
            registered = self._registered(route, VEHICLE)
            if route.source in self.rsus:
                raise Refused(WRONG_KIND, f"{route.source} is an RSU, not a vehicle")
            if len(self.vehicles) >= self.limits.max_vehicles:
                victim = self.newcomers.victim(self.alerts_of)
                if victim is None:
                    raise Refused(CAPACITY, f"already tracking {len(self.vehicles)} vehicles, "
                                  "none of them a newcomer that may be let go")
                self.evict(victim, now, "a newcomer never confirmed, evicted to make room")
            track = self.vehicles[route.source] = VehicleTrack(
                route.source, route.site, max_links=self.limits.max_links_per_vehicle,
                turn=len(self.vehicles))
            if not (registered or vouched):
                self.newcomers.admit(route.source, now)
        elif track.site != route.site:
            raise Refused(SITE_CONFLICT, f"vehicle {route.source} belongs to site {track.site}")
        return track

    def _registered(self, route: Route, kind: str) -> bool:
        """Whether the register vouches for ``route``'s id as ``kind`` on its site; False
        without a register. Refused when a register is set and does not."""
        register = self.register
        if register is None:
            return False
        word = "vehicle" if kind == VEHICLE else "RSU"
        known = register.known(route.source)
        if known is None:
            raise Refused(UNREGISTERED, f"{word} {route.source} is not in the site register")
        if known.kind != kind:
            other = "a vehicle" if known.kind == VEHICLE else "an RSU"
            raise Refused(WRONG_KIND, f"{route.source} is registered as {other}, not as {word}")
        if known.site != route.site:
            raise Refused(SITE_CONFLICT, f"{word} {route.source} is registered at site "
                          f"{known.site}")
        return True

    def bind(self, route: Route, now: float | None = None) -> Handler:
        """The handler that folds messages of ``route`` into state, creating the track if new.

        Raises ``Refused`` (creating nothing) when the register refuses the id, the tables are
        full or ids clash. The hub caches the handler per topic, so this runs once per topic,
        not once per message. ``now``: when it arrived (None: the newest time given so far).
        """
        if now is None:
            now = self._latest
        else:
            self._latest = max(self._latest, now)
        kind = route.kind
        if kind == "rsu":
            return self._rsu(route).add
        vehicle = self._vehicle(route, now)
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
            self._registered(route, RSU)
            if route.source in self.vehicles:
                raise Refused(WRONG_KIND, f"{route.source} is a vehicle, not an RSU")
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
                    if self.on_judged is not None:
                        self.on_judged(now, vehicle.id, link.name, link.health.state)
                if link.clock_suspect != suspect:
                    self._warn_clock(vehicle.id, link)
                if link.final_handovers:
                    self._hand_on(vehicle.id, link.name, link.final_handovers)
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
                if vehicle.service == IN_SERVICE:
                    # It runs the service lifecycle (docs/protocol.md): a shuttle at work, and
                    # journaled as such; no newcomer to let go.
                    self.newcomers.confirm(vehicle.id)
            return True
        return take

    def expect(self, vehicle: str, site: str) -> VehicleTrack:
        """A vehicle the hub is told to expect (a timetable names it): known before it is
        heard, so that not hearing it can be said, and no newcomer. Refused like any vehicle
        when full or not in the register."""
        return self._vehicle(Route("state", site, vehicle), self._latest, vouched=True)

    def on_probation(self, vehicle: str) -> bool:
        """Whether the vehicle is a newcomer let in beyond the rate: not judged yet."""
        return vehicle in self.newcomers.on_probation

    def evict(self, vehicle: str, now: float, why: str) -> VehicleTrack | None:
        """Forget a vehicle (a newcomer never confirmed): its track, its service bookkeeping;
        the hub is told first (``on_evict``) to drop the rest (its failover watch among it)."""
        track = self.vehicles.pop(vehicle, None)
        if track is None:
            return None
        self.newcomers.forget(vehicle)
        self.serviced.discard(vehicle)
        if not track.serving:
            self.out_of_service -= 1
        self.evicted += 1
        log.info("vehicle %s evicted: %s", vehicle, why)
        if self.on_evict is not None:
            self.on_evict(track, now, why)
        return track

    def sweep(self, now: float) -> list[str]:
        """Look the newcomers over (at most every ``SWEEP_EVERY_S``): confirm those heard long
        enough or whose alert an operator acknowledged, evict those silent too long with no
        open alert. Returns the vehicles evicted."""
        self._latest = max(self._latest, now)
        if self._swept_at is not None and now - self._swept_at < SWEEP_EVERY_S:
            return []
        self._swept_at = now
        if not self.newcomers:
            return []
        _, idle = self.newcomers.sweep(now, self._heard_at, self.alerts_of)
        for vehicle in idle:
            track = self.vehicles.get(vehicle)
            heard = None if track is None else track.heard_at()
            silent = now - heard if heard is not None else 0.0
            self.evict(vehicle, now, f"a newcomer never confirmed, silent for {silent:.0f} s")
        return idle

    def _heard_at(self, vehicle: str) -> float | None:
        track = self.vehicles.get(vehicle)
        return None if track is None else track.heard_at()

    def resume_service(self, vehicle: str, site: str, status: str, since: float,
                       reason: str | None, now: float) -> VehicleTrack | None:
        """A restarted hub takes up each vehicle's service as its journal kept it: one out of
        service stays apart and unjudged; one in service must be heard, its silence counted
        from ``now`` (the hub's start), as if it had just entered service. None when the
        tables are full (the vehicle is then learned when it reports)."""
        try:
            track = self._vehicle(Route("service", site, vehicle), now, vouched=True)
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

    def end_session(self) -> list[VehicleTrack]:
        """Forget every vehicle and RSU (telemetry/sessions.py): the next drive starts with
        none known. Returns the vehicles retired, whose books a replay still reports."""
        retired = list(self.vehicles.values())
        self.vehicles = {}
        self.rsus = {}
        self.serviced = set()
        self.out_of_service = 0
        self.newcomers = Newcomers(rate_per_s=self.limits.new_vehicles_per_s,
                                   burst=self.limits.new_vehicles_burst,
                                   confirm_s=self.limits.confirm_after_s,
                                   idle_s=self.limits.forget_newcomer_after_s,
                                   alerting_idle_s=self.limits.forget_alerting_newcomer_after_s)
        return retired

    def drain_handovers(self, now: float) -> None:
        """End of input: hand on every handover still waiting for its classification window."""
        for vehicle in self.vehicles.values():
            for link in vehicle.links.values():
                drained = link.handovers.drain(now) if link.handovers is not None else []
                self._hand_on(vehicle.id, link.name, link.final_handovers + drained)
                link.final_handovers.clear()

    def _hand_on(self, vehicle: str, link: str, records: list[Any]) -> None:
        if self.on_final is not None:
            for record in records:
                self.on_final(vehicle, link, record)
        records.clear()

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

