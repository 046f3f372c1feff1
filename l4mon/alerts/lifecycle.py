"""An alert's lifecycle: raise (or reopen a flap), group into incidents, escalate, resolve;
every transition journaled (or kept in order by the keeper) before the listeners are told."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from l4mon.alerts.incidents import CausesOf, Incident
from l4mon.alerts.rules import Rule
from l4mon.alerts.tracks import Key, Track
from l4mon.records.alert import (
    ACKNOWLEDGED,
    RAISED,
    RESOLVED,
    T_ACKNOWLEDGED,
    T_ESCALATED,
    T_GROUPED,
    T_RAISED,
    T_REOPENED,
    T_RESOLVED,
    Alert,
    Transition,
)
from l4mon.store.keeper import JournalUnavailable

log = logging.getLogger("l4mon.alerts")


#: Who resolves the alerts of a vehicle that leaves service (``resolved_by``): not an
#: operator, and not the condition clearing, so nothing reopens them (flap damping reopens
#: only what the system resolved, ``resolved_by`` None).
SERVICE_ACTOR = "service"
#: Who resolves the alerts of a vehicle the hub let go (telemetry/newcomers.py: a newcomer never
#: confirmed): final, like an operator's; the journal keeps them resolved across restarts.
EVICTED_ACTOR = "evicted"


class Lifecycle:
    """Transitions and who hears of them. Part of ``AlertEngine`` (l4mon/alerts/engine.py)."""

    # -- transitions ----------------------------------------------------------------------------

    def _raise(self, rule: Rule, key: Key, track: Track, now: float, site: str | None,
               detail: str, *, intersection: str | None = None,
               sent: float | None = None, title: str | None = None) -> None:
        if not self.leading:
            self._withhold(rule, key, now, site, detail, intersection, sent, title)
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

