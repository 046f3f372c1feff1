"""Replay: a message stream through the live pipeline under a virtual clock.

Nothing here decides anything about links or alerts: messages go through ``Hub.ingest`` and
time through ``Hub.tick``, exactly as live, with the clock set to the stream's receive times
and ticks at ``eval_interval_s`` of virtual time. Messages that share a receive time form one
batch, as they did when the live hub received them. This module only drives the clock and
keeps the books for the results (alerts, KPIs), so the same input gives the same output, bit
for bit.

A replay may be a day of a fleet (hundreds of millions of messages): every book here is bounded
by the number of links or of events (handovers, failovers, alerts), never by the number of
samples. Throughput means are running sums; RTT percentiles are exact up to ``RTT_EXACT_MAX``
answered probes per link and within ``RelativeSketch.ALPHA`` beyond (docs/replay.md).
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

from handover.intersections import rates, returns_within
from l4mon.alerts.model import Alert
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, config_from_dict
from l4mon.hub import Hub
from l4mon.service import build_runtime
from l4mon.site import Site
from telemetry.drivelog import Delivery
from telemetry.linkstate import STATES
from telemetry.window import percentile

if TYPE_CHECKING:
    from handover.detect import Failover, Handover
    from telemetry.fleet import HandoverEntry

#: Called before each batch with the virtual time, so a scenario can pace or inject.
Hook = Callable[[float], None]

#: Answered probes per link whose RTT percentiles are exact (every value kept, 8 bytes each in
#: an ``array``). 65,536 is 3.6 times a 30-minute scenario at 10 Hz (18,000) and ~1.8 h of one
#: link, so every scenario of the library and any validation run of that length is graded on
#: exact figures; at most 512 KiB per link (100 MiB for 100 vehicles x 2 links, held only
#: until each link passes the cap). Beyond it a link's percentiles come from a fixed ~80 KiB
#: sketch within 0.1 %: a day of a fleet stays in fixed memory.
RTT_EXACT_MAX: Final = 65_536
#: What ``kpis`` says of a link's RTT percentiles (the ``rtt_percentiles`` field).
EXACT: Final = "exact"
APPROXIMATE: Final = "±0.1 %"
#: ``sum`` adds floats with Neumaier's compensation from Python 3.12 on, plainly before.
_COMPENSATED: Final = sys.version_info >= (3, 12)


class RunningMean:
    """``sum(values) / len(values)`` without keeping the values.

    The float is the very one the interpreter's ``sum`` gives (plain addition before 3.12,
    Neumaier's compensated sum from 3.12, both replicated here), so the figures of a replay
    do not move from when every value was kept in a list.
    """

    __slots__ = ("comp", "n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.comp = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        total = self.total
        t = total + x
        if _COMPENSATED:
            if abs(total) >= abs(x):
                self.comp += (total - t) + x
            else:
                self.comp += (x - t) + total
        self.total = t

    def value(self) -> float | None:
        if not self.n:
            return None
        total, comp = self.total, self.comp
        if comp and math.isfinite(comp):  # as sum(): never turn an overflow into NaN
            total += comp
        return total / self.n


class RelativeSketch:
    """Counts of values in log-spaced bins, DDSketch-style (Masson et al., VLDB 2019): a value
    in (g^(i-1), g^i] is counted in bin i and read back as 2 g^i / (g + 1), which is within
    ``ALPHA`` of it, relatively. So is every percentile read from it, since a percentile is an
    order statistic or a mix of two neighbouring ones. Fixed range (the wire's RTT bounds) and
    so fixed memory, ~10,100 bins of 8 bytes; two sketches add bin by bin (``merge``)."""

    ALPHA: Final = 0.001
    #: Values below this (ms) count as 0: an absolute error under the KPIs' own rounding.
    LOW: Final = 1e-3
    HIGH: Final = 600_000.0  # telemetry.wire's RttMs bound
    _GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
    _LOG_GAMMA: Final = math.log(_GAMMA)
    _FIRST: Final = math.ceil(math.log(LOW) / _LOG_GAMMA)
    _BINS: Final = math.ceil(math.log(HIGH) / _LOG_GAMMA) - _FIRST + 1

    __slots__ = ("counts", "n", "zeros")

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * self._BINS))
        self.zeros = 0
        self.n = 0

    def add(self, x: float) -> None:
        self.n += 1
        if x < self.LOW:
            self.zeros += 1
            return
        i = math.ceil(math.log(x) / self._LOG_GAMMA) - self._FIRST
        self.counts[min(max(i, 0), self._BINS - 1)] += 1

    def merge(self, other: RelativeSketch) -> None:
        """Add ``other``'s counts: the sketch of both inputs together, with the same error."""
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.zeros += other.zeros
        self.n += other.n

    def percentile(self, q: float) -> float | None:
        """``telemetry.window.percentile`` over the values, each read back from its bin."""
        n = self.n
        if n == 0:
            return None
        cumulative = list(accumulate(self.counts, initial=self.zeros))

        def value(k: int) -> float:  # the k-th smallest (from 0), read back from its bin
            j = bisect_right(cumulative, k)  # 0: below LOW; j: bin j - 1
            return 0.0 if j == 0 else 2 * self._GAMMA ** (j - 1 + self._FIRST) / (self._GAMMA + 1)

        rank = (n - 1) * q / 100.0
        low = int(rank)
        if low >= n - 1:
            return value(n - 1)
        v0, v1 = value(low), value(low + 1)
        return v0 + (v1 - v0) * (rank - low)


class RttBook:
    """Every answered probe's RTT of one link, for whole-run percentiles: exact (the values
    kept) up to ``exact_max`` of them, then a ``RelativeSketch`` of all of them."""

    __slots__ = ("exact_max", "sketch", "values")

    def __init__(self, exact_max: int = RTT_EXACT_MAX) -> None:
        self.exact_max = exact_max
        self.values: array[float] | None = array("d")
        self.sketch: RelativeSketch | None = None

    def add(self, rtt_ms: float) -> None:
        values = self.values
        if values is None:
            self.sketch.add(rtt_ms)  # type: ignore[union-attr]
            return
        values.append(rtt_ms)
        if len(values) > self.exact_max:
            sketch = self.sketch = RelativeSketch()
            for v in values:
                sketch.add(v)
            self.values = None

    @property
    def exact(self) -> bool:
        return self.values is not None

    def __len__(self) -> int:
        return len(self.values) if self.values is not None else self.sketch.n  # type: ignore

    def percentiles(self, *qs: float) -> list[float | None]:
        if self.values is not None:
            ordered = sorted(self.values)
            return [percentile(ordered, q) for q in qs]
        assert self.sketch is not None
        return [self.sketch.percentile(q) for q in qs]


@dataclass
class LinkBooks:
    """Whole-replay figures for one link, kept at every tick and every sample: in memory
    bounded per link, whatever the length of the replay."""

    rtts: RttBook = field(default_factory=RttBook)
    time_in: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STATES})
    ul: RunningMean = field(default_factory=RunningMean)
    dl: RunningMean = field(default_factory=RunningMean)


@dataclass
class Outcome:
    """What a replay produced: the hub at the end, every alert, the KPI books."""

    hub: Hub
    start: float
    end: float
    messages: int
    alerts: list[Alert]
    links: dict[tuple[str, str], LinkBooks]
    vehicle_time: dict[str, dict[str, float]]
    #: vehicle → [seconds judged, seconds the usable links' uplink met the requirement]
    uplink: dict[str, list[float]] = field(default_factory=dict)
    #: Every final handover and failover of the run, oldest first. Not the hub's own deques:
    #: those keep the last HANDOVERS_KEPT, right for a live hub, an undercount for a long log.
    handovers: Sequence[HandoverEntry] = ()
    failovers: Sequence[tuple[str, Failover]] = ()


def batches(deliveries: Iterable[Delivery]) -> Iterator[tuple[float, list[tuple[str, bytes]]]]:
    """Group consecutive deliveries with the same receive time."""
    current: list[tuple[str, bytes]] = []
    at: float | None = None
    for recv_time, topic, payload in deliveries:
        if at is not None and recv_time != at:
            yield at, current
            current = []
        at = recv_time
        current.append((topic, payload))
    if at is not None and current:
        yield at, current


def run(deliveries: Iterable[Delivery], *, config: HubConfig | None = None,
        site: Site | None = None, journal: str = ":memory:",
        before_batch: Hook | None = None, settle_s: float = 0.0,
        rtt_exact_max: int = RTT_EXACT_MAX) -> Outcome:
    """Replay ``deliveries`` (in receive-time order) and return the outcome.

    The clock stops at the last message (plus ``settle_s``, default 0): the end of a recording
    is not an outage, and running on would make every link stale and raise alerts for a fleet
    that merely stopped being recorded. Holds still pending at the end stay pending.
    ``deliveries`` is consumed as it goes (``iter_wire_messages`` streams a log of any size);
    ``rtt_exact_max`` is the per-link cap on exact RTT percentiles (``RTT_EXACT_MAX``).
    """
    base = config or HubConfig()
    data = _as_dict(base)
    data["alerts"]["journal"] = journal
    data["handover"]["enabled"] = True  # validators need them; replay has the time
    cfg = config_from_dict(data)
    clock = ManualClock(0.0)
    runtime = build_runtime(cfg, clock=clock, site=site)
    hub = runtime.hub
    hub.fleet.keep_every_record()  # the results list every handover and failover
    interval = cfg.ingest.eval_interval_s
    books: dict[tuple[str, str], LinkBooks] = defaultdict(
        lambda: LinkBooks(rtts=RttBook(rtt_exact_max)))
    vehicle_time: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    uplink: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    required = cfg.requirements.ul_required
    start: float | None = None
    next_tick = 0.0
    last = 0.0
    count = 0

    def tick(now: float) -> None:
        clock.set(now)
        hub.tick(now)
        for vid, vehicle in hub.fleet.vehicles.items():
            vehicle_time[vid][vehicle.connectivity] += interval
            for name, link in vehicle.links.items():
                books[(vid, name)].time_in[link.health.state] += interval
            if vehicle.links:  # judged as the alert rule judges it (links_total > 0)
                book = uplink[vid]
                book[0] += interval
                if vehicle.ul_kbps_usable() >= required(vid):
                    book[1] += interval

    for at, batch in batches(deliveries):
        if start is None:
            start = at
            clock.set(at)
            next_tick = math.floor(at / interval) * interval + interval
        if at < last:
            raise ValueError(f"deliveries out of order at {at} (after {last})")
        while next_tick <= at:
            tick(next_tick)
            next_tick += interval
        if before_batch is not None:
            before_batch(at)
        clock.set(at)
        hub.ingest([(topic, payload, None) for topic, payload in batch], at)
        for topic, _ in batch:
            _account(books, hub, topic)
        count += len(batch)
        last = at
    if start is None:
        raise ValueError("nothing to replay: the input has no messages")
    settle = settle_s
    while next_tick <= last + settle:
        tick(next_tick)
        next_tick += interval
    hub.drain_handovers(last + settle)
    engine = hub.alerts
    assert engine is not None
    # All of them (a day's link-state alerts of a report's replay can pass any fixed limit).
    alerts = sorted(engine.journal.alerts(limit=sys.maxsize), key=lambda a: a.id)
    return Outcome(hub=hub, start=start, end=last, messages=count, alerts=alerts,
                   links=dict(books), vehicle_time={k: dict(v) for k, v in vehicle_time.items()},
                   uplink=dict(uplink), handovers=hub.fleet.handovers,
                   failovers=hub.fleet.failovers)


def _account(books: dict[tuple[str, str], LinkBooks], hub: Hub, topic: str) -> None:
    """Count every new link sample's RTT and throughput into the whole-replay books."""
    parts = topic.split("/")
    if len(parts) != 7 or parts[5] != "link":
        return
    vehicle = hub.fleet.vehicles.get(parts[4])
    link = vehicle.links.get(parts[6]) if vehicle else None
    last = link.last if link else None
    if last is None or link is None or link.last_rx != hub.last_batch_at:
        return  # refused, duplicate or late: not a new sample
    book = books[(parts[4], parts[6])]
    if last.rtt_ms is not None:
        book.rtts.add(last.rtt_ms)
    if last.ul_kbps is not None:
        book.ul.add(last.ul_kbps)
    if last.dl_kbps is not None:
        book.dl.add(last.dl_kbps)


def _as_dict(config: HubConfig) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(config)


def kpis(outcome: Outcome) -> dict[str, Any]:
    """Per vehicle and link: the figures a validator checks expectations against."""
    out: dict[str, Any] = {}
    # Grouped once, in order: a day's records by every link in turn would be quadratic.
    handovers: dict[tuple[str, str], list[Handover]] = defaultdict(list)
    for entry in outcome.handovers:
        handovers[(entry.vehicle, entry.link)].append(entry.record)
    failovers: dict[str, list[Failover]] = defaultdict(list)
    for v, f in outcome.failovers:
        failovers[v].append(f)
    for vid, vehicle in sorted(outcome.hub.fleet.vehicles.items()):
        total = sum(outcome.vehicle_time.get(vid, {}).values()) or 1.0
        links = {}
        for name, link in sorted(vehicle.links.items()):
            book = outcome.links.get((vid, name), LinkBooks())
            p50, p95, p99 = book.rtts.percentiles(50, 95, 99)
            span = sum(book.time_in.values()) or 1.0
            seq = link.seq
            made = handovers.get((vid, name), [])
            kinds = Counter(h.kind for h in made)
            gaps = sorted(h.interruption_ms for h in made)
            links[name] = {
                "handovers": len(made),
                "handovers_by_kind": dict(sorted(kinds.items())),
                "handover_success_rate": _r(kinds["success"] / len(made), 6) if made else None,
                "ping_pong_rate": _r(kinds["ping_pong"] / len(made), 6) if made else None,
                "ping_pong_rate_by_window": {
                    k: None if v is None else _r(v, 6)
                    for k, v in rates(returns_within(made), len(made)).items()},
                "interruption_p50_ms": _r(percentile(gaps, 50)),
                "interruption_p95_ms": _r(percentile(gaps, 95)),
                "interruption_max_ms": _r(gaps[-1]) if gaps else None,
                "samples": seq.received,
                "rtt_p50_ms": _r(p50), "rtt_p95_ms": _r(p95), "rtt_p99_ms": _r(p99),
                # Exact up to RTT_EXACT_MAX answered probes of the link, then a sketch's.
                "rtt_percentiles": EXACT if book.rtts.exact else APPROXIMATE,
                "loss_ratio": _r(seq.loss_ratio, 6),
                "availability": _r((book.time_in["ok"] + book.time_in["degraded"]) / span, 6),
                "time_in_state_s": {k: _r(v, 3) for k, v in book.time_in.items() if v},
                "ul_kbps_mean": _r(book.ul.value()),
                "dl_kbps_mean": _r(book.dl.value()),
                "cell_changes": link.cell_changes,
            }
        times = outcome.vehicle_time.get(vid, {})
        judged, met = outcome.uplink.get(vid, (0.0, 0.0))
        events = failovers.get(vid, [])
        over = sorted(f.failover_s for f in events if f.failover_s is not None)
        out[vid] = {
            # Failover (docs/handover.md): a link became unusable; how long until another
            # carried the vehicle, and how long it had no usable link at all.
            "failovers": len(events),
            "failover_s_max": _r(over[-1]) if over else None,
            "both_unusable_s": _r(sum(f.both_unusable_s for f in events), 3),
            "availability": _r((times.get("ok", 0.0) + times.get("degraded", 0.0)
                                + times.get("one_link_down", 0.0)) / total, 6),
            "time_all_links_down_s": _r(times.get("all_links_down", 0.0), 3),
            # The alert rule's figure (ul_kbps_usable >= ul_required_kbps), over the ticks.
            "ul_requirement_judged_s": _r(judged, 3),
            "ul_requirement_met": _r(met / judged, 6) if judged else None,
            "links": links,
        }
    return out


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
