"""The hub's handover and failover log: what the API and console show, what a replay lists.

The fleet (telemetry/fleet.py) only says that a link's record became final or that a link's
state was judged; what a record is, which intersection it happened in and how many to keep are
this floor's business, so telemetry carries no handover records.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Final, NamedTuple

from handover.detect import Failover, FailoverTracker, Handover
from telemetry.linkstate import DEGRADED, OK

#: The live hub's handover (and failover) log, newest kept: what the API and console show. 20,000
#: is over 17 min of a 1,000-vehicle fleet changing cells every ~50 s (the soak's load), more
#: than a day of a 20-shuttle site; at ~570 bytes a record it stays near 11 MB. Reports read
#: drive logs, and a replay keeps every record, so nothing else depends on this bound.
HANDOVERS_KEPT: Final = 20_000

#: The intersection a position is in (the site's zones), None outside every one.
ZoneAt = Callable[[float | None, float | None], str | None]


class HandoverEntry(NamedTuple):
    """A final handover record with whose link it was and the intersection it happened in."""

    vehicle: str
    link: str
    intersection: str | None
    record: Handover


def _nowhere(lat: float | None, lon: float | None) -> str | None:
    return None


class HandoverBook:
    """Final handovers, tagged with their intersection, and failovers between each vehicle's
    links (docs/handover.md), newest last, each bounded by ``HANDOVERS_KEPT``."""

    def __init__(self, zone_at: ZoneAt | None = None) -> None:
        self.zone_at = zone_at or _nowhere
        self.kept: deque[HandoverEntry] = deque(maxlen=HANDOVERS_KEPT)
        #: How many handovers of each kind there have been (not bounded by ``kept``).
        self.counts: Counter[str] = Counter()
        #: Final records not yet taken by the hub (for the intersection book and alert rules).
        self.fresh: list[HandoverEntry] = []
        self.failovers: deque[tuple[str, Failover]] = deque(maxlen=HANDOVERS_KEPT)
        self._failover: dict[str, FailoverTracker] = {}

    def keep(self, vehicle: str, link: str, record: Handover) -> None:
        """A link's handover record became final: tag it with where it happened."""
        zone = self.zone_at(record.lat, record.lon)
        if zone is None and record.kind == "failure":
            zone = self.zone_at(record.end_lat, record.end_lon)  # it ended inside one
        entry = HandoverEntry(vehicle, link, zone, record)
        self.kept.append(entry)
        self.fresh.append(entry)
        self.counts[record.kind] += 1

    def link_judged(self, now: float, vehicle: str, link: str, state: str) -> None:
        """A link's state changed: whether it is usable may end a failover of its vehicle."""
        tracker = self._failover.get(vehicle)
        if tracker is None:
            tracker = self._failover[vehicle] = FailoverTracker()
        for event in tracker.observe_state(now, link, state in (OK, DEGRADED)):
            self.failovers.append((vehicle, event))

    def forget(self, vehicle: str) -> None:
        """The vehicle left (evicted) or changed service: a failover open before is not one
        after."""
        self._failover.pop(vehicle, None)

    def end_session(self) -> None:
        """A replay's drive ended: its vehicles are gone; the history stays."""
        self._failover = {}
        self.fresh = []

    def take_fresh(self) -> list[HandoverEntry]:
        fresh, self.fresh = self.fresh, []
        return fresh

    def keep_every_record(self) -> None:
        """Keep every handover and failover from now on, not the newest ``HANDOVERS_KEPT``.

        For replays, whose results must list all of a long log's records (growing with the
        events, not the samples). A live hub never calls this: it runs for months and keeps
        its bound. Swapping in unbounded deques costs the live path nothing at all.
        """
        self.kept = deque(self.kept)
        self.failovers = deque(self.failovers)
