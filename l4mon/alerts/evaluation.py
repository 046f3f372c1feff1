"""Rule evaluation with holds: each rule over its facts, pending for ``for_s`` before it
raises and clearing for ``clear_for_s`` before it resolves, inhibited by the rules it names."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from handover.book import HandoverEntry
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
from l4mon.alerts.lifecycle import EVICTED_ACTOR, SERVICE_ACTOR
from l4mon.alerts.rules import Rule
from l4mon.alerts.tracks import Key, Track
from l4mon.records.alert import (
    Alert,
)
from telemetry.fleet import Fleet
from telemetry.vehicle import OFFLINE, OUT_OF_SERVICE, VehicleTrack
from telemetry.wire import VehicleEvent

if TYPE_CHECKING:
    from handover.intersections import IntersectionBook
    from l4mon.site_watch import FeedWatch
    from telemetry.linkmap.outlook import LookAhead

log = logging.getLogger("l4mon.alerts")


class Evaluation:
    """Rules over facts, with their holds. Part of ``AlertEngine`` (l4mon/alerts/engine.py):
    what holds long enough goes to the lifecycle."""

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
            track = self._tracks.setdefault(key, Track())
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
            track = self._tracks.setdefault(key, Track())
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
                track = self._tracks[key] = Track()
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

    def _hold_clear(self, rule: Rule, track: Track, alert: Alert, cleared: bool,
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

