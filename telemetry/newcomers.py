"""Vehicles the hub has heard but cannot vouch for yet: how they are let in, and let go.

Without a site register (telemetry/register.py) any name on an open broker becomes a vehicle,
and one state message from each of 50,000 made-up names once filled the table, raised ~10,000
takeover alerts that outlived restarts and locked out a real vehicle. So a name the register
does not vouch for is a *newcomer* until it is *confirmed*: heard over ``confirm_s`` or more
(a shuttle talks for its whole shift; a forged name is said once), said it entered service
(the service lifecycle, journaled), or an operator acknowledged one of its alerts. Vehicles
the hub was told to expect (a timetable, the journal's service states, the register) are
never newcomers.

- Newcomers are let in at a bounded rate (a token bucket: ``burst`` at once, ``rate_per_s``
  after): within it a newcomer is judged like any vehicle; beyond it, it is let in *on
  probation*: shown, its events and minimal risk manoeuvres raise at once (a real vehicle's
  takeover request is never held), but its silence and links are not judged until it is
  confirmed. A flood of names therefore raises at most ``burst`` plus ``rate_per_s`` a second
  condition alerts, and a hub restarted under a large fleet judges the fleet beyond ``burst``
  ``confirm_s`` late, not never.
- A newcomer silent for ``idle_s`` with no open alert is forgotten (evicted); one whose open
  alerts nobody acknowledged, after ``alerting_idle_s`` (its alerts resolved as ``evicted``,
  journaled: a flood's alerts end, and stay ended across a restart). When the table is full,
  the oldest newcomer is evicted to make room: first those with no open alert, then those
  whose alerts nobody acknowledged. A newcomer whose alert an operator acknowledged is
  someone's work and is never evicted.

Every decision takes the time it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: What the alert engine says of a vehicle's alerts (``Newcomers`` asks before evicting).
NO_ALERT: Final = 0
OPEN_ALERT: Final = 1
HANDLED_ALERT: Final = 2  # an open alert an operator acknowledged: never evicted


class Newcomers:
    """The unconfirmed vehicles, oldest first, and the admission bucket."""

    __slots__ = ("_at", "_tokens", "alerting_idle_s", "burst", "confirm_s", "first_heard",
                 "idle_s", "on_probation", "rate_per_s")

    def __init__(self, *, rate_per_s: float, burst: int, confirm_s: float,
                 idle_s: float, alerting_idle_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.confirm_s = confirm_s
        self.idle_s = idle_s
        self.alerting_idle_s = alerting_idle_s
        self._tokens = float(burst)
        self._at: float | None = None
        #: vehicle → when it was first heard; insertion order is age, oldest first.
        self.first_heard: dict[str, float] = {}
        #: Newcomers let in beyond the rate: not judged until confirmed.
        self.on_probation: set[str] = set()

    def __len__(self) -> int:
        return len(self.first_heard)

    def admit(self, vehicle: str, now: float) -> bool:
        """Take ``vehicle`` in as a newcomer at ``now``; True when it is on probation (the
        bucket was empty). The bucket refills with the time given, never backwards."""
        if self._at is not None and now > self._at:
            self._tokens = min(float(self.burst),
                               self._tokens + (now - self._at) * self.rate_per_s)
        if self._at is None or now > self._at:
            self._at = now
        self.first_heard[vehicle] = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return False
        self.on_probation.add(vehicle)
        return True

    def confirm(self, vehicle: str) -> None:
        self.first_heard.pop(vehicle, None)
        self.on_probation.discard(vehicle)

    forget = confirm  # evicted or confirmed, it is no newcomer any more

    def sweep(self, now: float, heard_at: Callable[[str], float | None],
              alerts_of: Callable[[str], int]) -> tuple[list[str], list[str]]:
        """(confirmed, idle): the newcomers heard over ``confirm_s`` or with an acknowledged
        alert, and those silent for ``idle_s`` with no open alert (``alerting_idle_s`` with
        alerts nobody acknowledged), as of ``now``."""
        confirmed, idle = [], []
        for vehicle, first in self.first_heard.items():
            heard = heard_at(vehicle)
            alerts = alerts_of(vehicle)
            if alerts == HANDLED_ALERT or (heard is not None and heard - first >= self.confirm_s):
                confirmed.append(vehicle)
            elif now - (heard if heard is not None else first) >= (
                    self.idle_s if alerts == NO_ALERT else self.alerting_idle_s):
                idle.append(vehicle)
        for vehicle in confirmed:
            self.confirm(vehicle)
        return confirmed, idle

    def victim(self, alerts_of: Callable[[str], int]) -> str | None:
        """The newcomer to evict to make room: the oldest without an open alert, else the
        oldest whose alerts nobody acknowledged; None when every one is someone's work."""
        fallback = None
        for vehicle in self.first_heard:  # nothing changes it while this runs
            alerts = alerts_of(vehicle)
            if alerts == NO_ALERT:
                return vehicle
            if alerts == OPEN_ALERT and fallback is None:
                fallback = vehicle
        return fallback
