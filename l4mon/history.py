"""A bounded, recent history of every vehicle's links, kept by the hub for the console's charts.

Per vehicle and link, one point per ``step_s`` (default 1 s) for ``span_s`` (default 10 min):
the link's judged RTT p95, its last reported uplink throughput and its state, as the hub saw
them at that moment. A console that opens a vehicle reads the last ten minutes from here
(``GET /api/vehicles/{id}/history``) instead of starting its charts empty at page load.

Bounded: each link is a fixed ring of ``capacity`` points in flat arrays (25 bytes a point,
~15 KiB a link at the defaults), at most ``max_links`` links per vehicle and ``max_vehicles``
vehicles. ``record`` is O(1) per vehicle per call (a timestamp check; when a point is due, one
write per link), so the tick loop can call it for every chunk of vehicles it judges.

Time comes only from the caller (the runtime's clock), never from ``time``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Any, Final

from telemetry.fleet import Fleet
from telemetry.linkstate import STATES

#: Link states by code (the order of telemetry.linkstate.STATES), and codes by state.
_CODE: Final = {state: code for code, state in enumerate(STATES)}
_UNKNOWN: Final = _CODE["unknown"]
_NAN: Final = float("nan")


class LinkSeries:
    """A fixed ring of (t, rtt_p95_ms, ul_kbps, state) points; NaN stands for "no figure"."""

    __slots__ = ("capacity", "head", "rtt", "size", "state", "t", "ul")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.t = array("d", bytes(8 * capacity))
        self.rtt = array("d", bytes(8 * capacity))
        self.ul = array("d", bytes(8 * capacity))
        self.state = bytearray(capacity)
        self.head = 0  # where the next point goes
        self.size = 0

    def add(self, t: float, rtt: float | None, ul: float | None, state: str) -> None:
        i = self.head
        self.t[i] = t
        self.rtt[i] = _NAN if rtt is None else rtt
        self.ul[i] = _NAN if ul is None else ul
        self.state[i] = _CODE.get(state, _UNKNOWN)
        self.head = (i + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1

    def columns(self, since: float) -> dict[str, list[Any]]:
        """The points at or after ``since``, oldest first, as columns."""
        start = (self.head - self.size) % self.capacity
        order = [(start + k) % self.capacity for k in range(self.size)]
        keep = [i for i in order if self.t[i] >= since]
        return {
            "t": [round(self.t[i], 3) for i in keep],
            "rtt_p95_ms": [_figure(self.rtt[i], 1) for i in keep],
            "ul_kbps": [_figure(self.ul[i], 1) for i in keep],
            "state": [STATES[self.state[i]] for i in keep],
        }


def _figure(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)


class _VehicleSeries:
    __slots__ = ("last_t", "links")

    def __init__(self) -> None:
        self.last_t = -math.inf
        self.links: dict[str, LinkSeries] = {}


class History:
    """The last ``span_s`` of every vehicle's links, one point per ``step_s``."""

    def __init__(self, *, span_s: float = 600.0, step_s: float = 1.0,
                 max_vehicles: int = 10_000, max_links: int = 4) -> None:
        if span_s <= 0 or step_s <= 0 or max_vehicles < 1 or max_links < 1:
            raise ValueError("history: span_s and step_s must be > 0, the caps >= 1")
        self.span_s = span_s
        self.step_s = step_s
        #: A point is due once this much time passed since the vehicle's last one: a little
        #: under ``step_s``, so a tick that comes a few ms early does not skip a whole step.
        self._due_after = 0.9 * step_s
        #: Points per link: the span at one point a step, and a few to spare for early ticks.
        self.capacity = math.ceil(span_s / step_s) + 16
        self.max_vehicles = max_vehicles
        self.max_links = max_links
        self._vehicles: dict[str, _VehicleSeries] = {}

    def __len__(self) -> int:
        return len(self._vehicles)

    def record(self, now: float, fleet: Fleet, vehicles: Iterable[str] | None = None) -> int:
        """Add a point at ``now`` for each of ``vehicles`` (default: the fleet) whose last
        point is a step old; returns how many vehicles got one."""
        tracks = fleet.vehicles
        ids = tracks.keys() if vehicles is None else vehicles
        due_after = self._due_after
        added = 0
        for vid in ids:
            track = tracks.get(vid)
            if track is None:
                continue
            series = self._vehicles.get(vid)
            if series is None:
                series = self._admit(vid, fleet)
            elif 0.0 <= now - series.last_t < due_after:
                continue  # not due yet (a clock that went back records at once)
            series.last_t = now
            links = series.links
            for name, link in track.links.items():
                ring = links.get(name)
                if ring is None:
                    if len(links) >= self.max_links:
                        continue
                    ring = links[name] = LinkSeries(self.capacity)
                last = link.last
                ring.add(now, link.judged_rtt_p95_ms, None if last is None else last.ul_kbps,
                         link.health.state)
            added += 1
        return added

    def _admit(self, vehicle: str, fleet: Fleet) -> _VehicleSeries:
        """A series for a vehicle seen for the first time; when full, vehicles the fleet no
        longer tracks go first, then the one whose last point is oldest."""
        if len(self._vehicles) >= self.max_vehicles:
            gone = [v for v in self._vehicles if v not in fleet.vehicles]
            for v in gone:
                del self._vehicles[v]
            if len(self._vehicles) >= self.max_vehicles:
                oldest = min(self._vehicles, key=lambda v: self._vehicles[v].last_t)
                del self._vehicles[oldest]
        series = self._vehicles[vehicle] = _VehicleSeries()
        return series

    def view(self, vehicle: str, now: float) -> dict[str, Any]:
        """What the API shows: the points of the last ``span_s`` before ``now``, per link."""
        series = self._vehicles.get(vehicle)
        since = now - self.span_s
        return {
            "vehicle": vehicle,
            "now": now,
            "span_s": self.span_s,
            "step_s": self.step_s,
            "links": {} if series is None else
            {name: ring.columns(since) for name, ring in sorted(series.links.items())},
        }
