"""A hub pair's standby: it evaluates as the leader does but decides nothing; it mirrors what
the leader journals, keeps the one-off raises it would have made (``deferred``) and raises
those the leader did not have when it is promoted (docs/operations.md, "A hub pair")."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from l4mon.alerts.rules import Rule
from l4mon.alerts.tracks import Key, Track
from l4mon.records.alert import (
    T_RAISED,
    T_REOPENED,
    T_RESOLVED,
    Alert,
    Transition,
)

log = logging.getLogger("l4mon.alerts")


class NotLeader(RuntimeError):
    """This hub is the standby of a pair: the leader decides alerts and takes operators'
    actions (l4mon/leadership.py)."""


#: Rule scopes whose alerts are raised once, on arrival of something (an event, a final
#: handover record), not while a condition holds: a standby keeps what it would have raised.
ONE_SHOT_SCOPES = frozenset({"event", "handover"})
#: At most this many one-off raises are kept by a standby (a storm of events is bounded).
DEFERRED_MAX = 10_000
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



class Standby:
    """Leading or standing by, mirroring and promotion. Part of ``AlertEngine``: it shares the
    engine's tracks, open alerts and lifecycle (l4mon/alerts/engine.py)."""

    def stand_by(self) -> None:
        """This hub is (or starts as) a pair's standby: it evaluates but decides nothing until
        ``promote``. The engine owns its role; the hub pair's Leadership (l4mon/leadership.py)
        says when it changes, through this and ``promote``, never by setting it."""
        self.leading = False

    def rejoin(self, now: float) -> None:
        """A fenced hub of a pair is back on its journal: it takes up the journal's state as
        a restarted hub does, and what it decided alone becomes what a standby keeps — its
        one-off raises (events, handovers), which a promotion raises if the journal lacks
        them (``promote``); conditions that still hold are raised again by evaluation. It is
        then a standby (``stand_by``)."""
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
        self.stand_by()

    # -- a hub pair's standby -------------------------------------------------------------------

    def _must_lead(self) -> None:
        if not self.leading:
            raise NotLeader("this hub is the standby: the leader decides alerts")

    def _withhold(self, rule: Rule, key: Key, now: float, site: str | None, detail: str,
                  intersection: str | None, sent: float | None, title: str | None) -> None:
        """What a standby does instead of raising: a held condition stays pending (a
        promotion raises it at once if it still holds); a one-off is kept, since nothing would
        bring it back."""
        if rule.scope in ONE_SHOT_SCOPES:
            self._defer(Deferred(now, rule.name, key, site, detail, intersection, sent, title))

    def _defer(self, raised: Deferred) -> None:
        deferred = self.deferred
        while deferred and raised.at - deferred[0].at > self.defer_s and not deferred[0].fenced:
            deferred.popleft()
        deferred.append(raised)

    def mirror(self, transition: Transition, alert: Alert) -> None:
        """Apply a transition the leader journaled (``alert`` as the journal holds it now) to
        a standby's state, and tell the listeners (its consoles), as if it had made it."""
        key = self.key_of(alert)
        track = self._tracks.setdefault(key, Track())
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
            track = self._tracks.setdefault(one.key, Track())
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
            track = self._tracks.setdefault(key, Track())
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

