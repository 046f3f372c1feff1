"""The alert engine: rules over facts, with for/clear durations, escalation and inhibition.

All decisions take the time they are given (the hub's clock live, the log's clock in replay).
Every transition is journaled first and only then passed to listeners (the console), so no
operator can be told something the journal does not hold.

Per (rule, subject) there is at most one open alert: while it is open, the rule firing again
only keeps it open. After it resolves automatically, firing again within ``reopen_within_s``
reopens the same alert (counted in ``flaps``) instead of raising a new one: a link hovering on a
threshold shows up as one flapping alert, not as a storm.

In a hub pair (l4mon/leadership.py) the standby's engine runs with ``leading`` False: it
evaluates the same rules on the same state, so its holds (``for_s``, ``clear_for_s``) are timed
as the leader's are, but it decides nothing: no raise, resolve or escalation is made, journaled
or broadcast. What the leader journals is applied to it instead (``mirror``), and the one-off
raises it would have made (events, handovers: they are not a state that still holds later) are
kept for a while (``deferred``). On promotion (``promote``) it raises those the journal shows
the leader did not have, and the next evaluation does the rest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from l4mon.alerts.duty import DutyRoster
from l4mon.alerts.facts import (
    RECENT_S,
    EventFacts,
    HandoverFacts,
    HubFacts,
    IntersectionFacts,
    LinkFacts,
    RsuFacts,
    SenderFacts,
    SiteFacts,
    VehicleFacts,
)
from l4mon.alerts.incidents import CausesOf, Incident, IncidentBook
from l4mon.alerts.model import (
    ACKNOWLEDGED,
    RAISED,
    RESOLVED,
    SEVERITY_RANK,
    T_ACKNOWLEDGED,
    T_ESCALATED,
    T_GROUPED,
    T_RAISED,
    T_REOPENED,
    T_RESOLVED,
    Alert,
    Transition,
)
from l4mon.alerts.rules import Rule, RuleSet, runbooks
from l4mon.store.journal import Journal
from l4mon.store.keeper import JournalKeeper, JournalUnavailable
from telemetry.fleet import Fleet, HandoverEntry
from telemetry.vehicle import OFFLINE, OUT_OF_SERVICE, VehicleTrack
from telemetry.wire import VehicleEvent

if TYPE_CHECKING:
    from handover.intersections import IntersectionBook
    from l4mon.feed import FeedWatch
    from l4mon.ingest.mqtt_status import MqttStatus
    from telemetry.linkmap.outlook import LookAhead

log = logging.getLogger("l4mon.alerts")

Key = tuple[str, str | None, str | None]  # (rule, vehicle, RSU or intersection, link)
Listener = Callable[[Transition, Alert], None]
#: An alert's possible shared causes, per grouping ``by`` (l4mon/alerts/incidents.py).
Causes = Callable[[Alert], CausesOf]


class AlertNotFound(KeyError):
    pass


class IncidentNotFound(KeyError):
    pass


class AlertClosed(ValueError):
    """The alert is already resolved."""


class NotLeader(RuntimeError):
    """This hub is the standby of a pair: the leader decides alerts and takes operators'
    actions (l4mon/leadership.py)."""


class StillHolds(ValueError):
    """An operator asked to resolve an alert whose condition still holds: resolved now, it
    would be raised again at once. ``why`` is the condition's figures, in words."""

    def __init__(self, alert_id: int, why: str) -> None:
        super().__init__(f"alert {alert_id}: the condition still holds ({why}); resolved now, "
                         "it would be raised again at once")
        self.why = why


#: Rule scopes whose alerts are raised once, on arrival of something (an event, a final
#: handover record), not while a condition holds: a standby keeps what it would have raised.
ONE_SHOT_SCOPES = frozenset({"event", "handover"})
#: At most this many one-off raises are kept by a standby (a storm of events is bounded).
DEFERRED_MAX = 10_000
#: Who resolves the alerts of a vehicle that leaves service (``resolved_by``): not an
#: operator, and not the condition clearing, so nothing reopens them (flap damping reopens
#: only what the system resolved, ``resolved_by`` None).
SERVICE_ACTOR = "service"
#: Who resolves the alerts of a vehicle the hub let go (telemetry/newcomers.py: a newcomer never
#: confirmed): final, like an operator's; the journal keeps them resolved across restarts.
EVICTED_ACTOR = "evicted"
#: How far before an event's own time (its sender's clock) the leader's raise may lie and
#: still count as that event's: the sender's clock may run a little ahead of the hubs'.
SENT_SLACK_S = 0.5


def _covers(last: Alert, one: Deferred) -> bool:
    """Whether the subject's newest alert ``last`` already stands for the kept raise ``one``."""
    if last.is_open:
        return True
    if last.resolved_at is not None and last.resolved_at >= one.at:
        return True
    raised = last.last_raised_at if last.last_raised_at is not None else last.raised_at
    return one.sent is not None and raised >= one.sent - SENT_SLACK_S


@dataclass(slots=True, frozen=True)
class Deferred:
    """A one-off raise a standby would have made at ``at`` (when it received the event)."""

    at: float
    rule: str
    key: Key
    site: str | None
    detail: str
    intersection: str | None
    #: The event's own time (its sender's ``ts``); None for a handover record. A standby may
    #: receive an event long after it was sent (queued by the broker while it was down).
    sent: float | None = None
    title: str | None = None
    #: Raised by this hub alone while it was fenced: kept until a promotion, however long the
    #: journal was away (a standby's own raises expire after ``defer_s``).
    fenced: bool = False


@dataclass(slots=True)
class _Track:
    pending_since: float | None = None
    clear_since: float | None = None
    alert: Alert | None = None  # the open alert, or the last resolved one (for reopening)


class AlertEngine:
    """Never called concurrently: the hub's loop owns it (ticks, events, API actions)."""

    def __init__(self, *, rules: list[Rule], journal: Journal, duty: DutyRoster,
                 ul_required_kbps: Callable[[str], float | None],
                 planned: Callable[[str, float], bool | None] | None = None) -> None:
        self.rules = rules
        self.journal = journal
        self.duty = duty
        self.ul_required_kbps = ul_required_kbps
        #: Whether a vehicle is planned in service at a time (the timetable); None: none.
        self.planned = planned
        self.listeners: list[Listener] = []
        self._tracks: dict[Key, _Track] = {}
        self.open: dict[int, Alert] = {}
        #: Every write goes through the keeper: journaled, or kept in order while the journal
        #: cannot take it (l4mon/store/keeper.py).
        self.keeper = JournalKeeper(journal)
        self.keeper.renumbered.append(self._renumbered)
        self._by_scope: dict[str, list[Rule]] = {}
        for rule in rules:
            self._by_scope.setdefault(rule.scope, []).append(rule)
        #: Rule name -> its runbook (what the operator does next), as the API shows it.
        self.runbooks = runbooks(rules)
        #: Rule name -> whether it is a site rule (its alert's subject is the site).
        self._site_rules = {rule.name: rule.scope == "site" for rule in rules}
        #: The hub's feed watch, once it has run (l4mon/feed.py): site rules inhibit with it.
        self.feed: FeedWatch | None = None
        #: Incidents: several vehicles' alerts with one cause (the rules file's groupings).
        self.incidents = IncidentBook(rules.groups if isinstance(rules, RuleSet) else ())
        #: What an alert's vehicle shares with others (its cells, its intersection); the hub
        #: sets it (l4mon/hub.py). None: no grouping.
        self.causes: Causes | None = None
        #: The link map's look-ahead (telemetry/linkmap/outlook.py) behind the link facts
        #: ``weak_ahead*``; the hub sets it when ``[linkmap] path`` names a map.
        self.lookahead: LookAhead | None = None
        #: False on the standby of a hub pair: evaluate, but decide nothing (module docstring).
        self.leading = True
        #: The broker connection's status (l4mon/ingest/mqtt_status.py) behind the hub facts
        #: ``mqtt_session*`` and the ``sender`` scope; set by a live hub, None in replay.
        self.transport: MqttStatus | None = None
        #: A standby's one-off raises, oldest first, kept ``defer_s`` seconds (and at most
        #: ``DEFERRED_MAX``) for ``promote``.
        self.deferred: deque[Deferred] = deque(maxlen=DEFERRED_MAX)
        self.defer_s = 30.0
        self.restored_seq = 0
        #: A journal outage this hub lived through fenced (since, why): said in the journal
        #: as a ``journal_unavailable`` alert once this hub leads again (``promote``).
        self._outage: tuple[float, str | None] | None = None
        self.restore()

    def restore(self) -> None:
        """Take up the journal's state, as after a restart: open alerts, and the last
        automatically resolved one per subject, so that a flap across the restart still
        reopens it. The journal's newest transition before reading is ``restored_seq``: a
        standby follows the journal from there, so nothing committed meanwhile is missed
        (what it sees twice, it applies twice to the same end)."""
        journal = self.journal
        self.restored_seq = journal.last_seq()
        self.open = {}
        self._tracks = {}
        self.incidents = IncidentBook(self.incidents.groups)
        for alert in journal.last_auto_resolved():
            self._tracks[self.key_of(alert)] = _Track(alert=alert)
        for alert in journal.open_alerts():
            self.open[alert.id] = alert
            self._tracks[self.key_of(alert)] = _Track(alert=alert)
        self.incidents.restore(self.open.values())

    def rejoin(self, now: float) -> None:
        """A fenced hub of a pair is back on its journal: it takes up the journal's state as
        a restarted hub does, and what it decided alone becomes what a standby keeps — its
        one-off raises (events, handovers), which a promotion raises if the journal lacks
        them (``promote``); conditions that still hold are raised again by evaluation."""
        rules = {rule.name: rule for rule in self.rules}
        keeper = self.keeper
        self._outage = (keeper.down_since if keeper.down_since is not None else now,
                        keeper.last_error)
        for alert, kind, at, detail in keeper.take():
            rule = rules.get(alert.rule)
            if rule is not None and rule.scope in ONE_SHOT_SCOPES and kind == T_RAISED:
                self.deferred.append(Deferred(at, rule.name, self.key_of(alert), alert.site,
                                              detail, alert.intersection, None, alert.title,
                                              fenced=True))
        self.restore()

    def evaluate_sites(self, now: float, feed: FeedWatch) -> None:
        """Site rules over each site's feed (can the hub see it?). Run before the vehicles'
        rules at every tick, so a blind hub is said once, before any vehicle looks down."""
        self.feed = feed
        rules = self._by_scope.get("site")
        if not rules:
            return
        for site, state in feed.sites.items():
            facts = SiteFacts(site, state, now)
            for rule in rules:
                self._step(rule, (rule.name, site, None), facts, now, site)

    def evaluate_hub(self, now: float) -> None:
        """Hub rules: whether the hub can keep what it decides (its journal) and its broker
        session is its own; then sender rules. At every tick; a hub alert has no vehicle and
        goes to everyone on duty."""
        rules = self._by_scope.get("hub")
        if rules:
            facts = HubFacts(self.keeper, now, self.transport)
            for rule in rules:
                self._step(rule, (rule.name, None, None), facts, now, None)
        self._evaluate_senders(now)

    def _evaluate_senders(self, now: float) -> None:
        """Sender rules, for each sender the transport refused lately and each whose alert is
        still open (so it can clear once the sender is forgotten). The alert names the sender
        as its vehicle."""
        rules = self._by_scope.get("sender")
        if not rules or self.transport is None:
            return
        senders = self.transport.senders
        records = senders.records
        names = {rule.name for rule in rules}
        # A sender whose last refusal is older than the window has nothing to raise: only
        # those with an open alert are looked at again (to clear it).
        subjects = dict.fromkeys(r.sender for r in senders.active(now, RECENT_S))
        for alert in self.open.values():
            if alert.rule in names and alert.vehicle is not None:
                subjects[alert.vehicle] = None
        for sender in subjects:
            record = records.get(sender)
            facts = SenderFacts(sender, record, now)
            for rule in rules:
                self._step(rule, (rule.name, sender, None), facts, now,
                           record.site if record is not None else None)

    def end_session(self) -> None:
        """The input paused between two drives (telemetry/sessions.py): no hold spans the
        gap, so pending and clearing conditions start again; open alerts stay open."""
        for track in self._tracks.values():
            track.pending_since = None
            track.clear_since = None

    # -- evaluation -----------------------------------------------------------------------------

    def active_subjects(self) -> set[str]:
        """Vehicles (and RSUs) with a pending, clearing or open alert: their holds are timed
        precisely, so they are evaluated at every tick, not only in their turn."""
        out = set()
        for (_, subject, _), track in self._tracks.items():
            if subject is not None and (track.pending_since is not None
                                        or track.clear_since is not None
                                        or (track.alert is not None and track.alert.is_open)):
                out.add(subject)
        return out

    def evaluate(self, now: float, fleet: Fleet, vehicles: Iterable[str] | None = None) -> None:
        """Evaluate every rule for ``vehicles`` (default: the whole fleet and its RSUs)."""
        ids = fleet.vehicles.keys() if vehicles is None else vehicles
        vehicle_rules = self._by_scope.get("vehicle", [])
        link_rules = self._by_scope.get("link", [])
        event_rules = [r for r in self._by_scope.get("event", []) if r.clear is not None]
        planned = self.planned
        handover_rules = [r for r in self._by_scope.get("handover", []) if r.clear is not None]
        for vid in ids:
            vehicle = fleet.vehicles.get(vid)
            if vehicle is None:
                continue
            facts = VehicleFacts(vehicle, now, ul_required_kbps=self.ul_required_kbps(vid),
                                 ul_max_age_s=fleet.thresholds.window_s,
                                 planned=None if planned is None else planned(vid, now))
            if not vehicle.serving:  # out of service: only the rules made for it
                for rule in vehicle_rules:
                    if rule.out_of_service:
                        self._step(rule, (rule.name, vid, None), facts, now, vehicle.site)
                continue
            for rule in vehicle_rules:
                self._step(rule, (rule.name, vid, None), facts, now, vehicle.site)
            for rule in event_rules:  # only clearing: raising happens on arrival
                self._clear_event_rule(rule, (rule.name, vid, None), facts, now)
            outlook = self.lookahead.links(vehicle, now) \
                if self.lookahead is not None and link_rules else None
            for link in vehicle.links.values():
                link_facts = LinkFacts(vehicle, link, now,
                                       outlook.get(link.name) if outlook else None)
                for rule in link_rules:
                    self._step(rule, (rule.name, vid, link.name), link_facts, now, vehicle.site)
                for rule in handover_rules:  # only clearing: raising happens on arrival
                    self._clear_event_rule(rule, (rule.name, vid, link.name), link_facts, now)
        if vehicles is None:
            self.evaluate_rest(now, fleet)

    def evaluate_rest(self, now: float, fleet: Fleet,
                      intersections: IntersectionBook | None = None) -> None:
        """What a full evaluation does besides the vehicles: RSU and intersection rules, and
        due escalations."""
        for rule in self._by_scope.get("rsu", []):
            for rsu in fleet.rsus.values():
                self._step(rule, (rule.name, rsu.id, None), RsuFacts(rsu, now), now, rsu.site)
        ix_rules = self._by_scope.get("intersection", [])
        if ix_rules and intersections is not None:
            site = intersections.zones.site.name if intersections.zones.site else None
            for ix in intersections.intersections():
                facts = IntersectionFacts(intersections, ix, now)
                for rule in ix_rules:
                    self._step(rule, (rule.name, ix, None), facts, now, site)
        self._escalate_due(now)

    def on_handover(self, now: float, vehicle: VehicleTrack, entry: HandoverEntry,
                    intersection_name: str | None) -> None:
        """A handover record became final: handover rules raise at once (no for-duration)."""
        rules = self._by_scope.get("handover")
        if not rules or not vehicle.serving:
            return
        facts = HandoverFacts(entry, intersection_name)
        for rule in rules:
            if not rule.when(facts):
                continue
            key = (rule.name, vehicle.id, entry.link)
            track = self._tracks.setdefault(key, _Track())
            if track.alert is not None and track.alert.is_open and self.leading:
                continue  # one alert per (rule, vehicle, link) at a time (a standby: as below)
            self._raise(rule, key, track, now, vehicle.site, facts.summary(),
                        intersection=entry.intersection, title=rule.title_for(facts))

    def on_event(self, now: float, vehicle: VehicleTrack, event: VehicleEvent) -> None:
        """An event arrived: event rules raise at once (no for-duration)."""
        facts = EventFacts(event)
        for rule in self._by_scope.get("event", []):
            if not rule.when(facts):
                continue
            key = (rule.name, vehicle.id, None)
            track = self._tracks.setdefault(key, _Track())
            detail = f"{event.kind}: {event.detail}" if event.detail else event.kind
            if track.alert is not None and track.alert.is_open and self.leading:
                # One alert per (rule, vehicle) at a time. A standby keeps the event even so:
                # the open alert it sees may already be resolved on the leader (its copy of
                # the journal lags by a poll), and ``promote`` decides with the whole journal.
                continue
            self._raise(rule, key, track, now, vehicle.site, detail, sent=event.ts,
                        title=rule.title_for(facts))

    def on_service(self, now: float, vehicle: VehicleTrack, status: str,
                   reason: str | None) -> None:
        """The vehicle entered or left service, or its MQTT will said its connection dropped:
        journaled (the lifecycle is part of the audit trail), and on leaving, every open alert
        of the vehicle closes with the reason, except those of rules made for vehicles out of
        service. Holds of the vehicle start again: nothing measured before the change counts
        after it. A standby only forgets its holds: the leader journals and resolves, and the
        standby mirrors that."""
        for (_, subject, _), track in self._tracks.items():
            if subject == vehicle.id:
                track.pending_since = None
                track.clear_since = None
        if not self.leading:
            return
        self.keeper.service(vehicle=vehicle.id, site=vehicle.site, status=status, at=now,
                            reason=reason)
        if status == OFFLINE:
            log.warning("vehicle %s: connection lost without a word (its MQTT will)%s",
                        vehicle.id, f": {reason}" if reason else "")
            return
        if status != OUT_OF_SERVICE:
            return
        why = "vehicle left service" + (f": {reason}" if reason else "")
        for alert in sorted(self.open.values(), key=lambda a: a.id):
            if alert.vehicle != vehicle.id:
                continue
            rule = self._rule(alert.rule)
            if rule is not None and rule.out_of_service:
                continue
            self._resolve(alert, now, actor=SERVICE_ACTOR, reason=why)
            track = self._tracks.get(self.key_of(alert))
            if track is not None:  # final, like an operator's: a new service raises anew
                track.alert = alert

    def alerts_by_vehicle(self) -> dict[str, int]:
        """Each vehicle with an open alert: 2 when an operator acknowledged one (someone is
        handling it), else 1 (telemetry/newcomers.py asks before letting a vehicle go)."""
        out: dict[str, int] = {}
        for alert in self.open.values():
            if alert.vehicle is not None:
                handled = 2 if alert.acknowledged_at is not None else 1
                out[alert.vehicle] = max(out.get(alert.vehicle, 0), handled)
        return out

    def forget_vehicle(self, vehicle: VehicleTrack, now: float, why: str) -> None:
        """The hub let ``vehicle`` go (evicted): its open alerts are resolved by
        ``EVICTED_ACTOR`` with ``why`` (journaled, so a restart does not bring them back) and
        its holds are dropped. A standby only drops its holds: the leader resolves."""
        vid = vehicle.id
        if self.leading:
            for alert in sorted(self.open.values(), key=lambda a: a.id):
                if alert.vehicle == vid:
                    self._resolve(alert, now, actor=EVICTED_ACTOR, reason=why)
        links = (None, *vehicle.links)
        for rule in self.rules:
            for link in links:
                self._tracks.pop((rule.name, vid, link), None)

    def _inhibited(self, rule: Rule, subject: str | None, site: str | None, now: float) -> bool:
        for other in rule.inhibited_by:
            if self._site_rules.get(other):
                # the site's feed: its open alert, or a site going quiet before it is declared
                if self.feed is not None and self.feed.holds(site, now):
                    return True
                key: Key = (other, site, None)
            else:
                key = (other, subject, None)
            track = self._tracks.get(key)
            if track is not None and track.alert is not None and track.alert.is_open:
                return True
        return False

    def _step(self, rule: Rule, key: Key, facts: Any, now: float, site: str | None) -> None:
        track = self._tracks.get(key)
        active = rule.when(facts)
        alert = track.alert if track is not None else None
        if alert is None or not alert.is_open:
            if not active:
                if track is not None:
                    track.pending_since = None
                return
            if track is None:
                track = self._tracks[key] = _Track()
            if self._inhibited(rule, key[1], site, now):
                track.pending_since = None
                return
            if track.pending_since is None:
                track.pending_since = now
            if now - track.pending_since >= rule.for_s - 1e-6:
                self._raise(rule, key, track, now, site, self._words(rule, facts, key[1]),
                            title=rule.title_for(facts))
            return
        assert track is not None
        cleared = rule.clear(facts) if rule.clear is not None else not active
        self._hold_clear(rule, track, alert, cleared, now)

    def _clear_event_rule(self, rule: Rule, key: Key, facts: VehicleFacts | LinkFacts,
                          now: float) -> None:
        track = self._tracks.get(key)
        if track is None or track.alert is None or not track.alert.is_open:
            return
        self._hold_clear(rule, track, track.alert, rule.clear(facts), now)  # type: ignore[misc]

    def _hold_clear(self, rule: Rule, track: _Track, alert: Alert, cleared: bool,
                    now: float) -> None:
        if not cleared:
            track.clear_since = None
            return
        if track.clear_since is None:
            track.clear_since = now
        if now - track.clear_since >= rule.clear_for_s - 1e-6:
            if not self.leading:
                return  # the leader resolves it; held, so a promotion resolves it at once
            self._resolve(alert, now, actor=None, reason="condition cleared")
            track.clear_since = None
            track.pending_since = None

    # -- transitions ----------------------------------------------------------------------------

    def _raise(self, rule: Rule, key: Key, track: _Track, now: float, site: str | None,
               detail: str, *, intersection: str | None = None,
               sent: float | None = None, title: str | None = None) -> None:
        if not self.leading:
            # A held condition stays pending (a promotion raises it at once if it still
            # holds); a one-off is kept, since nothing would bring it back.
            if rule.scope in ONE_SHOT_SCOPES:
                self._defer(Deferred(now, rule.name, key, site, detail, intersection, sent,
                                     title))
            return
        title = title or rule.title
        subject, link = key[1], key[2]
        # RSUs, intersections and the site's feed are the site's, not a vehicle's: everyone
        # on duty sees them.
        site_wide = rule.scope in ("rsu", "intersection", "site", "hub")
        if rule.scope == "intersection":
            intersection = subject
        on_duty = self.duty.operators() if site_wide else self.duty.covering(subject)
        last = track.alert
        track.pending_since = None
        track.clear_since = None
        if last is not None and last.resolved_by is None and last.resolved_at is not None \
                and now - last.resolved_at <= rule.reopen_within_s:
            last.state = RAISED
            last.flaps += 1
            last.last_raised_at = now  # a fresh occurrence: it needs (and gets time for) an ack
            last.resolved_at = None
            last.resolve_reason = None
            last.acknowledged_at = None
            last.acknowledged_by = None
            last.escalated = False
            last.escalated_at = None
            last.detail = detail
            last.title = title
            last.intersection = intersection
            causes = self._causes_of(last)
            self._commit(last, T_REOPENED, now, None, f"flap {last.flaps}: {detail}", on_duty)
            alert = last
        else:
            alert = Alert(
                id=0, rule=rule.name, title=title, severity=rule.severity, site=site,
                vehicle=None if site_wide else subject, link=link,
                rsu=subject if rule.scope == "rsu" else None, state=RAISED,
                raised_at=now, detail=detail, on_duty_at_raise=on_duty,
                intersection=intersection,
            )
            causes = self._causes_of(alert)
            self._commit(alert, T_RAISED, now, None, detail, on_duty, new=True)
            track.alert = alert
        self.open[alert.id] = alert
        if causes is not None:
            self._group(alert, causes, now)
        if alert.severity == "takeover" and not on_duty and not alert.escalated:
            self._escalate(alert, now, "nobody on duty for this vehicle")

    def _causes_of(self, alert: Alert) -> CausesOf | None:
        """For a groupable alert, its causes; the open incident it joins is set on it now, so
        its very first transition says so (the console never shows it alone)."""
        if self.causes is None or not self.incidents.groups_for(alert.rule):
            return None
        causes = self.causes(alert)
        self.incidents.join(alert, causes)
        return causes

    def _group(self, alert: Alert, causes: CausesOf, now: float) -> None:
        if not self.keeper.ok:
            # An incident's id is its first alert's, given by the journal: while the journal
            # is away, alerts stand alone (grouping resumes with it).
            return
        if alert.incident is not None:
            self.incidents.admit(alert)
            incident = self.incidents.incident_of(alert)
            if incident is not None:
                self._cover(incident, now)
            return
        formed = self.incidents.form(alert, causes, now)
        if formed is None:
            return
        incident, members = formed
        detail = f"incident {incident.id}: {incident.cause}, " + (
            f"{len(members)} alerts" if self._by_vehicle(incident)
            else f"{len(incident.vehicles())} vehicles")
        for member in members:
            self._commit(member, T_GROUPED, now, None, detail, self.duty.covering(member.vehicle))
        self._cover(incident, now)

    def _by_vehicle(self, incident: Incident) -> bool:
        return any(g.name == incident.group and g.by == "vehicle"
                   for g in self.incidents.groups)

    def _cover(self, incident: Incident, now: float) -> None:
        """One vehicle, one cause: an operator who acknowledged the card is handling the
        vehicle, so what joins it later (the MRM after the takeover request they took, or
        that they ordered) is acknowledged by the hub in their name, not cued as new. A
        card of several vehicles is not covered so: another vehicle needs its own look."""
        if not self._by_vehicle(incident):
            return
        acked = [a for a in incident.members.values()
                 if a.state == ACKNOWLEDGED and a.acknowledged_by is not None]
        if not acked:
            return
        by = max(acked, key=lambda a: (a.acknowledged_at or 0.0, a.id))
        for member in sorted(incident.members.values(), key=lambda a: a.id):
            if member.state != RAISED:
                continue
            member.state = ACKNOWLEDGED
            member.acknowledged_at = now
            member.acknowledged_by = by.acknowledged_by
            self._commit(member, T_ACKNOWLEDGED, now, None,
                         f"covered by {by.acknowledged_by}'s acknowledgement of alert {by.id} "
                         f"(incident {incident.id}: one vehicle, one cause)",
                         self.duty.covering(member.vehicle))

    def _escalate_due(self, now: float) -> None:
        if not self.leading:
            return  # the leader escalates; a promotion escalates what is due at once
        for alert in list(self.open.values()):
            if alert.state != RAISED or alert.escalated or alert.severity != "takeover":
                continue
            rule = self._rule(alert.rule)
            since = alert.last_raised_at if alert.last_raised_at is not None else alert.raised_at
            if rule is not None and rule.escalate_after_s is not None \
                    and now - since >= rule.escalate_after_s - 1e-6:
                self._escalate(alert, now, f"not acknowledged within {rule.escalate_after_s:g} s")

    def _escalate(self, alert: Alert, now: float, why: str) -> None:
        alert.escalated = True
        alert.escalated_at = now
        self._commit(alert, T_ESCALATED, now, None, why, self.duty.covering(alert.vehicle))

    def _resolve(self, alert: Alert, now: float, *, actor: str | None, reason: str) -> None:
        alert.state = RESOLVED
        alert.resolved_at = now
        alert.resolved_by = actor
        alert.resolve_reason = reason
        self.open.pop(alert.id, None)
        self._commit(alert, T_RESOLVED, now, actor, reason, self.duty.covering(alert.vehicle))
        self.incidents.on_resolved(alert, now)

    def _commit(self, alert: Alert, kind: str, now: float, actor: str | None, detail: str,
                on_duty: list[str], *, new: bool = False) -> None:
        """The system's transition: journaled, or kept until the journal is back (the keeper
        gives it a provisional id and a seq of 0); either way the consoles are told now."""
        transition = self.keeper.write(alert, kind=kind, at=now, actor=actor, detail=detail,
                                       on_duty=on_duty, new=new)
        self._tell(transition, alert)

    def _act(self, alert: Alert, change: Callable[[], None], kind: str, now: float,
             actor: str, detail: str) -> None:
        """An operator's transition: journaled now, or refused (``JournalUnavailable``) with
        the alert as it was: an action that is not journaled did not happen."""
        if not self.keeper.ok:
            raise JournalUnavailable(self.keeper.why())
        before = dataclasses.replace(alert)
        change()
        try:
            transition = self.keeper.write_now(alert, kind=kind, at=now, actor=actor,
                                               detail=detail,
                                               on_duty=self.duty.covering(alert.vehicle))
        except JournalUnavailable:
            for f in dataclasses.fields(alert):
                setattr(alert, f.name, getattr(before, f.name))
            raise
        self._tell(transition, alert)

    def _tell(self, transition: Transition, alert: Alert) -> None:
        for listener in self.listeners:
            try:
                listener(transition, alert)
            except Exception:  # a console bug must never cost the engine its own bookkeeping
                log.exception("alert listener failed on %s of alert %s", transition.kind,
                              alert.id)

    def _renumbered(self, old: int, alert: Alert) -> None:
        """A kept alert got its journal id: the open alerts are keyed by it from now on."""
        if self.open.pop(old, None) is not None and alert.is_open:
            self.open[alert.id] = alert

    @property
    def journal_failures(self) -> int:
        """Transitions the journal could not take when they were made (kept, or dropped)."""
        return self.keeper.unsettled

    def _rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def key_of(self, alert: Alert) -> Key:
        """The (rule, subject, link) the engine tracks ``alert`` under: a site rule's subject
        is the site (``Alert.key`` has no site)."""
        if self._site_rules.get(alert.rule):
            return (alert.rule, alert.site, None)
        return alert.key

    # -- a hub pair's standby -------------------------------------------------------------------

    def _must_lead(self) -> None:
        if not self.leading:
            raise NotLeader("this hub is the standby: the leader decides alerts")

    def _defer(self, raised: Deferred) -> None:
        deferred = self.deferred
        while deferred and raised.at - deferred[0].at > self.defer_s and not deferred[0].fenced:
            deferred.popleft()
        deferred.append(raised)

    def mirror(self, transition: Transition, alert: Alert) -> None:
        """Apply a transition the leader journaled (``alert`` as the journal holds it now) to
        a standby's state, and tell the listeners (its consoles), as if it had made it."""
        key = self.key_of(alert)
        track = self._tracks.setdefault(key, _Track())
        if track.alert is None or track.alert.id <= alert.id:
            track.alert = alert  # the newest alert of the subject, what _step and flaps need
        if transition.kind in (T_RAISED, T_REOPENED, T_RESOLVED):
            track.pending_since = None  # as _raise and _resolve leave them on the leader
            track.clear_since = None
        stale = self.open.get(alert.id)
        if alert.is_open:
            self.open[alert.id] = alert
        else:
            self.open.pop(alert.id, None)
        self.incidents.mirror(alert, stale, transition.at)
        for listener in self.listeners:
            try:
                listener(transition, alert)
            except Exception:
                log.exception("alert listener failed on mirrored %s of alert %s",
                              transition.kind, alert.id)

    def mirror_duty(self) -> bool:
        """Take who is on duty from the journal (the leader's operators); True if it changed."""
        return self.duty.reload()

    def promote(self, now: float) -> list[Alert]:
        """Become the one that decides: raise the kept one-off raises that the journal shows
        the leader did not have, and return them. The caller has caught up with the journal
        first, and evaluates every rule next (what held or cleared meanwhile).

        A kept raise was the leader's when the subject's newest alert (from this hub's state,
        else from the journal) is open, or was resolved at or after the moment this hub
        received the event, or was raised no earlier than ``SENT_SLACK_S`` before the event
        was sent: the leader then raised it, or folded it into an alert open at the time. The
        last test covers an event this hub received late — queued by the broker while it was
        down and delivered on its restart — after the leader had raised and an operator
        resolved it. Otherwise it is raised now, with the time it was received
        (docs/operations.md, "A hub pair")."""
        self.leading = True
        kept, self.deferred = list(self.deferred), deque(maxlen=DEFERRED_MAX)
        raised: list[Alert] = []
        for one in kept:
            if now - one.at > self.defer_s and not one.fenced:
                continue
            rule = self._rule(one.rule)
            if rule is None:
                continue
            track = self._tracks.setdefault(one.key, _Track())
            last = track.alert or self._newest_journaled(one)
            if last is not None and _covers(last, one):
                continue
            self._raise(rule, one.key, track, one.at, one.site, one.detail,
                        intersection=one.intersection, title=one.title)
            if track.alert is not None:
                raised.append(track.alert)
        self._record_outage(now)
        return raised

    def _record_outage(self, now: float) -> None:
        """A journal outage lived through fenced, in the journal after all: the hub rules on
        the journal raised at its start and resolved now (only the leader writes)."""
        outage, self._outage = self._outage, None
        if outage is None:
            return
        since, why = outage
        for rule in self._by_scope.get("hub", []):
            if "journal" not in rule.when_text:
                continue
            key: Key = (rule.name, None, None)
            track = self._tracks.setdefault(key, _Track())
            if track.alert is not None and track.alert.is_open:
                continue
            self._raise(rule, key, track, since, None,
                        f"the alert journal did not take writes ({why or 'no answer'}); this "
                        "hub alerted from memory meanwhile", title=rule.title)
            if track.alert is not None and track.alert.is_open:
                self._resolve(track.alert, now, actor=None,
                              reason="the alert journal takes writes again")

    def _newest_journaled(self, one: Deferred) -> Alert | None:
        """The newest journaled alert of a kept raise's rule and subject: a hub that started
        after the leader raised (and maybe resolved) it has no track of it."""
        rule, subject, link = one.key
        if self._site_rules.get(rule) or subject is None:
            return None
        since = min(one.at, one.sent if one.sent is not None else one.at) - self.defer_s
        found = [a for a in self.journal.alerts(vehicle=subject, since=since, limit=500)
                 if a.rule == rule and a.link == link]
        return max(found, key=lambda a: a.id or 0, default=None)

    # -- operator actions -----------------------------------------------------------------------

    def get(self, alert_id: int) -> Alert:
        alert = self.open.get(alert_id) or self.journal.alert(alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return alert

    def acknowledge(self, alert_id: int, operator: str, now: float, note: str = "") -> Alert:
        self._must_lead()
        alert = self.get(alert_id)
        if not alert.is_open:
            raise AlertClosed(f"alert {alert_id} is resolved")
        if alert.state == ACKNOWLEDGED:
            return alert

        def acknowledged() -> None:
            alert.state = ACKNOWLEDGED
            alert.acknowledged_at = now
            alert.acknowledged_by = operator

        self._act(alert, acknowledged, T_ACKNOWLEDGED, now, operator, note)
        return alert

    def incident(self, incident_id: int) -> Incident:
        found = self.incidents.get(incident_id)
        if found is None:
            raise IncidentNotFound(incident_id)
        return found

    def acknowledge_incident(self, incident_id: int, operator: str, now: float,
                             note: str = "") -> Incident:
        """An operator acknowledges the incident as a whole: each open member not yet
        acknowledged is, each journaled as its own acknowledgement."""
        self._must_lead()
        incident = self.incident(incident_id)
        if not incident.is_open:
            raise AlertClosed(f"incident {incident_id} is resolved")
        note = f"with incident {incident_id}" + (f": {note}" if note else "")
        for alert in list(incident.members.values()):
            if alert.state == RAISED:
                self.acknowledge(alert.id, operator, now, note)
        return incident

    def resolve(self, alert_id: int, operator: str, now: float, reason: str, *,
                fleet: Fleet | None = None, force: bool = False) -> Alert:
        """An operator resolves an alert. With ``fleet``, one whose condition still holds is
        refused with ``StillHolds`` unless ``force``: the operator is told before it is done
        that it would come straight back, rather than seeing it silently re-raised."""
        self._must_lead()
        alert = self.get(alert_id)
        if not alert.is_open:
            raise AlertClosed(f"alert {alert_id} is resolved")
        if fleet is not None and not force:
            why = self.still_holds(alert, fleet, now)
            if why is not None:
                raise StillHolds(alert_id, why)

        def resolved() -> None:
            alert.state = RESOLVED
            alert.resolved_at = now
            alert.resolved_by = operator
            alert.resolve_reason = reason

        self._act(alert, resolved, T_RESOLVED, now, operator, reason)
        self.open.pop(alert.id, None)
        self.incidents.on_resolved(alert, now)
        track = self._tracks.get(self.key_of(alert))
        if track is not None:  # an operator's resolve is final: firing again raises a new alert
            track.alert = alert
            track.pending_since = None
            track.clear_since = None
        return alert

    def still_holds(self, alert: Alert, fleet: Fleet, now: float) -> str | None:
        """The alert's condition in words if it holds now for its subject, else None. Event and
        handover alerts are one-off happenings (an operator's resolve is their end): None."""
        rule = self._rule(alert.rule)
        if rule is None:
            return None
        facts: Any = None
        if rule.scope in ("vehicle", "link"):
            vehicle = fleet.vehicles.get(alert.vehicle or "")
            if vehicle is None:
                return None
            if rule.scope == "vehicle":
                facts = VehicleFacts(vehicle, now, ul_required_kbps=self.ul_required_kbps(
                    vehicle.id), ul_max_age_s=fleet.thresholds.window_s,
                    planned=None if self.planned is None else self.planned(vehicle.id, now))
            elif alert.link in vehicle.links:
                outlook = self.lookahead.links(vehicle, now) \
                    if self.lookahead is not None else None
                facts = LinkFacts(vehicle, vehicle.links[alert.link], now,
                                  outlook.get(alert.link) if outlook else None)
        elif rule.scope == "rsu" and alert.rsu in fleet.rsus:
            facts = RsuFacts(fleet.rsus[alert.rsu], now)  # type: ignore[index]
        elif rule.scope == "site" and self.feed is not None and alert.site in self.feed.sites:
            facts = SiteFacts(alert.site, self.feed.sites[alert.site], now)  # type: ignore[arg-type,index]
        if facts is None or not rule.when(facts):
            return None
        return self._words(rule, facts, alert.vehicle)

    def _words(self, rule: Rule, facts: Any, vehicle: str | None) -> str:
        required = self.ul_required_kbps(vehicle) if vehicle is not None \
            and self.lookahead is not None else None
        return _describe(rule, facts, self.lookahead, required)

    def view(self, alert: Alert) -> dict[str, Any]:
        """The alert as the API and the console show it: with its rule's runbook (None: the
        rule has none, or is no longer in the rules the hub runs)."""
        return {**alert.to_dict(), "runbook": self.runbooks.get(alert.rule)}

    def open_alerts(self) -> list[Alert]:
        """Open alerts, most urgent first: severity, then age."""
        return sorted(self.open.values(),
                      key=lambda a: (-SEVERITY_RANK[a.severity], a.raised_at, a.id))


def _describe(rule: Rule, facts: Any, lookahead: LookAhead | None = None,
              required_kbps: float | None = None) -> str:
    ahead = getattr(facts, "ahead", None)
    if ahead is not None and lookahead is not None and ahead.weak \
            and "weak_ahead" in rule.when_text:
        return lookahead.describe(ahead, required_kbps)
    summary = getattr(facts, "summary", None)
    if summary is not None:
        return str(summary())
    names = [n for n in ("connectivity", "state", "mode", "rtt_p95_ms", "telemetry_age_s",
                         "ul_kbps_usable", "links_down", "health", "service")
             if n in rule.when_text or (n == "service" and "running" in rule.when_text)]
    parts = []
    for name in names:
        value = getattr(facts, name, None)
        parts.append(f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts)
