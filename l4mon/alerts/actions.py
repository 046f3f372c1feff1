"""Operator actions on alerts and incidents: acknowledge and resolve, journaled before they
count and refused on a standby; the views the API and the console show."""

from __future__ import annotations

from typing import Any

from l4mon.alerts.incidents import Incident
from l4mon.records.alert import (
    ACKNOWLEDGED,
    RAISED,
    RESOLVED,
    SEVERITY_RANK,
    T_ACKNOWLEDGED,
    T_RESOLVED,
    Alert,
)
from telemetry.fleet import Fleet


class AlertNotFound(KeyError):
    pass


class IncidentNotFound(KeyError):
    pass


class AlertClosed(ValueError):
    """The alert is already resolved."""


class StillHolds(ValueError):
    """An operator asked to resolve an alert whose condition still holds: resolved now, it
    would be raised again at once. ``why`` is the condition's figures, in words."""

    def __init__(self, alert_id: int, why: str) -> None:
        super().__init__(f"alert {alert_id}: the condition still holds ({why}); resolved now, "
                         "it would be raised again at once")
        self.why = why



class OperatorActions:
    """What an operator does to alerts (the API calls it). Part of ``AlertEngine``: it shares
    the engine's open alerts, tracks and journal (l4mon/alerts/engine.py)."""

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

    def view(self, alert: Alert) -> dict[str, Any]:
        """The alert as the API and the console show it: with its rule's runbook (None: the
        rule has none, or is no longer in the rules the hub runs)."""
        return {**alert.to_dict(), "runbook": self.runbooks.get(alert.rule)}

    def open_alerts(self) -> list[Alert]:
        """Open alerts, most urgent first: severity, then age."""
        return sorted(self.open.values(),
                      key=lambda a: (-SEVERITY_RANK[a.severity], a.raised_at, a.id))

