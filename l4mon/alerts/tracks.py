"""What the alert engine's parts share: the key an alert is tracked under, its hold timers,
and the shapes of its listeners and grouping causes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from l4mon.alerts.incidents import CausesOf
from l4mon.records.alert import Alert, Transition

Key = tuple[str, str | None, str | None]  # (rule, vehicle, RSU or intersection, link)
Listener = Callable[[Transition, Alert], None]
#: An alert's possible shared causes, per grouping ``by`` (l4mon/alerts/incidents.py).
Causes = Callable[[Alert], CausesOf]


@dataclass(slots=True)
class Track:
    pending_since: float | None = None
    clear_since: float | None = None
    alert: Alert | None = None  # the open alert, or the last resolved one (for reopening)

