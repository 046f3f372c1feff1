"""Handover and link health per intersection and link, and V2I delivery: the junction view.

The verification programme asks how the links behave where a shuttle is most exposed, inside
intersections. This book answers per (intersection, link): handovers by kind, interruption
percentiles, the weakest radio seen, time in the zone with the link degraded or down; and per
intersection the V2I delivery ratio and the age of the RSUs' information.

The hub feeds it (live and replay alike): each final handover record, already tagged with its
zone, and each tick. Time in zone, radio minima and V2I counters are sampled at the ticks
(0.25 s by default), so they carry that resolution; handovers are exact. Every method takes the
time it acts at; nothing reads a clock. Definitions: docs/handover.md.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from handover.detect import Handover
from telemetry.linkstate import DEGRADED, DOWN, STALE
from telemetry.site import LocalFrame
from telemetry.window import percentile

if TYPE_CHECKING:
    import numpy as np

    from handover.book import HandoverEntry
    from telemetry.fleet import Fleet
    from telemetry.site import Intersection, Site

#: Interruptions kept per (intersection, link) for percentiles: a live hub runs for months.
INTERRUPTIONS_KEPT: Final = 10_000
#: Age-of-information samples kept per intersection.
AOI_KEPT: Final = 10_000
#: A tick further than this after the previous one (a stalled or resumed hub, the first tick)
#: adds no time in zone: the book cannot know where the vehicle was in between.
MAX_TICK_GAP_S: Final = 2.0
CHANGES: Final = ("success", "ping_pong", "too_frequent")
#: Ping-pong rates are also reported for these windows (s), beside the configured one: studies
#: use 1 s to 5 s. Beyond ``dwell_horizon_s`` (5 s) a return is not known.
PING_PONG_WINDOWS: Final = (1.0, 2.0, 5.0)


def returns_within(records: Iterable[Handover]) -> dict[str, int]:
    """Cell changes followed by a return to the old cell within each of PING_PONG_WINDOWS."""
    out = {f"{w:g}s": 0 for w in PING_PONG_WINDOWS}
    for r in records:
        if r.kind != "failure" and r.returned_after_s is not None:
            for w in PING_PONG_WINDOWS:
                if r.returned_after_s <= w:
                    out[f"{w:g}s"] += 1
    return out


def rates(counts: dict[str, int], changes: int) -> dict[str, float | None]:
    return {k: _ratio(v, changes) for k, v in counts.items()}


class Zones:
    """Point → intersection id for a site, with a bounding-box test first: most positions are
    between junctions, and a tick asks this once per vehicle."""

    def __init__(self, site: Site | None) -> None:
        self.site = site
        self._boxes: list[tuple[float, float, float, float, Intersection]] = []
        for ix in site.intersections if site is not None else ():
            if ix.polygon is not None:
                lats = [p[0] for p in ix.polygon]
                lons = [p[1] for p in ix.polygon]
                box = (min(lats), max(lats), min(lons), max(lons))
            else:
                assert ix.lat is not None and ix.lon is not None and ix.radius_m is not None
                # Degrees per metre, generously (x1.1): the exact test follows.
                dlat = ix.radius_m / 111_000.0 * 1.1
                dlon = dlat / max(0.05, math.cos(math.radians(ix.lat)))
                box = (ix.lat - dlat, ix.lat + dlat, ix.lon - dlon, ix.lon + dlon)
            self._boxes.append((*box, ix))
        self._by_id = {ix.id: ix for ix in site.intersections} if site is not None else {}

    def __bool__(self) -> bool:
        return bool(self._boxes)

    def covers(self, intersection: str | None) -> bool:
        """Whether the site has this intersection, so that its zone is known."""
        return intersection is not None and intersection in self._by_id

    def contains_many(self, intersection: str, lats: np.ndarray, lons: np.ndarray
                      ) -> np.ndarray:
        """``Intersection.contains`` over arrays of positions (NaN is outside), for the
        report's scan of millions of state rows. The same arithmetic, operation for operation
        (``LocalFrame.distances_m``, ``distance_to``), so the answers are the scalar test's;
        a padded bounding box first skips the points between junctions. Unlike ``at``, a point
        in two overlapping zones is in both. Raises ``KeyError`` for an intersection the site
        does not have."""
        import numpy as np  # the live hub never calls this: keep numpy out of its start-up

        ix = self._by_id[intersection]
        lats = np.asarray(lats, dtype=np.float64)
        lons = np.asarray(lons, dtype=np.float64)
        out = np.zeros(lats.shape, dtype=bool)
        lat0, lat1, lon0, lon1 = _padded_box(ix)
        near = np.flatnonzero((lats >= lat0) & (lats <= lat1) & (lons >= lon0) & (lons <= lon1))
        if not near.size:
            return out
        lat, lon = lats[near], lons[near]
        if ix.polygon is None:
            assert ix.lat is not None and ix.lon is not None and ix.radius_m is not None
            out[near] = LocalFrame.at(ix.lat, ix.lon).distances_m(lat, lon) <= ix.radius_m
            return out
        # Even-odd ray casting in degrees, edge by edge over all points at once.
        inside = np.zeros(near.size, dtype=bool)
        pts = ix.polygon
        j = len(pts) - 1
        for i in range(len(pts)):
            (ya, xa), (yb, xb) = pts[i], pts[j]
            if ya != yb:  # a horizontal edge is never crossed (and would divide by zero)
                crosses = np.flatnonzero((ya > lat) != (yb > lat))
                hit = lon[crosses] < xa + (lat[crosses] - ya) * (xb - xa) / (yb - ya)
                inside[crosses[hit]] ^= True
            j = i
        out[near] = inside
        return out

    def at(self, lat: float | None, lon: float | None) -> str | None:
        if lat is None or lon is None:
            return None
        for lat0, lat1, lon0, lon1, ix in self._boxes:
            if lat0 <= lat <= lat1 and lon0 <= lon <= lon1 and ix.contains(lat, lon):
                return ix.id
        return None

    def name(self, intersection: str) -> str:
        ix = self.site.intersection(intersection) if self.site is not None else None
        return ix.name if ix is not None else intersection


def _padded_box(ix: Intersection) -> tuple[float, float, float, float]:
    """(lat min, lat max, lon min, lon max) around the zone, padded so that rounding in the
    exact test can never put a point outside the box inside the zone."""
    pad = 1e-9  # degrees, ~0.1 mm
    if ix.polygon is not None:
        lats = [p[0] for p in ix.polygon]
        lons = [p[1] for p in ix.polygon]
        return min(lats) - pad, max(lats) + pad, min(lons) - pad, max(lons) + pad
    assert ix.lat is not None and ix.lon is not None and ix.radius_m is not None
    frame = LocalFrame.at(ix.lat, ix.lon)
    # The origin's scale is exact only there: 1 % spare covers the circle's far edge (the
    # scale drifts by ~tan(lat) r / R, 0.5 % at 10 km and 75°), and costs nothing.
    dlat = ix.radius_m / frame.m_per_deg_lat * 1.01 + pad
    dlon = ix.radius_m / frame.m_per_deg_lon * 1.01 + pad \
        if frame.m_per_deg_lon > 1e-3 else math.inf  # at a pole every longitude is near
    return ix.lat - dlat, ix.lat + dlat, ix.lon - dlon, ix.lon + dlon


def _ms(values: Iterable[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"interruption_p50_ms": percentile(ordered, 50),
            "interruption_p95_ms": percentile(ordered, 95),
            "interruption_max_ms": ordered[-1] if ordered else None}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(slots=True)
class LinkZone:
    """One link type (``l5g``, ``lte``...) inside one intersection, over every vehicle."""

    kinds: Counter[str] = field(default_factory=Counter)
    interruptions: deque[float] = field(default_factory=lambda: deque(maxlen=INTERRUPTIONS_KEPT))
    min_rsrp_dbm: float | None = None
    min_sinr_db: float | None = None
    time_in_zone_s: float = 0.0
    time_degraded_s: float = 0.0
    time_down_s: float = 0.0
    #: Times the link's state became degraded or down while the vehicle was in the zone.
    degradations: int = 0
    #: Ping-pongs by (cell, cell) pair, sorted, so A→B→A and B→A→B count together.
    ping_pong_cells: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Returns to the old cell within each of PING_PONG_WINDOWS.
    returns: Counter[str] = field(default_factory=Counter)

    def kpis(self) -> dict[str, Any]:
        changes = sum(self.kinds[k] for k in CHANGES)
        failures = self.kinds["failure"]
        return {
            "handovers": changes, "failures": failures,
            "success": self.kinds["success"], "ping_pong": self.kinds["ping_pong"],
            "too_frequent": self.kinds["too_frequent"],
            # Success over every attempt, failures included; ping-pong over cell changes.
            "success_rate": _ratio(self.kinds["success"], changes + failures),
            "ping_pong_rate": _ratio(self.kinds["ping_pong"], changes),
            "ping_pong_rate_by_window": rates(
                {f"{w:g}s": self.returns[f"{w:g}s"] for w in PING_PONG_WINDOWS}, changes),
            **_ms(self.interruptions),
            "min_rsrp_dbm": self.min_rsrp_dbm, "min_sinr_db": self.min_sinr_db,
            "time_in_zone_s": round(self.time_in_zone_s, 3),
            "time_degraded_s": round(self.time_degraded_s, 3),
            "time_down_s": round(self.time_down_s, 3),
            "degradations": self.degradations,
        }


@dataclass(slots=True)
class V2i:
    """RSU → vehicle delivery at one intersection (docs/protocol.md, "V2I delivery ratio")."""

    expected: float = 0.0  # messages the zone's RSUs broadcast while each vehicle was in it
    received: int = 0  # of those, what the vehicles counted as received
    aoi_s: deque[float] = field(default_factory=lambda: deque(maxlen=AOI_KEPT))

    @property
    def delivery_ratio(self) -> float | None:
        """Received over expected (None before anything was expected); what the alert rules
        judge every tick, so without the sort ``kpis`` does for the age-of-information."""
        return None if not self.expected else round(min(1.0, self.received / self.expected), 4)

    def kpis(self) -> dict[str, Any]:
        aoi = sorted(self.aoi_s)
        return {"delivery_ratio": self.delivery_ratio, "expected": round(self.expected, 1),
                "received": self.received,
                "aoi_p50_s": percentile(aoi, 50), "aoi_p95_s": percentile(aoi, 95),
                "aoi_max_s": aoi[-1] if aoi else None}


class IntersectionBook:
    """Never called concurrently: the hub's loop owns it."""

    def __init__(self, site: Site | None, *, hotspot_window_s: float = 600.0) -> None:
        if hotspot_window_s <= 0:
            raise ValueError("hotspot_window_s must be > 0")
        self.zones = Zones(site)
        self.hotspot_window_s = hotspot_window_s
        self.links: dict[tuple[str, str], LinkZone] = {}
        self.v2i: dict[str, V2i] = {}
        #: Link degradations tagged with their zone, newest last: (at, vehicle, link, state, ix).
        self.degradations: deque[tuple[float, str, str, str, str]] = deque(maxlen=10_000)
        #: Recent ping-pongs per intersection: (at, link, cell pair), for the hotspot rule.
        self._ping_pongs: dict[str, deque[tuple[float, str, tuple[str, str]]]] = {}
        self._where: dict[str, str] = {}  # vehicle → intersection it was in at the last tick
        #: (vehicle, rsu) → (boot id, RSU tx count, vehicle rx count) at the last tick in zone.
        self._v2i_marks: dict[tuple[str, str], tuple[str | None, float, int]] = {}
        #: rsu → (boot id, previous (ts, tx), last (ts, tx)): the RSU's broadcast rate.
        self._tx: dict[str, tuple[str | None, tuple[float, int] | None, tuple[float, int]]] = {}
        self._last_tick: float | None = None

    def end_session(self) -> None:
        """No vehicle is anywhere any more (telemetry/sessions.py); the books stay."""
        self._where.clear()
        self._v2i_marks.clear()
        self._tx.clear()
        self._last_tick = None

    def _link(self, intersection: str, link: str) -> LinkZone:
        book = self.links.get((intersection, link))
        if book is None:
            book = self.links[(intersection, link)] = LinkZone()
        return book

    def zones_members(self) -> Iterable[str]:
        """The intersection of each vehicle in one, as of the last tick."""
        return self._where.values()

    def where(self, vehicle: str) -> str | None:
        """The intersection the vehicle was in at the last tick."""
        return self._where.get(vehicle)

    # -- feeding --------------------------------------------------------------------------------

    def add_handovers(self, entries: Iterable[HandoverEntry]) -> None:
        for entry in entries:
            if entry.intersection is not None:
                self._add(entry.intersection, entry.link, entry.record)

    def _add(self, intersection: str, link: str, record: Handover) -> None:
        book = self._link(intersection, link)
        book.kinds[record.kind] += 1
        book.interruptions.append(record.interruption_ms)
        book.returns.update(returns_within((record,)))
        if record.kind == "ping_pong":
            pair = tuple(sorted((record.from_cell, record.to_cell)))
            book.ping_pong_cells[pair] += 1  # type: ignore[index]
            recent = self._ping_pongs.setdefault(intersection, deque(maxlen=1_000))
            recent.append((record.at, link, pair))  # type: ignore[arg-type]

    def on_link_changes(self, now: float, fleet: Fleet,
                        changed: Iterable[tuple[str, str | None]]) -> None:
        """Tag link state changes into degraded or down with the zone the vehicle is in."""
        for vid, name in changed:
            if name is None:
                continue
            vehicle = fleet.vehicles.get(vid)
            link = vehicle.links.get(name) if vehicle is not None else None
            if link is None or link.health.state not in (DEGRADED, DOWN):
                continue
            state = vehicle.state  # type: ignore[union-attr]
            ix = self.zones.at(state.lat, state.lon) if state is not None else None
            if ix is not None:
                self._link(ix, name).degradations += 1
                self.degradations.append((now, vid, name, link.health.state, ix))

    def on_tick(self, now: float, fleet: Fleet) -> None:
        """Time in zone per link state, the radio seen there, V2I counters, RSU information age."""
        dt = 0.0 if self._last_tick is None else now - self._last_tick
        if dt > MAX_TICK_GAP_S or dt < 0:
            dt = 0.0
        self._last_tick = now
        if not self.zones:
            return
        rsus_at: dict[str, list[Any]] = {}
        for rsu in fleet.rsus.values():
            last = rsu.last
            if last is not None:
                rsus_at.setdefault(last.intersection, []).append(rsu)
                self._v2i(last.intersection).aoi_s.append(round(now - last.ts, 6))
                self._note_tx(rsu.id, last)
        where = self._where
        for vid, vehicle in fleet.vehicles.items():
            state = vehicle.state
            ix = self.zones.at(state.lat, state.lon) if state is not None else None
            before = where.get(vid)
            if ix is None:
                if before is not None:
                    del where[vid]
                    self._forget_v2i(vid)
                continue
            if before != ix:
                where[vid] = ix
                if before is not None:
                    self._forget_v2i(vid)
            for name, link in vehicle.links.items():
                book = self._link(ix, name)
                book.time_in_zone_s += dt
                health = link.health.state
                if health == DEGRADED:
                    book.time_degraded_s += dt
                elif health in (DOWN, STALE):
                    book.time_down_s += dt
                last = link.last
                if last is not None and health != STALE:
                    if last.rsrp_dbm is not None and (book.min_rsrp_dbm is None
                                                      or last.rsrp_dbm < book.min_rsrp_dbm):
                        book.min_rsrp_dbm = last.rsrp_dbm
                    if last.sinr_db is not None and (book.min_sinr_db is None
                                                     or last.sinr_db < book.min_sinr_db):
                        book.min_sinr_db = last.sinr_db
            assert state is not None
            if state.v2i_rx is not None:
                for rsu in rsus_at.get(ix, ()):
                    self._count_v2i(vid, ix, rsu.id, state.ts, state.v2i_rx.get(rsu.id))

    def _v2i(self, intersection: str) -> V2i:
        book = self.v2i.get(intersection)
        if book is None:
            book = self.v2i[intersection] = V2i()
        return book

    def _note_tx(self, rsu: str, status: Any) -> None:
        if status.tx_msgs is None:
            return
        seen = self._tx.get(rsu)
        point = (status.ts, status.tx_msgs)
        if seen is None or seen[0] != status.boot_id or point[1] < seen[2][1]:
            self._tx[rsu] = (status.boot_id, None, point)  # new, or rebooted: re-base
        elif point[0] > seen[2][0]:
            self._tx[rsu] = (status.boot_id, seen[2], point)

    def _tx_at(self, rsu: str, ts: float) -> tuple[str | None, float] | None:
        """The RSU's broadcast count at sender time ``ts``, from its last two reports' rate:
        vehicles report ~10 Hz, RSUs 1-10 Hz, so comparing raw counters taken at one tick would
        pair a fresh vehicle count with a stale RSU one."""
        seen = self._tx.get(rsu)
        if seen is None or seen[1] is None:
            return None
        boot, (t0, n0), (t1, n1) = seen[0], seen[1], seen[2]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        ahead = max(-2.0, min(2.0, ts - t1))  # never extrapolate far
        return boot, n1 + rate * ahead

    def _count_v2i(self, vid: str, ix: str, rsu: str, ts: float, rx: int | None) -> None:
        """Deltas since this vehicle's previous tick in the zone; a reboot on either side (the
        RSU's boot id changes, a counter goes back) only re-bases the marks."""
        at = self._tx_at(rsu, ts)
        if at is None or rx is None:
            return
        boot, tx = at
        key = (vid, rsu)
        mark = self._v2i_marks.get(key)
        self._v2i_marks[key] = (boot, tx, rx)
        if mark is None or mark[0] != boot or tx < mark[1] or rx < mark[2]:
            return
        book = self._v2i(ix)
        book.expected += tx - mark[1]
        book.received += rx - mark[2]

    def forget(self, vehicle: str) -> None:
        """The hub let the vehicle go (an evicted newcomer): it is nowhere any more."""
        if self._where.pop(vehicle, None) is not None:  # V2I marks only for one in a zone
            self._forget_v2i(vehicle)

    def _forget_v2i(self, vid: str) -> None:
        for key in [k for k in self._v2i_marks if k[0] == vid]:
            del self._v2i_marks[key]

    # -- reading --------------------------------------------------------------------------------

    def hotspot(self, intersection: str, now: float) -> tuple[int, tuple[str, str] | None]:
        """Ping-pongs at ``intersection`` within the hotspot window, and the commonest pair."""
        recent = self._ping_pongs.get(intersection)
        if not recent:
            return 0, None
        while recent and recent[0][0] <= now - self.hotspot_window_s:
            recent.popleft()
        if not recent:
            return 0, None
        pairs = Counter(pair for _, _, pair in recent)
        return len(recent), pairs.most_common(1)[0][0]

    def intersections(self) -> list[str]:
        known = [ix.id for ix in self.zones.site.intersections] if self.zones.site else []
        seen = {ix for ix, _ in self.links} | set(self.v2i)
        return known + sorted(seen - set(known))

    def snapshot(self, now: float) -> dict[str, Any]:
        """Every intersection's KPIs, per link, for the API and replay results."""
        out: dict[str, Any] = {}
        for ix in self.intersections():
            count, pair = self.hotspot(ix, now)
            links = {name: book.kpis() for (i, name), book in sorted(self.links.items())
                     if i == ix}
            out[ix] = {
                "name": self.zones.name(ix),
                "links": links,
                "v2i": self._v2i(ix).kpis() if ix in self.v2i else V2i().kpis(),
                "ping_pongs_recent": count,
                "ping_pong_cells": list(pair) if pair else None,
                "vehicles_in_zone": sorted(v for v, i in self._where.items() if i == ix),
            }
        return out
