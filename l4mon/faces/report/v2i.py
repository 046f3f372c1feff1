"""V2I delivery from the drive log: what vehicles in an RSU's zone received over what it sent.

docs/protocol.md defines the ratio as the received messages (Δ ``v2i_rx[rsu]``) of the vehicles
*in the RSU's zone* over the RSU's broadcast (Δ ``tx_msgs``) times those vehicles, the same
definition as the live pipeline's per-intersection figure (handover/intersections.py ``V2i``,
GET /api/intersections). Here, per RSU: received is the sum of the increases of a vehicle's
counter between two consecutive state reports that both carry it and whose positions are both
inside the zone of the RSU's intersection (``intersection`` of its status rows, the site plot's
shape); expected is the same intervals' length times the RSU's broadcast rate, Δ ``tx_msgs`` /
Δ receive time within each ``boot_id``. Without the zone (no site plot, or an intersection the
plot lacks) nothing is counted and the RSU's total says why: counting "in radio range" instead
would be a different, lower figure under the same name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from handover.intersections import Zones

#: Why a ratio is missing; the report shows it next to the RSU.
NEEDS_ZONES = "V2I delivery needs the site plot's intersection zones"


@dataclass
class RsuRate:
    intersection: str | None
    sent: float = 0.0
    seconds: float = 0.0

    @property
    def per_s(self) -> float | None:
        return self.sent / self.seconds if self.seconds > 0 else None


def rsu_rates(rows: Iterable[pa.RecordBatch]) -> dict[str, RsuRate]:
    """Each RSU's broadcast rate from its status reports (first and last per boot)."""
    spans: dict[tuple[str, str | None], list[float]] = {}
    where: dict[str, str | None] = {}
    for batch in rows:
        data = batch.to_pydict()
        for t, rsu, ix, boot, tx in zip(data["recv_time"], data["source"], data["intersection"],
                                        data["boot_id"], data["tx_msgs"], strict=True):
            if tx is None:
                continue
            where.setdefault(rsu, ix)
            span = spans.get((rsu, boot))
            if span is None:
                spans[(rsu, boot)] = [t, tx, t, tx]
            elif t >= span[2]:
                span[2], span[3] = t, tx
    out: dict[str, RsuRate] = {}
    for (rsu, _), (t0, tx0, t1, tx1) in spans.items():
        rate = out.setdefault(rsu, RsuRate(intersection=where.get(rsu)))
        if tx1 >= tx0:
            rate.sent += tx1 - tx0
            rate.seconds += t1 - t0
    return out


@dataclass
class V2iCounts:
    received: int = 0
    seconds: float = 0.0  # vehicle-seconds in the zone (intervals with both ends inside)


@dataclass(slots=True)
class _Last:
    """A vehicle's last state report: receive time, each RSU's counter, in each zone or not."""

    time: float
    counts: dict[str, float]
    inside: dict[str, bool]


@dataclass
class V2iCounter:
    rsus: dict[str, RsuRate] = field(default_factory=dict)
    zones: Zones | None = None
    counts: dict[str, V2iCounts] = field(default_factory=dict)
    #: per vehicle id: its last state report, carried between batches
    _last: dict[int, _Last] = field(default_factory=dict)
    #: only the RSUs whose zone is known are counted
    _patterns: dict[str, str] = field(default_factory=dict)

    def set_rates(self, rates: dict[str, RsuRate], zones: Zones | None = None) -> None:
        self.rsus = rates
        self.zones = zones
        # v2i_rx is stored as JSON text (sort_keys); pull one RSU's count with a regex in C++
        self._patterns = {r: '"' + re.escape(r) + r'"\s*:\s*(?P<n>\d+)' for r in rates
                          if self.zone(r) is not None}

    def zone(self, rsu: str) -> str | None:
        """The RSU's intersection, if the site plot has its zone."""
        ix = self.rsus[rsu].intersection
        return ix if self.zones is not None and self.zones.covers(ix) else None

    def missing(self, rsu: str) -> str | None:
        """Why the RSU's in-zone figures cannot be computed, or None when they can."""
        if self.zone(rsu) is not None:
            return None
        ix = self.rsus[rsu].intersection
        site = self.zones.site if self.zones is not None else None
        if site is None:
            return f"{NEEDS_ZONES}; there is no site plot for this log"
        if ix is None:
            return f"{NEEDS_ZONES}; the RSU's status names no intersection"
        return f"{NEEDS_ZONES}; {ix!r} is not in the site plot {site.name!r}"

    @property
    def counting(self) -> bool:
        """Whether any RSU is counted (so the scan needs the vehicles' positions)."""
        return bool(self._patterns)

    def add_states(self, src: np.ndarray, recv: np.ndarray, v2i: pa.Array, lat: np.ndarray,
                   lon: np.ndarray) -> None:
        """Count one batch of state rows (vehicle code, receive time, ``v2i_rx`` JSON, position),
        each vehicle's rows in file order."""
        if not self._patterns or not src.size:
            return
        assert self.zones is not None
        order = np.argsort(src, kind="stable")
        src, recv, lat, lon = src[order], recv[order], lat[order], lon[order]
        first = np.empty(src.size, dtype=bool)
        first[0] = True
        np.not_equal(src[1:], src[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], src.size] - 1
        keys = src[starts].tolist()
        ends_list = ends.tolist()
        carried = [self._last.get(k) for k in keys]
        prev_t = np.empty_like(recv)
        prev_t[1:] = recv[:-1]
        prev_t[starts] = [np.nan if c is None else c.time for c in carried]
        # Per zone: the row is inside, and the interval ending at it has both ends inside.
        now_in: dict[str, np.ndarray] = {}
        both_in: dict[str, np.ndarray] = {}
        for ix in sorted({self.zone(r) for r in self._patterns} - {None}):
            assert ix is not None
            now = self.zones.contains_many(ix, lat, lon)
            before = np.empty_like(now)
            before[1:] = now[:-1]
            before[starts] = [c is not None and c.inside.get(ix, False) for c in carried]
            now_in[ix], both_in[ix] = now, now & before
        last = [_Last(float(recv[e]), {}, {ix: bool(now[e]) for ix, now in now_in.items()})
                for e in ends_list]
        for rsu, pattern in self._patterns.items():
            ix = self.zone(rsu)
            assert ix is not None
            count = np.full(src.size, np.nan)
            # Only counters read inside the zone can end or start a counted interval: pull the
            # RSU's count out of those rows alone (most rows are between junctions).
            rows = np.flatnonzero(now_in[ix])
            if rows.size:
                text = v2i.take(pa.array(order[rows]))  # v2i itself stays in batch order
                matched = pc.match_substring_regex(text, pattern).fill_null(False)
                if pc.any(matched).as_py():
                    # rows that do not match come back as empty strings: keep them out of the cast
                    n = pc.if_else(matched, pc.extract_regex(text, pattern).field("n"), "0")
                    got = pc.cast(n, pa.float64()).to_numpy(zero_copy_only=False)
                    count[rows] = np.where(matched.to_numpy(zero_copy_only=False), got, np.nan)
            prev = np.empty_like(count)
            prev[1:] = count[:-1]
            prev[starts] = [np.nan if c is None else c.counts.get(rsu, np.nan) for c in carried]
            delta = count - prev
            ok = both_in[ix] & ~np.isnan(delta) & (delta >= 0)
            if ok.any():
                c = self.counts.setdefault(rsu, V2iCounts())
                c.received += int(delta[ok].sum())
                c.seconds += float((recv - prev_t)[ok].sum())
            for mark, e in zip(last, ends_list, strict=True):
                mark.counts[rsu] = float(count[e])
        for k, mark in zip(keys, last, strict=True):
            self._last[k] = mark

    def totals(self) -> dict[str, V2iTotal]:
        """RSU → what was received and expected in its zone, ready to add up across inputs."""
        out = {}
        for rsu, rate in sorted(self.rsus.items()):
            why = self.missing(rsu)
            c = self.counts.get(rsu, V2iCounts())
            per_s = rate.per_s
            out[rsu] = V2iTotal(intersection=rate.intersection, received=c.received,
                                expected=None if per_s is None or why else c.seconds * per_s,
                                missing=why)
        return out


@dataclass
class V2iTotal:
    intersection: str | None
    received: int = 0
    expected: float | None = None
    #: Why the in-zone figures could not be computed (then there is no ratio at all).
    missing: str | None = None

    def add(self, other: V2iTotal) -> None:
        self.received += other.received
        if other.expected is not None:
            self.expected = (self.expected or 0.0) + other.expected
        self.missing = self.missing or other.missing

    @property
    def ratio(self) -> float | None:
        if self.missing:
            return None
        return self.received / self.expected if self.expected else None
