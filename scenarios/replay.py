"""Replay: a message stream through the live pipeline under a virtual clock.

Nothing here decides anything about links or alerts: messages go through ``Hub.ingest`` and
time through ``Hub.tick``, exactly as live, with the clock set to the stream's receive times
and ticks at ``eval_interval_s`` of virtual time. Messages that share a receive time form one
batch, as they did when the live hub received them. This module only drives the clock and
keeps the books for the results (alerts, KPIs), so the same input gives the same output, bit
for bit.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from handover.intersections import rates, returns_within
from l4mon.alerts.model import Alert
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, config_from_dict
from l4mon.hub import Hub
from l4mon.service import build_runtime
from l4mon.site import Site
from telemetry.linkstate import STATES
from telemetry.window import percentile

#: (receive time, topic, payload)
Delivery = tuple[float, str, bytes]
#: Called before each batch with the virtual time, so a scenario can pace or inject.
Hook = Callable[[float], None]


@dataclass
class LinkBooks:
    """Whole-replay figures for one link, kept at every tick and every sample."""

    rtts: list[float] = field(default_factory=list)
    time_in: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STATES})
    ul: list[float] = field(default_factory=list)
    dl: list[float] = field(default_factory=list)


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
        before_batch: Hook | None = None, settle_s: float = 0.0) -> Outcome:
    """Replay ``deliveries`` (in receive-time order) and return the outcome.

    The clock stops at the last message (plus ``settle_s``, default 0): the end of a recording
    is not an outage, and running on would make every link stale and raise alerts for a fleet
    that merely stopped being recorded. Holds still pending at the end stay pending.
    """
    base = config or HubConfig()
    data = _as_dict(base)
    data["alerts"]["journal"] = journal
    data["handover"]["enabled"] = True  # validators need them; replay has the time
    cfg = config_from_dict(data)
    clock = ManualClock(0.0)
    runtime = build_runtime(cfg, clock=clock, site=site)
    hub = runtime.hub
    interval = cfg.ingest.eval_interval_s
    books: dict[tuple[str, str], LinkBooks] = defaultdict(LinkBooks)
    vehicle_time: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
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
    alerts = sorted(engine.journal.alerts(limit=1_000_000), key=lambda a: a.id)
    return Outcome(hub=hub, start=start, end=last, messages=count, alerts=alerts,
                   links=dict(books), vehicle_time={k: dict(v) for k, v in vehicle_time.items()})


def _account(books: dict[tuple[str, str], LinkBooks], hub: Hub, topic: str) -> None:
    """Keep every answered RTT and throughput of link samples for whole-replay percentiles."""
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
        book.rtts.append(last.rtt_ms)
    if last.ul_kbps is not None:
        book.ul.append(last.ul_kbps)
    if last.dl_kbps is not None:
        book.dl.append(last.dl_kbps)


def _as_dict(config: HubConfig) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(config)


def kpis(outcome: Outcome) -> dict[str, Any]:
    """Per vehicle and link: the figures a validator checks expectations against."""
    out: dict[str, Any] = {}
    for vid, vehicle in sorted(outcome.hub.fleet.vehicles.items()):
        total = sum(outcome.vehicle_time.get(vid, {}).values()) or 1.0
        links = {}
        for name, link in sorted(vehicle.links.items()):
            book = outcome.links.get((vid, name), LinkBooks())
            rtts = sorted(book.rtts)
            span = sum(book.time_in.values()) or 1.0
            seq = link.seq
            made = [e.record for e in outcome.hub.fleet.handovers
                    if e.vehicle == vid and e.link == name]
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
                "rtt_p50_ms": _r(percentile(rtts, 50)), "rtt_p95_ms": _r(percentile(rtts, 95)),
                "rtt_p99_ms": _r(percentile(rtts, 99)),
                "loss_ratio": _r(seq.loss_ratio, 6),
                "availability": _r((book.time_in["ok"] + book.time_in["degraded"]) / span, 6),
                "time_in_state_s": {k: _r(v, 3) for k, v in book.time_in.items() if v},
                "ul_kbps_mean": _r(sum(book.ul) / len(book.ul)) if book.ul else None,
                "dl_kbps_mean": _r(sum(book.dl) / len(book.dl)) if book.dl else None,
                "cell_changes": link.cell_changes,
            }
        times = outcome.vehicle_time.get(vid, {})
        events = [f for v, f in outcome.hub.fleet.failovers if v == vid]
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
            "links": links,
        }
    return out


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
