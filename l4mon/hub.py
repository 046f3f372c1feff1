"""The hub's pipeline, free of I/O: batches in → decode → fleet state; ticks → link verdicts.

Both methods take the time they should act at. Live, that is the wall clock read once per
batch; in replay it is the log's virtual time. There is no other path from a message to state.

    transport ──Batch──▶ Hub.ingest ──▶ Decoder ──▶ Fleet.apply ──▶ Vehicle/Link tracks
                              │ refused                                   ▲
                              ▼                                           │
                          Quarantine                     Hub.tick(now) ───┘ (verdicts, staleness)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from handover.book import HandoverBook
from handover.intersections import IntersectionBook
from l4mon.alerts.duty import DutyRoster
from l4mon.alerts.engine import AlertEngine
from l4mon.alerts.incidents import FleetCauses
from l4mon.alerts.rules import Rule
from l4mon.config import HubConfig
from l4mon.site_watch import LOST, FeedWatch
from l4mon.store.journal import Journal
from l4mon.types import Batch
from telemetry.commands import is_command_family
from telemetry.decode import Decoder, Rejected
from telemetry.fleet import Fleet, Handler, Refused
from telemetry.link import SampleObserver
from telemetry.linkmap.outlook import LookAhead
from telemetry.newcomers import NO_ALERT
from telemetry.quarantine import Quarantine
from telemetry.ranges import Screened, tally
from telemetry.register import Register
from telemetry.sequence import URGENT
from telemetry.site import Site
from telemetry.topics import Route
from telemetry.vehicle import OFFLINE, VehicleTrack

log = logging.getLogger("l4mon.hub")

#: Quarantine reason for a message that hit a bug in the hub (logged with its traceback).
INTERNAL_ERROR: Final = "internal_error"
#: Topic bindings kept before the cache is emptied (it refills from live traffic).
BINDINGS_LIMIT: Final = 100_000


class Hub:
    """Never called concurrently: one task feeds ``ingest`` and ``tick``."""

    def __init__(self, *, store: Journal, config: HubConfig | None = None,
                 site: Site | None = None, register: Register | None = None,
                 rules: list[Rule] | None = None,
                 planned: Callable[[str, float], bool | None] | None = None,
                 lookahead: LookAhead | None = None,
                 observe_link: Callable[[str, str], SampleObserver] | None = None) -> None:
        """The hub's parts, each given what it works with here, in the order they need each
        other. ``store``: the journal the alert engine writes (SQLite ``:memory:`` for a hub
        that keeps nothing); ``rules``: none by default; ``planned``: the timetable's say on
        whether a vehicle is planned in service; ``lookahead``: the link map's, when
        ``[linkmap] path`` names one; ``observe_link``: a replay's per-link books."""
        self.config = config = config or HubConfig()
        self.site = site
        ing = config.ingest
        self.decoder = Decoder(max_payload=ing.max_payload_bytes, max_ahead_s=ing.max_ahead_s,
                               max_age_s=ing.max_age_s)
        self.quarantine = Quarantine(capacity=ing.quarantine_capacity)
        #: Handovers and link health per intersection of the site (none without a site).
        self.intersections = book = IntersectionBook(
            site, hotspot_window_s=config.handover.hotspot_window_s)
        #: The handover and failover log (handover/book.py): the API's, and a replay's results.
        self.handovers = handovers = HandoverBook(book.zones.at)
        detect = config.handover
        self.fleet = Fleet(thresholds=config.links, limits=config.fleet,
                           watch_link=detect.tracker if detect.enabled else None,
                           on_final=handovers.keep, on_judged=handovers.link_judged,
                           register=register, alerts_of=self._alerts_of,
                           on_evict=self._evicted, observe_link=observe_link)
        #: Vehicles with open alerts, as the alert engine last said (built when the fleet
        #: asks about a newcomer, dropped at each batch and tick: alerts change only then).
        self._alerting: dict[str, int] | None = None
        #: The process's store (l4mon/store): alerts, duty, tokens, the pair's leader lock,
        #: commands. The engine writes it; the runtime, the API and the CLI read it here.
        self.store = store
        rules = rules if rules is not None else []
        #: The alert engine; incidents group its alerts by what their vehicles share.
        self.alerts = AlertEngine(
            rules=rules, journal=store, duty=DutyRoster(journal=store),
            ul_required_kbps=config.requirements.ul_requirement, planned=planned,
            lookahead=lookahead,
            causes=FleetCauses(self.fleet, book.where, book.zones.name,
                               [rule.name for rule in rules if rule.scope == "handover"],
                               stretch_of=None if lookahead is None else lookahead.stretch_of))
        #: topic → (JSON decode function, state handler, vehicle or RSU id), once per topic.
        self._bindings: dict[str, tuple[Callable[[bytes], Any], Handler, str]] = {}
        #: vehicle or RSU id → its topics in ``_bindings``: an evicted vehicle's go with it.
        self._topics_of: dict[str, list[str]] = {}
        self.received = 0
        self.accepted = 0
        self.duplicates = 0
        #: Link figures accepted as not measured, outside their physical range (a logger's
        #: "no value" marker, telemetry/ranges.py): {field: {reason: count}}, over every link;
        #: each link's own on its track. Counted, never silent.
        self.fields_not_measured: dict[str, dict[str, int]] = {}
        self.batches = 0
        self.last_batch_at: float | None = None
        self.ticks = 0
        #: A quiet vehicle's alert rules run at one tick in this many.
        self.alert_turns = max(1, round(ing.alert_interval_s / ing.eval_interval_s))
        self.last_tick_cost_s = 0.0
        self._tick_cost = 0.0
        #: Whether the hub can see each site (l4mon/site_watch.py): judged first at each tick.
        self.feed = FeedWatch(config.feed)
        #: Takes messages on command topics (vehicles' answers). Bound late on purpose, by
        #: whoever runs the hub: the live runtime (to the command service, built after the
        #: hub) or a replay (to a CommandTrail, which reads this hub's fleet); None: they are
        #: counted and left alone.
        self.command_messages: Callable[[str, bytes, float], None] | None = None
        self.command_messages_ignored = 0
        #: The hub hears answers on a command connection of its own (l4mon/commands/
        #: connection.py): the copies its telemetry subscription also brings are left alone,
        #: or every answer would count twice.
        self.answers_elsewhere = False
        self._answers_here = False

    @property
    def lookahead(self) -> LookAhead | None:
        """The link map's look-ahead, when ``[linkmap] path`` names a map."""
        return self.alerts.lookahead

    def ingest_answers(self, batch: Batch, now: float) -> None:
        """A batch of the command connection: ingested as any, its answers taken."""
        self._answers_here = True
        try:
            self.ingest(batch, now)
        finally:
            self._answers_here = False

    def ingest(self, batch: Batch, now: float) -> None:
        """Fold a batch received at ``now`` into the state; bad messages go to quarantine."""
        bindings = self._bindings
        ing = self.config.ingest
        self._alerting = None
        low, high, max_payload = now - ing.max_age_s, now + ing.max_ahead_s, ing.max_payload_bytes
        fresh = duplicates = 0
        # In order of arrival (a dict, not a set: a set's order follows string hashing, which
        # changes from process to process, and so would the ids of alerts raised together).
        urgent: dict[str, None] = {}
        for topic, payload, content_type in batch:
            # Fast path: a JSON message on a topic seen before. Anything unusual about it
            # (error, odd timestamp, other encoding) takes the full path below instead, which
            # gives the same answer the slow way and is the one place refusals are decided.
            try:
                bound = bindings.get(topic)
                if bound is not None and content_type is None and len(payload) <= max_payload:
                    decode, handle, source = bound
                    try:
                        msg = decode(payload)
                    except msgspec.DecodeError:
                        msg = None
                    if msg is not None and low <= msg.ts <= high:
                        verdict = handle(msg, now)
                        if verdict:
                            fresh += 1
                            if verdict == URGENT:
                                urgent[source] = None
                        else:
                            duplicates += 1
                        continue
                verdict = self._admit(topic, payload, content_type, now)
            except Exception as error:  # a bug here must cost one message, never the batch
                log.exception("internal error on a message from %r", topic[:200])
                self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                    reason=INTERNAL_ERROR, detail=repr(error))
                continue
            if verdict is None:
                continue
            if verdict:
                fresh += 1
                if verdict == URGENT:
                    urgent[bindings[topic][2]] = None
            else:
                duplicates += 1
        self.accepted += fresh
        self.duplicates += duplicates
        self.received += len(batch)
        self.batches += 1
        self.last_batch_at = now
        if self.fleet.serviced:  # before anything urgent: it belongs to the new service
            self._take_service(now)
        if urgent:
            self._react(now, urgent)

    def _react(self, now: float, vehicles: dict[str, None]) -> None:
        """Judge the vehicles that just reported something urgent and run their alert rules,
        without waiting for the tick: this is what keeps takeover alerts within milliseconds."""
        fleet = self.fleet
        changed = fleet.evaluate(now, judge_interval_s=self.config.ingest.judge_interval_s,
                                 vehicles=vehicles)
        self._after_judging(now, changed)
        alerts = self.alerts
        for vid in vehicles:
            vehicle = fleet.vehicles.get(vid)
            if vehicle is None or not vehicle.unseen_events:
                continue
            events, vehicle.unseen_events = vehicle.unseen_events, []
            for event in events:
                alerts.on_event(now, vehicle, event)
        alerts.evaluate(now, self.fleet, vehicles)

    def _take_service(self, now: float) -> None:
        """Journal the vehicles' service changes (and wills) of the batch and act on them: on
        leaving, a vehicle's open alerts close; either way, nothing judged before the change
        counts after it. Like an event, this is done before the batch is acknowledged."""
        fleet = self.fleet
        serviced, fleet.serviced = fleet.serviced, set()
        for vid in sorted(serviced):
            vehicle = fleet.vehicles.get(vid)
            if vehicle is None:
                continue
            changes, vehicle.unseen_service = vehicle.unseen_service, []
            for _, status, reason in changes:
                if status != OFFLINE:
                    self.handovers.forget(vid)
                self.alerts.on_service(now, vehicle, status, reason)

    def _admit(self, topic: str, payload: bytes, content_type: str | None,
               now: float) -> int | None:
        """The full path for one message: the handler's verdict, or None when quarantined (or
        taken by the commands, which are not telemetry)."""
        if is_command_family(topic):
            if self.command_messages is None or (self.answers_elsewhere
                                                 and not self._answers_here):
                self.command_messages_ignored += 1
            else:
                self.command_messages(topic, payload, now)
            return None
        try:
            route, msg, screened = self.decoder.decode(topic, payload, now, content_type)
            handler = self.fleet.bind(route, now)
        except (Rejected, Refused) as refused:
            self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                reason=refused.reason, detail=refused.detail)
            return None
        bindings = self._bindings
        if len(bindings) >= BINDINGS_LIMIT:
            bindings.clear()
            self._topics_of.clear()
        bindings[topic] = (self.decoder.json_decoder(route.kind).decode, handler, route.source)
        self._topics_of.setdefault(route.source, []).append(topic)
        verdict = handler(msg, now)
        if screened and verdict:  # a duplicate's figures were counted when it first came
            self._not_measured(route, screened)
        return verdict

    def _alerts_of(self, vehicle: str) -> int:
        """What the alert engine says of a vehicle's open alerts (telemetry/newcomers.py)."""
        if self._alerting is None:
            self._alerting = self.alerts.alerts_by_vehicle()
        return self._alerting.get(vehicle, NO_ALERT)

    def _evicted(self, vehicle: VehicleTrack, now: float, why: str) -> None:
        """The fleet let a vehicle go: its topics' handlers, its failover watch, its place in
        the intersection book and its alerts (resolved, journaled) go with it."""
        self.handovers.forget(vehicle.id)
        for topic in self._topics_of.pop(vehicle.id, ()):
            self._bindings.pop(topic, None)
        self.intersections.forget(vehicle.id)
        self.alerts.forget_vehicle(vehicle, now, f"evicted: {why}")
        if self._alerting is not None:
            self._alerting.pop(vehicle.id, None)

    def _not_measured(self, route: Route, screened: tuple[Screened, ...]) -> None:
        """Count a sample's screened figures, in total and on its link."""
        tally(screened, self.fields_not_measured)
        vehicle = self.fleet.vehicles[route.source]
        tally(screened, vehicle.links[route.link].fields_not_measured)  # type: ignore[index]

    def tick(self, now: float) -> list[tuple[str, str | None]]:
        """Judge every link and vehicle at ``now`` and run the alert rules; returns what changed."""
        due = self.tick_start(now)
        changed = self.tick_vehicles(now, None, due)
        self.tick_finish(now)
        return changed

    def tick_start(self, now: float) -> set[str]:
        """The start of a tick: whether the hub can see each site, and its site rules, before
        any vehicle is judged (a blind hub is said once, not as every vehicle down), and the
        newcomers looked over (telemetry/newcomers.py). Returns the subjects whose alert rules
        must run this tick whatever their turn."""
        self._alerting = None
        self.fleet.sweep(now)
        for site in self.feed.evaluate(now, self.fleet):
            if self.feed.sites[site].state == LOST:
                self._unseen(site)
        self.alerts.evaluate_hub(now)
        self.alerts.evaluate_sites(now, self.feed)
        return self.alerts.active_subjects()

    def tick_vehicles(self, now: float, vehicles: list[str] | None, due: set[str]
                      ) -> list[tuple[str, str | None]]:
        """The per-vehicle part of a tick, for ``vehicles`` (all when None).

        Every link is brought up to ``now``. Alert rules run for the vehicles whose turn it is
        (each quiet vehicle once per ``alert_interval_s``), for those whose
        state changed in this tick, and for ``due`` subjects (pending, clearing or open alerts,
        whose holds must be timed exactly). Events and no-service reports do not wait for any
        of this: ``ingest`` hands them to the rules at once.

        Live, the runtime walks the fleet in chunks and yields to the event loop between them,
        so a large fleet's tick never holds up an urgent message; replay calls ``tick``, which
        does the same work in one go. The decisions are the same either way.
        """
        started = time.perf_counter()  # cost accounting only, never a decision
        fleet = self.fleet
        changed = fleet.evaluate(now, judge_interval_s=self.config.ingest.judge_interval_s,
                                 vehicles=vehicles)
        self._after_judging(now, changed)
        turns = self.alert_turns
        turn = self.ticks % turns
        touched = {vehicle for vehicle, _ in changed}
        ids = fleet.vehicles.keys() if vehicles is None else vehicles
        # A newcomer on probation is not judged (its events are, in ``_react``), unless
        # an alert of its own is open or pending (telemetry/newcomers.py).
        waiting = fleet.newcomers.on_probation
        run = [v for v in ids if v in due or (v not in waiting and (
            v in touched
            or (v in fleet.vehicles and fleet.vehicles[v].turn % turns == turn)))]
        self.alerts.evaluate(now, fleet, run)
        self._tick_cost += time.perf_counter() - started
        return changed

    def tick_finish(self, now: float) -> None:
        """The rest of a tick: RSU rules, due escalations, accounting."""
        started = time.perf_counter()
        self.intersections.on_tick(now, self.fleet)
        self.alerts.evaluate_rest(now, self.fleet, self.intersections)
        self.ticks += 1
        self.last_tick_cost_s = self._tick_cost + time.perf_counter() - started
        self._tick_cost = 0.0

    def evaluate_alerts(self, now: float) -> None:
        """Every alert rule on the state as it is, links not judged again: what a standby
        runs the moment it becomes leader (l4mon/leadership.py), so what held or cleared
        while it only followed is raised or resolved at once, not at the vehicle's turn."""
        alerts = self.alerts
        alerts.evaluate_sites(now, self.feed)
        alerts.evaluate(now, self.fleet, list(self.fleet.vehicles))
        alerts.evaluate_rest(now, self.fleet, self.intersections)

    def _unseen(self, site: str) -> None:
        """The hub has lost sight of ``site``: what its links do until they are seen again is
        unknown. Their sequence numbers start afresh (a gap across the blind stretch is not
        loss) and their handover tracking too (a silence or a change of cell across it is no
        outage, no handover)."""
        for vehicle in self.fleet.vehicles.values():
            if vehicle.site != site:
                continue
            for link in vehicle.links.values():
                link.seq.rebase()
                if link.handovers is not None:
                    link.handovers.forget_service()

    def _after_judging(self, now: float, changed: list[tuple[str, str | None]]) -> None:
        """Handovers that became final and link changes go to the intersection book, and
        handovers to their alert rules, as soon as the links are judged."""
        self.intersections.on_link_changes(now, self.fleet, changed)
        self._take_handovers(now)

    def _take_handovers(self, now: float) -> None:
        fresh = self.handovers.take_fresh()
        if not fresh:
            return
        self.intersections.add_handovers(fresh)
        for entry in fresh:
            vehicle = self.fleet.vehicles.get(entry.vehicle)
            if vehicle is not None:
                self.alerts.on_handover(now, vehicle, entry,
                                        self.intersections.zones.name(entry.intersection)
                                        if entry.intersection else None)

    def end_session(self, now: float) -> list[VehicleTrack]:
        """The end of one drive of a replay whose input then pauses for longer than a session
        gap (telemetry/sessions.py): handovers still held are drained, every vehicle and RSU
        is retired, holds are forgotten. Returns the retired vehicles. Live hubs never call
        this: a silent fleet is something an operator must see."""
        self.drain_handovers(now)
        retired = self.fleet.end_session()
        self.handovers.end_session()
        self._bindings.clear()  # they hold the retired tracks' handlers
        self.intersections.end_session()
        self.alerts.end_session()
        return retired

    def drain_handovers(self, now: float) -> None:
        """End of a replay's input: every handover still waiting for its window, as it is."""
        self.fleet.drain_handovers(now)
        self._take_handovers(now)
