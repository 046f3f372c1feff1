"""Alerts and their transitions as the engine, the journal and the API share them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

Severity = Literal["info", "warning", "takeover"]
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "takeover": 2}

RAISED: Final = "raised"
ACKNOWLEDGED: Final = "acknowledged"
RESOLVED: Final = "resolved"
OPEN_STATES: Final = (RAISED, ACKNOWLEDGED)

#: Transition kinds.
T_RAISED: Final = "raised"
T_ACKNOWLEDGED: Final = "acknowledged"
T_ESCALATED: Final = "escalated"
T_RESOLVED: Final = "resolved"
T_REOPENED: Final = "reopened"
#: The alert became a member of an incident (l4mon/alerts/incidents.py).
T_GROUPED: Final = "grouped"


@dataclass(slots=True)
class Alert:
    """One alert for one (rule, subject). Mutated only by the engine, always journaled."""

    id: int
    rule: str
    title: str
    severity: str
    site: str | None
    vehicle: str | None
    link: str | None
    rsu: str | None
    state: str
    raised_at: float
    detail: str = ""
    escalated: bool = False
    escalated_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolve_reason: str | None = None
    on_duty_at_raise: list[str] = field(default_factory=list)
    flaps: int = 0
    #: When it was last raised or reopened; escalation and time-to-acknowledge count from here.
    last_raised_at: float | None = None
    #: The intersection the alert is about (intersection rules) or happened in (handovers).
    intersection: str | None = None
    #: The incident it belongs to (the id of the incident's first alert), the grouping that
    #: made it and the shared cause ("cell l5g-araya", "intersection Araya junction").
    incident: int | None = None
    incident_group: str | None = None
    incident_cause: str | None = None

    def __post_init__(self) -> None:
        if self.last_raised_at is None:
            self.last_raised_at = self.raised_at

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.rule, self.vehicle or self.rsu or self.intersection, self.link)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        since = self.last_raised_at if self.last_raised_at is not None else self.raised_at
        out["time_to_ack_s"] = None if self.acknowledged_at is None \
            else round(self.acknowledged_at - since, 3)
        out["time_to_resolve_s"] = None if self.resolved_at is None \
            else round(self.resolved_at - self.raised_at, 3)
        return out


@dataclass(slots=True, frozen=True)
class Transition:
    seq: int
    alert_id: int
    at: float
    kind: str
    actor: str | None
    detail: str
    on_duty: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
