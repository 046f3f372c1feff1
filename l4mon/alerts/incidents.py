"""One incident per cause: several vehicles' alerts that start together on one serving cell, in
one intersection zone or before one weak stretch of road (the link map's ``weak_link_ahead``
warnings) are shown, cued and acknowledged as one incident; so are one
vehicle's alerts of one cause (``by = "vehicle"``: a takeover request and the minimal risk
manoeuvre it triggers are one card, not two to acknowledge).

Why: when a cell goes dark, eight shuttles lose a link within seconds. Eight unrelated takeover
cards tell the operator eight stories; one incident that names the cell tells the true one,
with its members listed. Each member stays an alert of its own (its vehicle is still judged,
and it resolves on its own), so nothing about a vehicle is hidden by the grouping. What ties
them is on the alerts themselves: every member carries the incident's id (the id of its first
alert), the grouping that made it and the shared cause, so the journal alone rebuilds the
incident after a crash and a replay groups exactly as the live hub did.

How to group is declared in the rules file (``[[group]]``, l4mon/alerts/rules.py). Every
decision takes the time it is given, like the engine's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from l4mon.alerts.rules import Group
from l4mon.records.alert import ACKNOWLEDGED, RAISED, SEVERITY_RANK, Alert

if TYPE_CHECKING:
    from telemetry.fleet import Fleet

#: The causes an alert could share with others, for one grouping's ``by``: labels such as
#: "cell l5g-araya" or "intersection Araya junction" (empty: the alert has no such cause).
CausesOf = Callable[[str], tuple[str, ...]]

#: Between the causes of one incident, in ``Alert.incident_cause`` and the API.
CAUSE_SEPARATOR = ", "

#: Closed incidents kept for the console's "recently resolved" and the API.
_CLOSED_KEPT = 50


@dataclass(slots=True)
class Incident:
    id: int
    group: str
    title: str
    #: What its members share: one cell, or several when they share more (the 5G and LTE
    #: cells of one mast), or one intersection.
    causes: tuple[str, ...]
    site: str | None
    opened_at: float
    #: Every member alert by id, open or resolved.
    members: dict[int, Alert] = field(default_factory=dict)
    closed_at: float | None = None

    @property
    def cause(self) -> str:
        return CAUSE_SEPARATOR.join(self.causes)

    @property
    def is_open(self) -> bool:
        return any(a.is_open for a in self.members.values())

    @property
    def state(self) -> str:
        """raised while any open member waits for an acknowledgement, then acknowledged;
        resolved once every member is."""
        open_states = {a.state for a in self.members.values() if a.is_open}
        return RAISED if RAISED in open_states else ACKNOWLEDGED if open_states else "resolved"

    @property
    def severity(self) -> str:
        members = [a for a in self.members.values() if a.is_open] or list(self.members.values())
        return max((a.severity for a in members), key=SEVERITY_RANK.__getitem__)

    def vehicles(self, *, open_only: bool = False) -> list[str]:
        return sorted({a.vehicle for a in self.members.values()
                       if a.vehicle is not None and (a.is_open or not open_only)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "group": self.group, "title": self.title, "cause": self.cause,
            "site": self.site, "opened_at": self.opened_at, "closed_at": self.closed_at,
            "state": self.state, "severity": self.severity,
            "vehicles": self.vehicles(), "vehicles_open": self.vehicles(open_only=True),
            "members": sorted(self.members),
            "open_members": sorted(i for i, a in self.members.items() if a.is_open),
        }


#: The stretch of road the weak spot ahead of a vehicle's link lies in ("stretch 22:14 near
#: Araya junction"), or None: the link map's look-ahead (telemetry/linkmap/stretch.py).
StretchOf = Callable[[str, str], str | None]


class FleetCauses:
    """What an alert's vehicle shares with others: the cells its links were last served by
    (the one link's, for a link alert), the intersection zone it is in (a handover alert:
    the one it happened in), or the stretch of road its link is warned of."""

    def __init__(self, fleet: Fleet, where: Callable[[str], str | None],
                 zone_name: Callable[[str], str], handover_rules: Iterable[str] = (),
                 stretch_of: StretchOf | None = None) -> None:
        self.fleet = fleet
        self.handover_rules = frozenset(handover_rules)
        self.where = where
        self.zone_name = zone_name
        self.stretch_of = stretch_of

    def __call__(self, alert: Alert) -> CausesOf:
        def causes(by: str) -> tuple[str, ...]:
            if by == "vehicle":
                return () if alert.vehicle is None else (f"vehicle {alert.vehicle}",)
            if by == "stretch":
                if self.stretch_of is None or alert.vehicle is None or alert.link is None:
                    return ()
                stretch = self.stretch_of(alert.vehicle, alert.link)
                return () if stretch is None else (stretch,)
            vehicle = self.fleet.vehicles.get(alert.vehicle or "")
            if vehicle is None:
                return ()
            if by == "intersection":
                zone = alert.intersection or self.where(vehicle.id)
                return () if zone is None else (f"intersection {self.zone_name(zone)}",)
            # A link alert shares its link's cell; a vehicle alert, or a handover (which
            # involves the cell left as well as the one reached, and the hub keeps only the
            # latter), every cell the vehicle is on.
            links = [vehicle.links[alert.link]] \
                if alert.link in vehicle.links and alert.rule not in self.handover_rules \
                else list(vehicle.links.values())
            return tuple(dict.fromkeys(f"cell {link.cell}" for link in links if link.cell))
        return causes


class IncidentBook:
    """The open incidents and the recently raised, not yet grouped alerts. Owned by the
    alert engine (never called concurrently)."""

    def __init__(self, groups: Iterable[Group] = ()) -> None:
        self.groups = tuple(groups)
        self._by_rule: dict[str, list[Group]] = {}
        for group in self.groups:
            for rule in sorted(group.rules):
                self._by_rule.setdefault(rule, []).append(group)
        self.open: dict[int, Incident] = {}
        self.closed: deque[Incident] = deque(maxlen=_CLOSED_KEPT)
        #: Per grouping: (raised at, alert, its causes) of open alerts not in an incident yet.
        self._recent: dict[str, deque[tuple[float, Alert, tuple[str, ...]]]] = {
            group.name: deque() for group in self.groups}

    def groups_for(self, rule: str) -> list[Group]:
        return self._by_rule.get(rule, [])

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Open incidents again from the journal's open alerts (after a restart)."""
        titles = {g.name: g.title for g in self.groups}
        for alert in alerts:
            if alert.incident is None or not alert.is_open:
                continue
            incident = self.open.get(alert.incident)
            if incident is None:
                incident = self.open[alert.incident] = Incident(
                    id=alert.incident, group=alert.incident_group or "",
                    title=titles.get(alert.incident_group or "", alert.incident_group or ""),
                    causes=tuple((alert.incident_cause or "").split(CAUSE_SEPARATOR)),
                    site=alert.site,
                    opened_at=alert.last_raised_at or alert.raised_at)
            incident.opened_at = min(incident.opened_at, alert.raised_at)
            incident.members[alert.id] = alert

    def mirror(self, alert: Alert, stale: Alert | None, at: float) -> None:
        """A standby takes ``alert`` as the leader journaled it (``stale``: the copy it held
        until now): its incident is opened, updated or closed as the leader's was."""
        if stale is not None and stale.incident is not None and stale.incident != alert.incident:
            left = self.open.get(stale.incident)
            if left is not None:
                left.members.pop(alert.id, None)
        if alert.incident is None:
            return
        incident = self.open.get(alert.incident)
        if incident is None:
            if alert.is_open:
                self.restore([alert])
            return
        incident.members[alert.id] = alert
        if not alert.is_open:
            self.on_resolved(alert, at)

    def incident_of(self, alert: Alert) -> Incident | None:
        return None if alert.incident is None else self.open.get(alert.incident)

    def join(self, alert: Alert, causes: CausesOf) -> Incident | None:
        """Before ``alert`` is raised: the open incident it belongs to, if any (it then carries
        the incident from its first transition on)."""
        current = self.incident_of(alert)
        if current is not None:  # a member reopening while its incident is still open
            current.members[alert.id] = alert
            return current
        _leave(alert)
        for group in self.groups_for(alert.rule):
            keys = causes(group.by)
            for incident in self.open.values():
                if incident.group == group.name and set(incident.causes) & set(keys) \
                        and incident.site == alert.site:
                    _enter(incident, alert)
                    return incident
        return None

    def admit(self, alert: Alert) -> None:
        """``alert``, which ``join`` placed, has its journal id now: count it as a member."""
        incident = self.incident_of(alert)
        if incident is not None:
            incident.members[alert.id] = alert

    def form(self, alert: Alert, causes: CausesOf,
             now: float) -> tuple[Incident, list[Alert]] | None:
        """After ``alert`` was raised outside any incident: if enough vehicles' alerts of one
        grouping now share a cause within its window, the incident they form and its members
        (``alert`` among them)."""
        for group in self.groups_for(alert.rule):
            keys = causes(group.by)
            if not keys:
                continue
            recent = self._recent[group.name]
            while recent and now - recent[0][0] > group.window_s:
                recent.popleft()
            recent.append((now, alert, keys))
            shared: list[str] = []
            mates: dict[int, Alert] = {}  # by id(): an unjournaled alert has no id of its own
            for key in keys:
                sharing = [a for _, a, k in recent if key in k and a.is_open
                           and a.incident is None and a.site == alert.site]
                if _members(group, sharing) >= group.min_members:
                    shared.append(key)
                    mates.update((id(a), a) for a in sharing)
            if not shared:
                continue
            members = sorted(mates.values(), key=lambda a: (a.last_raised_at or a.raised_at,
                                                            a.id))
            incident = Incident(id=members[0].id, group=group.name, title=group.title,
                                causes=tuple(shared), site=alert.site,
                                opened_at=members[0].last_raised_at or members[0].raised_at)
            self.open[incident.id] = incident
            for member in members:
                _enter(incident, member)
                incident.members[member.id] = member
            self._recent[group.name] = deque(e for e in recent if id(e[1]) not in mates)
            return incident, members
        return None

    def on_resolved(self, alert: Alert, now: float) -> Incident | None:
        """A member resolved: the incident, closed now if it was its last open member."""
        incident = self.incident_of(alert)
        if incident is None or incident.is_open:
            return None
        incident.closed_at = now
        del self.open[incident.id]
        self.closed.appendleft(incident)
        return incident

    def get(self, incident_id: int) -> Incident | None:
        found = self.open.get(incident_id)
        if found is None:
            found = next((i for i in self.closed if i.id == incident_id), None)
        return found


def _members(group: Group, alerts: list[Alert]) -> int:
    """What ``min_members`` counts: vehicles, or, on one vehicle, its rules (a request
    repeated is still one cause, not two), or on a stretch its warned links (one vehicle
    warned of both its links there is two warnings, one place: one card)."""
    if group.by == "vehicle":
        return len({a.rule for a in alerts})
    if group.by == "stretch":
        return len({(a.vehicle, a.link) for a in alerts})
    return len({a.vehicle for a in alerts})


def _enter(incident: Incident, alert: Alert) -> None:
    alert.incident = incident.id
    alert.incident_group = incident.group
    alert.incident_cause = incident.cause


def _leave(alert: Alert) -> None:
    alert.incident = None
    alert.incident_group = None
    alert.incident_cause = None
