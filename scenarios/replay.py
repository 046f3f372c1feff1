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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from handover.intersections import rates, returns_within
from l4mon.alerts.rules import Rule
from l4mon.assembly import build_hub
from l4mon.clock import ManualClock
from l4mon.commands.trail import CommandTrail
from l4mon.config import HubConfig, config_from_dict
from l4mon.hub import Hub
from l4mon.records.alert import Alert
from telemetry.drivelog import Delivery
from telemetry.link import SampleObserver
from telemetry.linkstate import STATES
from telemetry.quantiles import EXACT_MAX, Quantiles, RunningMean
from telemetry.ranges import merged
from telemetry.sessions import SESSION_GAP_S
from telemetry.site import Site
from telemetry.vehicle import VehicleTrack
from telemetry.window import percentile
from telemetry.wire import LinkSample

if TYPE_CHECKING:
    from handover.book import HandoverEntry
    from handover.detect import Failover, Handover

#: Called before each batch with the virtual time, so a scenario can pace or inject.
Hook = Callable[[float], None]


class Watcher(Protocol):
    """Sees what a replay sees, to keep books of its own (the link map's builder,
    scenarios/linkmap_build.py): the hub once built, every sample that counts with its
    vehicle and link, and every tick after the hub has judged it."""

    def attach(self, hub: Hub) -> None: ...

    def sample(self, vehicle: str, link: str, msg: LinkSample, now: float) -> None: ...

    def tick(self, now: float, interval: float) -> None: ...

#: Answered probes per link whose RTT percentiles are exact: the one rule of every published
#: percentile (``telemetry.quantiles.EXACT_MAX``, the report's too). 65,536 is 3.6 times a
#: 30-minute scenario at 10 Hz (18,000) and ~1.8 h of one link, so every scenario of the library
#: and any validation run of that length is graded on exact figures; at most 512 KiB per link
#: (100 MiB for 100 vehicles x 2 links, held only until each link passes the cap). Beyond it a
#: link's percentiles come from a fixed ~160 KiB sketch within 0.1 %: a day of a fleet stays
#: in fixed memory.
RTT_EXACT_MAX: Final = EXACT_MAX
#: What ``kpis`` says of a link's RTT percentiles (the ``rtt_percentiles`` field).
EXACT: Final = "exact"
APPROXIMATE: Final = "±0.1 %"


#: Samples a link's books take before their values are added to its figures: the values wait
#: in four flat arrays (at most 4 x 32 KiB a link) and are added in bulk, in order.
SETTLE_EVERY: Final = 4_096


def _values() -> array[float]:
    return array("d")


@dataclass(slots=True)  # attribute access on the per-sample path
class LinkBooks:
    """Whole-replay figures for one link, kept at every tick and every sample: in memory
    bounded per link, whatever the length of the replay.

    A sample only appends its values to flat arrays (a replay's hot path: a method call per
    figure per sample was ~1 µs); ``settle`` adds them to the figures in bulk, in arrival
    order, bit for bit as adding each in turn would (``add_in_order``). ``run`` settles every
    book before it hands them out."""

    rtts: Quantiles = field(default_factory=Quantiles)
    #: Probes without an answer (samples that carried no probe are neither).
    timeouts: int = 0
    #: One-way delay (receive time - sender ts), ms, of samples with a sender clock.
    owd: Quantiles = field(default_factory=lambda: Quantiles(high=86_400_000.0))
    time_in: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STATES})
    ul: RunningMean = field(default_factory=RunningMean)
    dl: RunningMean = field(default_factory=RunningMean)
    _rtt: array[float] = field(default_factory=_values, init=False, repr=False)
    _owd: array[float] = field(default_factory=_values, init=False, repr=False)
    _ul: array[float] = field(default_factory=_values, init=False, repr=False)
    _dl: array[float] = field(default_factory=_values, init=False, repr=False)
    _waiting: int = field(default=0, init=False, repr=False)

    def __call__(self, msg: LinkSample, now: float) -> None:
        """Every sample that counts (new or late; the hub drops duplicates), with its own
        figures: the link's ``observer`` during a replay."""
        rtt = msg.rtt_ms
        if rtt is not None:
            self._rtt.append(rtt)
        elif msg.probe:
            self.timeouts += 1
        if msg.sender_clock:
            self._owd.append((now - msg.ts) * 1000.0)
        ul = msg.ul_kbps
        if ul is not None:
            self._ul.append(ul)
        dl = msg.dl_kbps
        if dl is not None:
            self._dl.append(dl)
        self._waiting += 1
        if self._waiting >= SETTLE_EVERY:
            self.settle()

    def settle(self) -> None:
        """Add the waiting values to the figures, in the order they came.

        Each list is replaced, not emptied in place: a NumPy view of it may outlive the call
        that made it (a sampling profiler, such as a Dask worker's, holds frames and their
        locals for a moment), and an array.array cannot be resized while a view exports it."""
        if self._rtt:
            self.rtts.add_in_order(self._rtt)
            self._rtt = _values()
        if self._owd:
            self.owd.add_in_order(self._owd)
            self._owd = _values()
        if self._ul:
            self.ul.add_in_order(self._ul)
            self._ul = _values()
        if self._dl:
            self.dl.add_in_order(self._dl)
            self._dl = _values()
        self._waiting = 0


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
    #: vehicle → [seconds with a link, seconds the usable links' uplink was measured (judged),
    #: seconds it met the requirement]
    uplink: dict[str, list[float]] = field(default_factory=dict)
    #: Every final handover and failover of the run, oldest first. Not the hub's own deques:
    #: those keep the last HANDOVERS_KEPT, right for a live hub, an undercount for a long log.
    handovers: Sequence[HandoverEntry] = ()
    failovers: Sequence[tuple[str, Failover]] = ()
    #: Quantities the input's source does not measure (its manifest's ``not_measured``).
    not_measured: frozenset[str] = frozenset()
    #: The drives of the input (telemetry/sessions.py), and the vehicles of all but the last,
    #: retired at their session's end (their link counters are part of the KPIs).
    sessions: list[Session] = field(default_factory=list)
    retired: list[VehicleTrack] = field(default_factory=list)
    #: The recorded commands and their answers (l4mon/commands/trail.py), sent first first.
    commands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active_s(self) -> float:
        """Time inside sessions: the drives' own time, without the pauses between them."""
        return sum(s.duration_s for s in self.sessions)

    def tracks(self) -> dict[str, list[VehicleTrack]]:
        """Every vehicle's tracks, one per session it drove in, in order."""
        out: dict[str, list[VehicleTrack]] = defaultdict(list)
        for vehicle in [*self.retired, *self.hub.fleet.vehicles.values()]:
            out[vehicle.id].append(vehicle)
        return dict(out)


@dataclass
class Session:
    """One drive of the input: first and last receive time, messages, vehicles."""

    start: float
    end: float | None = None
    messages: int = 0
    vehicles: list[str] = field(default_factory=list)
    #: Time between its messages in which some vehicle was in service (the drives' own time:
    #: without the pauses between an import's drives, nor time after everyone left service).
    driving_s: float = 0.0

    def close(self, end: float, vehicles: Iterable[str]) -> None:
        self.end = end
        self.vehicles = sorted(vehicles)

    @property
    def duration_s(self) -> float:
        return self.driving_s

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "duration_s": round(self.duration_s, 3),
                "calendar_s": round(0.0 if self.end is None else self.end - self.start, 3),
                "messages": self.messages, "vehicles": self.vehicles}


def batches(deliveries: Iterable[Delivery]
            ) -> Iterator[tuple[float, list[tuple[str, bytes, str | None]]]]:
    """Group consecutive deliveries with the same receive time, as the hub's batches."""
    current: list[tuple[str, bytes, str | None]] = []
    at: float | None = None
    for recv_time, topic, payload, content_type in deliveries:
        if at is not None and recv_time != at:
            yield at, current
            current = []
        at = recv_time
        current.append((topic, payload, content_type))
    if at is not None and current:
        yield at, current


def run(deliveries: Iterable[Delivery], *, config: HubConfig | None = None,
        site: Site | None = None, journal: str = ":memory:",
        before_batch: Hook | None = None, settle_s: float = 0.0,
        rtt_exact_max: int = RTT_EXACT_MAX, rules: list[Rule] | None = None,
        not_measured: Iterable[str] = (), session_gap_s: float = SESSION_GAP_S,
        watcher: Watcher | None = None) -> Outcome:
    """Replay ``deliveries`` (in receive-time order) and return the outcome.

    The clock stops at the last message (plus ``settle_s``, default 0): the end of a recording
    is not an outage, and running on would make every link stale and raise alerts for a fleet
    that merely stopped being recorded. Holds still pending at the end stay pending. So it is
    at the end of each session: when nothing arrives for longer than ``session_gap_s``
    (telemetry/sessions.py), the session ends there, the clock jumps to the next message
    without ticking, and the next session starts with no vehicle known.
    ``deliveries`` is consumed as it goes (``iter_wire_messages`` streams a log of any size);
    ``rtt_exact_max`` is the per-link cap on exact RTT percentiles (``RTT_EXACT_MAX``);
    ``watcher`` is told of every sample and tick (it decides nothing).
    """
    cfg = _replay_config(config or HubConfig(), journal)
    clock = ManualClock(0.0)
    books: dict[tuple[str, str], LinkBooks] = defaultdict(
        lambda: LinkBooks(rtts=Quantiles(rtt_exact_max)))

    def observe_link(vid: str, name: str) -> SampleObserver:
        # Each link reports its samples to its books (a vehicle back in a later session: the
        # same books, its figures add up).
        if watcher is None:
            return books[(vid, name)]
        return _tee(books[(vid, name)], watcher, vid, name)

    # The live hub, without the live runtime.
    hub = build_hub(cfg, site=site, rules=rules, observe_link=observe_link)
    hub.handovers.keep_every_record()  # the results list every handover and failover
    # Recorded commands and answers go through the hub's ingest to a trail: read, never sent.
    trail = CommandTrail(hub.fleet)
    hub.command_messages = trail.take
    if watcher is not None:
        watcher.attach(hub)
    ticker = _Ticker(hub, clock, books, cfg, watcher)
    fed = _feed(deliveries, hub, clock, ticker, before_batch, settle_s, session_gap_s)
    last = fed.last
    ticker.run_to(last + settle_s)
    hub.drain_handovers(last + settle_s)
    fed.sessions[-1].close(last, hub.fleet.vehicles)
    for book in books.values():
        book.settle()
    # All of them (a day's link-state alerts of a report's replay can pass any fixed limit).
    alerts = sorted(hub.alerts.journal.alerts(limit=sys.maxsize), key=lambda a: a.id)
    return Outcome(hub=hub, start=fed.start, end=last, messages=fed.count, alerts=alerts,
                   links=dict(books),
                   vehicle_time={k: dict(v) for k, v in ticker.vehicle_time.items()},
                   uplink=dict(ticker.uplink), handovers=hub.handovers.kept,
                   failovers=hub.handovers.failovers, not_measured=frozenset(not_measured),
                   sessions=fed.sessions, retired=fed.retired, commands=trail.rows())


def _replay_config(base: HubConfig, journal: str) -> HubConfig:
    """The hub's configuration for a replay: its journal, and handover detection on."""
    data = _as_dict(base)
    data["alerts"]["journal"] = journal
    data["handover"]["enabled"] = True  # validators need them; replay has the time
    return config_from_dict(data)


class _Ticker:
    """The replay's clock ticks, every ``eval_interval_s`` of its time: each moves the hub on
    and adds the interval to the time books (link states, connectivity, uplink judged/met)."""

    def __init__(self, hub: Hub, clock: ManualClock,
                 books: dict[tuple[str, str], LinkBooks], cfg: HubConfig,
                 watcher: Watcher | None) -> None:
        self.hub = hub
        self.clock = clock
        self.books = books
        self.watcher = watcher
        self.interval = cfg.ingest.eval_interval_s
        self.ul_max_age_s = cfg.links.window_s
        self.required = cfg.requirements.ul_requirement
        self.vehicle_time: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        #: vehicle → [time judged, time measured against a requirement, time it was met]
        self.uplink: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        self.next = 0.0

    def start_at(self, at: float) -> None:
        """A session starts at ``at``: the next tick is the interval's next multiple."""
        self.next = math.floor(at / self.interval) * self.interval + self.interval

    def run_to(self, end: float) -> None:
        """Every tick due up to ``end``, in order."""
        while self.next <= end:
            self.tick(self.next)
            self.next += self.interval

    def tick(self, now: float) -> None:
        self.clock.set(now)
        self.hub.tick(now)
        interval = self.interval
        for vid, vehicle in self.hub.fleet.vehicles.items():
            if not vehicle.serving:
                continue  # out of service (its drive ended): no time of any kind counts
            self.vehicle_time[vid][vehicle.connectivity] += interval
            for name, link in vehicle.links.items():
                self.books[(vid, name)].time_in[link.health.state] += interval
            if vehicle.links:  # judged as the alert rule judges it (links_total > 0)
                book = self.uplink[vid]
                book[0] += interval
                usable = vehicle.ul_kbps_usable(now, self.ul_max_age_s)
                need = self.required(vid)
                # Not measured, or no requirement: not judged, neither met nor missed.
                if usable is not None and need is not None:
                    book[1] += interval
                    if usable >= need:
                        book[2] += interval
        if self.watcher is not None:
            self.watcher.tick(now, interval)


@dataclass
class _Fed:
    """What feeding the input gave: its first and last time, messages, sessions, and the
    vehicles retired at each session's end."""

    start: float
    last: float
    count: int
    sessions: list[Session]
    retired: list[VehicleTrack]


def _feed(deliveries: Iterable[Delivery], hub: Hub, clock: ManualClock, ticker: _Ticker,
          before_batch: Hook | None, settle_s: float, session_gap_s: float) -> _Fed:
    """Every batch into the hub at its receive time, the ticks due before it first; a gap
    longer than ``session_gap_s`` closes the session as a replay's end."""
    start: float | None = None
    last = 0.0
    count = 0
    sessions: list[Session] = []
    retired: list[VehicleTrack] = []
    for at, batch in batches(deliveries):
        if start is None or at - last > session_gap_s:
            if start is None:
                start = at
            else:  # the drive before ended at ``last``: close it as a replay's end
                ticker.run_to(last + settle_s)
                sessions[-1].close(last, hub.fleet.vehicles)
                retired += hub.end_session(last + settle_s)
            sessions.append(Session(start=at))
            clock.set(at)
            ticker.start_at(at)
        if at < last:
            raise ValueError(f"deliveries out of order at {at} (after {last})")
        ticker.run_to(at)
        if before_batch is not None:
            before_batch(at)
        if last and at > last and sessions[-1].messages and hub.fleet.anyone_serving:
            sessions[-1].driving_s += at - last
        clock.set(at)
        hub.ingest(batch, at)
        count += len(batch)
        sessions[-1].messages += len(batch)
        last = at
    if start is None:
        raise ValueError("nothing to replay: the input has no messages")
    return _Fed(start, last, count, sessions, retired)


def _tee(book: LinkBooks, watcher: Watcher, vehicle: str, link: str
         ) -> Callable[[LinkSample, float], None]:
    def both(msg: LinkSample, now: float) -> None:
        book(msg, now)
        watcher.sample(vehicle, link, msg, now)
    return both


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
    for vid, tracks in sorted(outcome.tracks().items()):
        links = {name: _link_kpis(outcome, vid, name, tracks, handovers.get((vid, name), []))
                 for name in sorted({name for t in tracks for name in t.links})}
        out[vid] = _vehicle_kpis(outcome, vid, failovers.get(vid, []), links)
    return out


def _vehicle_kpis(outcome: Outcome, vid: str, events: list[Failover],
                  links: dict[str, Any]) -> dict[str, Any]:
    """One vehicle's figures: failover, availability, uplink requirement; its links'."""
    times = outcome.vehicle_time.get(vid, {})
    in_service = sum(times.values())
    # Availability over the time the vehicle's connectivity was known: the instant
    # before its first link is judged (a drive's start) is neither up nor down.
    known = in_service - times.get("unknown", 0.0)
    with_links, judged, met = outcome.uplink.get(vid, (0.0, 0.0, 0.0))
    over = sorted(f.failover_s for f in events if f.failover_s is not None)
    return {
        # Failover (docs/handover.md): a link became unusable; how long until another
        # carried the vehicle, and how long it had no usable link at all.
        "failovers": len(events),
        "failover_s_max": _r(over[-1]) if over else None,
        "both_unusable_s": _r(sum(f.both_unusable_s for f in events), 3),
        # Time in service (ticks while it was, drives of an import): its hours.
        "in_service_s": _r(in_service, 3),
        "availability": _r((times.get("ok", 0.0) + times.get("degraded", 0.0)
                            + times.get("one_link_down", 0.0)) / known, 6)
        if known > 0 else None,
        "time_all_links_down_s": _r(times.get("all_links_down", 0.0), 3),
        # The alert rule's figure (ul_kbps_usable >= ul_required_kbps), over the ticks in
        # which it was measured (every usable link reported its uplink); coverage says how
        # much of the time with a link that was. None when never: not measured.
        # The requirement it was judged against (0: none), so a reader of the results
        # can tell "no requirement" from "not measured".
        "ul_required_kbps": outcome.hub.config.requirements.ul_required(vid),
        "ul_requirement_judged_s": _r(judged, 3),
        "ul_requirement_coverage": _r(judged / with_links, 6) if with_links else None,
        "ul_requirement_met": _r(met / judged, 6) if judged else None,
        "links": links,
    }


def _link_kpis(outcome: Outcome, vid: str, name: str, tracks: list[VehicleTrack],
               made: list[Handover]) -> dict[str, Any]:
    """One link's figures over every session the vehicle drove in."""
    # One track per session the vehicle drove in: its counters add up.
    mine = [t.links[name] for t in tracks if name in t.links]
    received = sum(link.seq.received for link in mine)
    lost = sum(link.seq.lost for link in mine)
    book = outcome.links.get((vid, name), LinkBooks())
    p50, p95, p99 = book.rtts.percentiles(50, 95, 99)
    o50, o95, o99 = book.owd.percentiles(50, 95, 99)
    probes = len(book.rtts) + book.timeouts
    span = sum(book.time_in.values()) - book.time_in["unknown"]  # known time only, as for vehicles
    return {
        **_handover_kpis(made),
        "samples": received,
        # Coverage: what was measured at all. 0 probes: RTT not measured (every RTT
        # figure None), never "all timed out".
        "probes": probes, "probe_timeouts": book.timeouts,
        "rtt_coverage": _r(probes / received, 6) if received else None,
        "rtt_p50_ms": _r(p50), "rtt_p95_ms": _r(p95), "rtt_p99_ms": _r(p99),
        # Exact up to RTT_EXACT_MAX answered probes of the link, then a sketch's.
        "rtt_percentiles": EXACT if book.rtts.exact else APPROXIMATE,
        # Every percentile of this link (RTT, one-way; interruptions are always
        # exact) an exact order statistic: the one rule the report's tables follow.
        "exact": book.rtts.exact and book.owd.exact,
        # Only from samples with a sender clock (docs/protocol.md): None without one.
        "owd_samples": len(book.owd),
        "owd_p50_ms": _r(o50), "owd_p95_ms": _r(o95), "owd_p99_ms": _r(o99),
        # An import's seq is its row number: its gaps are skipped rows, not loss.
        "loss_ratio": None if "loss" in outcome.not_measured
        else _r(lost / (received + lost), 6) if received + lost else 0.0,
        "availability": _r((book.time_in["ok"] + book.time_in["degraded"]) / span, 6)
        if span > 0 else None,
        "time_in_state_s": {k: _r(v, 3) for k, v in book.time_in.items() if v},
        "ul_samples": book.ul.n, "ul_kbps_mean": _r(book.ul.value()),
        "dl_samples": book.dl.n, "dl_kbps_mean": _r(book.dl.value()),
        "cell_changes": sum(link.cell_changes for link in mine),
        # Figures outside their physical range (a logger's marker), set to None by
        # the hub: {field: {reason: count}} (telemetry/ranges.py).
        "fields_not_measured": merged(link.fields_not_measured for link in mine),
    }


def _handover_kpis(made: list[Handover]) -> dict[str, Any]:
    """A link's handover figures (docs/handover.md), first among its figures."""
    kinds = Counter(h.kind for h in made)
    gaps = sorted(h.interruption_ms for h in made)
    return {
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
    }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
