"""V2I delivery from the drive log: what vehicles received from each RSU over what it sent.

docs/protocol.md defines the ratio as the vehicles' received messages (Δ ``v2i_rx[rsu]``) over
the RSU's broadcast (Δ ``tx_msgs``) in the same time. Here, per RSU: received is the sum of the
increases of a vehicle's counter between two consecutive state reports that both carry it
(the vehicle was in range for the whole interval); expected is the same intervals' length
times the RSU's broadcast rate, Δ ``tx_msgs`` / Δ receive time within each ``boot_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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
    seconds: float = 0.0  # vehicle-seconds in range (between two reports carrying the RSU)


@dataclass
class V2iCounter:
    rsus: dict[str, RsuRate] = field(default_factory=dict)
    counts: dict[str, V2iCounts] = field(default_factory=dict)
    #: per (vehicle id, RSU): (receive time, counter) of the vehicle's last state report
    _last: dict[int, tuple[float, dict[str, float]]] = field(default_factory=dict)
    _patterns: dict[str, str] = field(default_factory=dict)

    def set_rates(self, rates: dict[str, RsuRate]) -> None:
        self.rsus = rates
        # v2i_rx is stored as JSON text (sort_keys); pull one RSU's count with a regex in C++
        self._patterns = {r: '"' + re.escape(r) + r'"\s*:\s*(?P<n>\d+)' for r in rates}

    def add_states(self, src: np.ndarray, recv: np.ndarray, v2i: pa.Array) -> None:
        present = np.asarray(pc.is_valid(v2i).to_numpy(zero_copy_only=False))
        order = np.argsort(src, kind="stable")
        src, recv, present = src[order], recv[order], present[order]
        v2i = v2i.take(pa.array(order))
        first = np.empty(src.size, dtype=bool)
        first[0] = True
        np.not_equal(src[1:], src[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], src.size] - 1
        keys = src[starts].tolist()
        prev_t = np.empty_like(recv)
        prev_t[1:] = recv[:-1]
        prev_t[starts] = [self._last.get(k, (np.nan, {}))[0] for k in keys]
        last_counts: dict[int, dict[str, float]] = {k: {} for k in keys}
        for rsu, pattern in self._patterns.items():
            count = np.full(src.size, np.nan)
            matched = pc.match_substring_regex(v2i, pattern).fill_null(False)
            if present.any() and pc.any(matched).as_py():
                # rows that do not match come back as empty strings: keep them out of the cast
                text = pc.if_else(matched, pc.extract_regex(v2i, pattern).field("n"), "0")
                got = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
                count = np.where(matched.to_numpy(zero_copy_only=False), got, np.nan)
            prev = np.empty_like(count)
            prev[1:] = count[:-1]
            prev[starts] = [self._last.get(k, (np.nan, {}))[1].get(rsu, np.nan) for k in keys]
            delta = count - prev
            ok = ~np.isnan(delta) & (delta >= 0)
            if ok.any():
                c = self.counts.setdefault(rsu, V2iCounts())
                c.received += int(delta[ok].sum())
                c.seconds += float((recv - prev_t)[ok].sum())
            for k, e in zip(keys, ends.tolist(), strict=True):
                last_counts[k][rsu] = float(count[e])
        for k, e in zip(keys, ends.tolist(), strict=True):
            self._last[k] = (float(recv[e]), last_counts[k])

    def totals(self) -> dict[str, V2iTotal]:
        """RSU → what was received and expected, ready to add up across inputs."""
        out = {}
        for rsu, rate in sorted(self.rsus.items()):
            c = self.counts.get(rsu, V2iCounts())
            per_s = rate.per_s
            out[rsu] = V2iTotal(intersection=rate.intersection, received=c.received,
                                expected=None if per_s is None else c.seconds * per_s)
        return out


@dataclass
class V2iTotal:
    intersection: str | None
    received: int = 0
    expected: float | None = None

    def add(self, other: V2iTotal) -> None:
        self.received += other.received
        if other.expected is not None:
            self.expected = (self.expected or 0.0) + other.expected

    @property
    def ratio(self) -> float | None:
        return self.received / self.expected if self.expected else None
