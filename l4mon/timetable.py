"""Which vehicle is expected in service when: an optional site timetable (``[service]``).

A vehicle that ends its service says so and is then expected to be silent; one that never
starts its service says nothing at all. Only a timetable can tell "should be running but is
not heard" from "not planned today": with one, the ``vehicle`` facts ``planned`` and
``running`` let a rule (the shipped ``not_running_as_planned``) warn once the grace after a
planned start has passed. Times are wall-clock times in the site's zone, judged at the time
the hub is given (a replay's too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Clock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Planned(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One vehicle's service on some days, from ``start`` to ``end`` (local "HH:MM"; an end
    not after the start runs past midnight into the next day)."""

    vehicle: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    start: Clock
    end: Clock
    days: list[Day] = msgspec.field(default_factory=lambda: list(DAYS))
    #: The vehicle's site (for a vehicle never heard yet); default: the hub's site plan's.
    site: str | None = None


class ServiceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[service]`` table of the hub config."""

    #: The zone the timetable's times are in (IANA name).
    timezone: str = "UTC"
    timetable: list[Planned] = []

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"service: unknown timezone {self.timezone!r} (an IANA name such "
                             "as Asia/Tokyo; install tzdata where the system has none)") from None


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Timetable:
    """The settings' timetable, asked per vehicle and time."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.zone = ZoneInfo(settings.timezone)
        self.entries: dict[str, list[Planned]] = {}
        for planned in settings.timetable:
            self.entries.setdefault(planned.vehicle, []).append(planned)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def vehicles(self) -> list[Planned]:
        return [p for plans in self.entries.values() for p in plans]

    def planned(self, vehicle: str, now: float) -> bool | None:
        """Whether ``vehicle`` is planned in service at ``now``; None when the timetable does
        not name it (nothing is expected of it either way)."""
        plans = self.entries.get(vehicle)
        if not plans:
            return None
        local = datetime.fromtimestamp(now, self.zone)
        minute = local.hour * 60 + local.minute
        today = DAYS[local.weekday()]
        yesterday = DAYS[(local.weekday() - 1) % 7]
        for p in plans:
            start, end = _minutes(p.start), _minutes(p.end)
            if start < end:
                if today in p.days and start <= minute < end:
                    return True
            elif (today in p.days and minute >= start) or (yesterday in p.days and minute < end):
                return True  # past midnight: started yesterday evening, or starts tonight
        return False


__all__ = ["DAYS", "Planned", "ServiceSettings", "Timetable"]
