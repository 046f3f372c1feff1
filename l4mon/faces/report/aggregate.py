"""Distribution figures straight from a drive log's Parquet, one record batch at a time.

RTT, one-way delay, jitter, loss from ``seq`` and UL/DL throughput are properties of the raw
samples, not of the hub's judgement, so they are counted here without replaying anything:
memory is the histograms plus a few numbers per stream, whatever the size of the log. Files
are read in path order (recordings are partitioned by date and hour, so that is time order)
and each stream's rows in file order; a stream whose receive times go backwards is counted in
``out_of_order`` and reported, since its jitter and loss assume arrival order.

Samples count as in the hub, by the hub's own rule: each stream's ``seq`` goes through a
``telemetry.sequence.SeqTracker`` (in bulk where it only climbs, ``observe_many``), so a
repeated number is a duplicate counted once, a late number that fills a gap is a sample and
gives its loss back, and a jump back of more than 256 (or to 0 from 32 up) is a restart. Loss
is the trackers' at the end of the scan: missing ÷ (missing + received), the replay KPI.

Two books are kept. ``LinkRaw`` per link name, all vehicles pooled: the descriptive tables and
charts. ``VehicleLinkRaw`` per (vehicle, link): what the verdict grades, since a link is
redundancy only for its own vehicle; it keeps counts and one RTT distribution, exact by the
one rule of every published percentile (``telemetry.quantiles.EXACT_MAX`` values, 512 KiB),
then a sketch of ~160 KiB: a fleet of 100 vehicles with two links costs at most ~100 MiB
(as its replay does), whatever the log's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from handover.intersections import Zones
from l4mon.faces.report.histogram import (
    RTT_HIGH_MS,
    Histogram,
    delay_histogram,
    rate_histogram,
    rtt_histogram,
)
from l4mon.faces.report.inputs import LogInput, ReportError
from l4mon.faces.report.keys import Keys
from l4mon.faces.report.v2i import V2iCounter, V2iTotal, rsu_rates
from telemetry.drivelog import SCHEMA, drive_time
from telemetry.quantiles import Quantiles
from telemetry.sequence import SeqTracker, observe_many
from telemetry.sessions import SESSION_GAP_S, ActiveTime
from telemetry.site import Site

#: Per-vehicle link slot in a stream key; [fleet] allows 4 links, this leaves room.
_LINK_SLOTS = 1_024
_COLUMNS = ["recv_time", "kind", "source", "link", "ts", "seq", "rtt_ms", "ul_kbps", "dl_kbps",
            "v2i_rx", "probe", "sender_clock"]
BATCH_ROWS = 262_144
PENDING_MAX = 8_192


class _ProbesAndLoss:
    """What a link's counts say of probes and loss, pooled (LinkRaw) or one vehicle's
    (VehicleLinkRaw): one definition for both."""

    rtt: Any
    timeouts: int
    lost: int
    loss_samples: int

    @property
    def probes(self) -> int:
        """Probes the samples reported, answered or not: 0 means RTT was not measured."""
        return self.rtt.n + self.timeouts

    @property
    def loss_ratio(self) -> float | None:
        """None when no source of these samples measures loss."""
        expected = self.lost + self.loss_samples
        return self.lost / expected if expected else None


@dataclass
class LinkRaw(_ProbesAndLoss):
    """Everything counted for one link name (all vehicles) of one input or condition."""

    rtt: Histogram = field(default_factory=rtt_histogram)
    delay: Histogram = field(default_factory=delay_histogram)
    ul: Histogram = field(default_factory=rate_histogram)
    dl: Histogram = field(default_factory=rate_histogram)
    samples: int = 0  # new samples
    #: New samples of sources whose seq measures loss (not imports: their seq is a row number)
    loss_samples: int = 0
    duplicates: int = 0
    timeouts: int = 0  # probes without an answer (rtt_ms null on a sample with a probe)
    lost: int = 0
    jitter_sum: float = 0.0
    jitter_n: int = 0
    #: RTT / one-way delay at or under each budget's limit (ms): exact counts, not bins.
    rtt_within: dict[float, int] = field(default_factory=dict)
    delay_within: dict[float, int] = field(default_factory=dict)
    #: UL samples at or above the vehicle's [requirements] uplink, and at or above fixed rates.
    ul_meets_required: int = 0
    ul_judged: int = 0  # UL samples of vehicles that have a requirement (> 0)
    ul_at_least: dict[float, int] = field(default_factory=dict)
    dl_at_least: dict[float, int] = field(default_factory=dict)
    #: UL / DL samples from sources whose throughput says what a link can carry (not an
    #: app's traffic: ``capacity`` in a manifest's not_measured): what rate budgets grade.
    ul_capacity_n: int = 0
    dl_capacity_n: int = 0
    vehicles: set[str] = field(default_factory=set)
    #: Some source of these samples has a seq that is no sequence: loss not measured there.
    loss_not_measured: bool = False

    def merge(self, other: LinkRaw) -> None:
        for mine, theirs in ((self.rtt, other.rtt), (self.delay, other.delay),
                             (self.ul, other.ul), (self.dl, other.dl)):
            mine.merge(theirs)
        self.samples += other.samples
        self.loss_samples += other.loss_samples
        self.duplicates += other.duplicates
        self.timeouts += other.timeouts
        self.lost += other.lost
        self.jitter_sum += other.jitter_sum
        self.jitter_n += other.jitter_n
        self.ul_meets_required += other.ul_meets_required
        self.ul_judged += other.ul_judged
        self.ul_capacity_n += other.ul_capacity_n
        self.dl_capacity_n += other.dl_capacity_n
        for mine_d, theirs_d in ((self.rtt_within, other.rtt_within),
                                 (self.delay_within, other.delay_within),
                                 (self.ul_at_least, other.ul_at_least),
                                 (self.dl_at_least, other.dl_at_least)):
            for k, v in theirs_d.items():
                mine_d[k] = mine_d.get(k, 0) + v
        self.vehicles |= other.vehicles
        self.loss_not_measured = self.loss_not_measured or other.loss_not_measured

    @property
    def delay_n(self) -> int:
        return self.delay.n

    @property
    def ul_n(self) -> int:
        return self.ul.n

    @property
    def dl_n(self) -> int:
        return self.dl.n


    @property
    def jitter_ms(self) -> float | None:
        return self.jitter_sum / self.jitter_n if self.jitter_n else None


@dataclass
class VehicleLinkRaw(_ProbesAndLoss):
    """What one vehicle's one link measured in one condition: the counts the budgets grade,
    with their sample sizes and the link's own time, and why a quantity is not measured."""

    rtt: Quantiles = field(default_factory=lambda: Quantiles(high=RTT_HIGH_MS))
    samples: int = 0
    loss_samples: int = 0
    lost: int = 0
    timeouts: int = 0
    delay_n: int = 0
    ul_n: int = 0  # UL figures reported, capacity or not
    dl_n: int = 0
    ul_capacity_n: int = 0
    dl_capacity_n: int = 0
    rtt_within: dict[float, int] = field(default_factory=dict)
    delay_within: dict[float, int] = field(default_factory=dict)
    ul_at_least: dict[float, int] = field(default_factory=dict)
    dl_at_least: dict[float, int] = field(default_factory=dict)
    #: Seconds of this link's own data (gaps over the session gap not counted).
    seconds: float = 0.0
    #: The source's seq is no sequence (an import's row number): loss is not measured.
    loss_not_measured: bool = False
    #: RTTs not yet in ``rtt``: a batch brings ~1,000 per stream, and a sketch's cost is per
    #: call, so they go in by ``PENDING_MAX`` (64 KiB) at a time; ``settle`` before reading.
    _pending: list[np.ndarray] = field(default_factory=list)
    _pending_n: int = 0

    def add_rtts(self, values: np.ndarray) -> None:
        if not values.size:
            return
        self._pending.append(values)
        self._pending_n += int(values.size)
        if self._pending_n >= PENDING_MAX:
            self.settle()

    def settle(self) -> None:
        if self._pending:
            self.rtt.add_many(np.concatenate(self._pending))
            self._pending, self._pending_n = [], 0

    def merge(self, other: VehicleLinkRaw) -> None:
        self.settle()
        other.settle()
        self.rtt.merge(other.rtt)
        for name in ("samples", "loss_samples", "lost", "timeouts", "delay_n", "ul_n", "dl_n",
                     "ul_capacity_n", "dl_capacity_n"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.rtt_within, other.rtt_within),
                             (self.delay_within, other.delay_within),
                             (self.ul_at_least, other.ul_at_least),
                             (self.dl_at_least, other.dl_at_least)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.seconds += other.seconds
        self.loss_not_measured = self.loss_not_measured or other.loss_not_measured



@dataclass
class RawFigures:
    links: dict[str, LinkRaw] = field(default_factory=dict)
    #: (vehicle, link) → its own figures: what the verdict grades.
    vehicle_links: dict[tuple[str, str], VehicleLinkRaw] = field(default_factory=dict)
    #: vehicle → its drive time with data: the longest of its links' data time (its drives'
    #: own time for an import that lists them).
    vehicle_s: dict[str, float] = field(default_factory=dict)
    v2i: dict[str, V2iTotal] = field(default_factory=dict)
    rows: int = 0
    out_of_order: int = 0
    start: float | None = None
    end: float | None = None
    #: The drives' own time (telemetry/sessions.py): pauses between drives not counted.
    active_s: float = 0.0
    sessions: int = 0

    def link(self, name: str) -> LinkRaw:
        return self.links.setdefault(name, LinkRaw())

    def vehicle_link(self, vehicle: str, name: str) -> VehicleLinkRaw:
        found = self.vehicle_links.get((vehicle, name))
        if found is None:
            found = self.vehicle_links[(vehicle, name)] = VehicleLinkRaw()
        return found

    def merge(self, other: RawFigures) -> None:
        for name, raw in other.links.items():
            self.link(name).merge(raw)
        for (vehicle, name), vraw in other.vehicle_links.items():
            self.vehicle_link(vehicle, name).merge(vraw)
        for vehicle, seconds in other.vehicle_s.items():
            self.vehicle_s[vehicle] = self.vehicle_s.get(vehicle, 0.0) + seconds
        for rsu, total in other.v2i.items():
            self.v2i.setdefault(rsu, V2iTotal(intersection=total.intersection)).add(total)
        self.rows += other.rows
        self.out_of_order += other.out_of_order
        self.active_s += other.active_s
        self.sessions += other.sessions
        starts = [t for t in (self.start, other.start) if t is not None]
        ends = [t for t in (self.end, other.end) if t is not None]
        self.start = min(starts) if starts else None
        self.end = max(ends) if ends else None


@dataclass(frozen=True)
class Limits:
    """The thresholds exact counts are kept for (from the budgets), and the UL requirement."""

    rtt_ms: tuple[float, ...] = ()
    delay_ms: tuple[float, ...] = ()
    ul_kbps: tuple[float, ...] = ()
    dl_kbps: tuple[float, ...] = ()
    ul_required: Callable[[str], float] = lambda _vehicle: 8_000.0


def _period(start: float | None, end: float | None) -> ds.Expression | None:
    expr = None
    if start is not None:
        expr = ds.field("recv_time") >= start
    if end is not None:
        upper = ds.field("recv_time") < end
        expr = upper if expr is None else expr & upper
    return expr


def batches(log: LogInput, columns: list[str], *, start: float | None = None,
            end: float | None = None, kind: str | None = None,
            batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The log's rows, file by file in path order, filtered in the scan (row groups whose
    statistics rule them out are not even read)."""
    if not log.files:
        return
    try:
        dataset = ds.dataset([str(f) for f in log.files], schema=SCHEMA, format="parquet")
        expr = _period(start, end)
        if kind is not None:
            is_kind = ds.field("kind") == kind
            expr = is_kind if expr is None else expr & is_kind
        fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
        for fragment in fragments:
            yield from fragment.to_batches(schema=SCHEMA, columns=columns, filter=expr,
                                           batch_size=batch_rows, use_threads=False)
    except (pa.ArrowInvalid, OSError) as error:
        raise ReportError(f"{log.path}: unreadable Parquet: {error}") from None


class _Streams:
    """Per-stream carry between batches: sequence tracker (and the stream's link name), last
    answered RTT, last receive time."""

    def __init__(self) -> None:
        self.seq: dict[int, SeqTracker] = {}
        self.link: dict[int, str] = {}
        self.high: dict[int, float] = {}
        self.rtt: dict[int, float] = {}
        self.time: dict[int, float] = {}
        #: the stream's data time so far
        self.seconds: dict[int, float] = {}


def scan(log: LogInput, limits: Limits, *, site: Site | None = None,
         start: float | None = None, end: float | None = None,
         batch_rows: int = BATCH_ROWS, extra_columns: Sequence[str] = (),
         on_batch: Callable[[pa.RecordBatch], None] | None = None) -> RawFigures:
    """Count one log's samples (within ``[start, end)`` of receive time). V2I delivery is
    counted inside the intersection zones of ``site``; without it, each RSU says why not.
    ``on_batch`` sees every batch too, with ``extra_columns`` read as well (the drive-test
    views: one read of the log, not two)."""
    out = RawFigures()
    kinds, sources, links = Keys(), Keys(), Keys()
    streams = _Streams()
    required = np.zeros(0)
    rates = rsu_rates(batches(log, ["recv_time", "source", "intersection", "boot_id",
                                    "tx_msgs"], start=start, end=end, kind="rsu",
                              batch_rows=batch_rows))
    v2i = V2iCounter()
    v2i.set_rates(rates, Zones(site))
    # positions only when a zone is to be tested: two float columns of every row otherwise
    columns = [*_COLUMNS, "lat", "lon"] if v2i.counting else _COLUMNS
    columns = list(dict.fromkeys([*columns, *extra_columns]))
    # An import's seq is its row number: a gap there is a skipped row, not a lost sample.
    measures_loss = "loss" not in log.manifest.not_measured
    # An app's traffic (G-NetTrack's bitrate) says nothing of what the link could carry.
    capacity = "capacity" not in log.manifest.not_measured
    active = ActiveTime()
    for batch in batches(log, columns, start=start, end=end, batch_rows=batch_rows):
        n = batch.num_rows
        if not n:
            continue
        out.rows += n
        if on_batch is not None:
            on_batch(batch)
        recv = batch.column("recv_time").to_numpy(zero_copy_only=False)
        lo, hi = float(recv.min()), float(recv.max())
        out.start = lo if out.start is None else min(out.start, lo)
        out.end = hi if out.end is None else max(out.end, hi)
        active.add(recv)
        kind = kinds.codes(batch.column("kind"))
        src = sources.codes(batch.column("source"))
        if len(sources.names) > required.size:
            required = np.array([limits.ul_required(v) for v in sources.names])
        link_rows = np.flatnonzero(kind == kinds.id("link"))
        if link_rows.size:
            lnk = links.codes(batch.column("link").take(pa.array(link_rows)))
            _links(out, batch, link_rows, src[link_rows], lnk, recv[link_rows], links,
                   sources, streams, limits, required, capacity=capacity)
        state_rows = np.flatnonzero(kind == kinds.id("state"))
        if state_rows.size and v2i.counting:
            v2i.add_states(src[state_rows], recv[state_rows],
                           batch.column("v2i_rx").take(pa.array(state_rows)),
                           _numbers(batch, "lat", state_rows), _numbers(batch, "lon", state_rows))
    out.v2i = v2i.totals()
    for k, tracker in streams.seq.items():  # at the end: a late sample gives a loss back
        raw = out.link(streams.link[k])
        mine = out.vehicle_link(sources.names[k // _LINK_SLOTS], streams.link[k])
        raw.duplicates += tracker.duplicates
        mine.seconds += streams.seconds.get(k, 0.0)
        mine.loss_not_measured = raw.loss_not_measured = not measures_loss
        if measures_loss:
            raw.lost += tracker.lost
            raw.loss_samples += tracker.received
            mine.lost += tracker.lost
            mine.loss_samples += tracker.received
    for (vehicle, _), mine in out.vehicle_links.items():
        mine.settle()
        # its drive time with data: the longest of its links' own (each link's silences
        # over the session gap not counted)
        out.vehicle_s[vehicle] = max(out.vehicle_s.get(vehicle, 0.0), mine.seconds)
    out.active_s, out.sessions = active.seconds, active.sessions
    drives = [d for d in log.manifest.drives if (start is None or d.end >= start)
              and (end is None or d.start < end)]
    if drives:  # an import says when each vehicle drove: its hours are the files' spans
        out.active_s, out.sessions = drive_time(drives, start, end), len(drives)
        for vehicle in {d.vehicle for d in drives}:
            out.vehicle_s[vehicle] = drive_time([d for d in drives if d.vehicle == vehicle],
                                                start, end)
    return out


def _flags(batch: pa.RecordBatch, name: str, rows: np.ndarray) -> np.ndarray:
    """A boolean column at ``rows``, null → True (absent from version 1 logs)."""
    column = batch.column(name).take(pa.array(rows))
    return column.fill_null(True).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _numbers(batch: pa.RecordBatch, name: str, rows: np.ndarray) -> np.ndarray:
    """A numeric column at ``rows`` as float64, null → NaN."""
    column = batch.column(name).take(pa.array(rows))
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _links(out: RawFigures, batch: pa.RecordBatch, rows: np.ndarray, src: np.ndarray,
           lnk: np.ndarray, recv: np.ndarray, links: Keys, sources: Keys,
           streams: _Streams, limits: Limits, required: np.ndarray, *,
           capacity: bool = True) -> None:
    key = src * _LINK_SLOTS + lnk
    order = np.argsort(key, kind="stable")  # rows of a stream stay in file (arrival) order
    key, src, lnk, recv = key[order], src[order], lnk[order], recv[order]
    rows = rows[order]
    seq = _numbers(batch, "seq", rows)
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    group_keys = key[starts].tolist()

    # arrival order check, across batches too
    prev_time = np.empty_like(recv)
    prev_time[1:] = recv[:-1]
    prev_time[starts] = [streams.time.get(k, -math.inf) for k in group_keys]
    out.out_of_order += int(np.count_nonzero(recv < prev_time))

    new = _counted(seq, starts, group_keys, streams,
                   [links.names[int(lnk[a])] for a in starts.tolist()])
    ends = np.r_[starts[1:], key.size] - 1
    step = recv - prev_time
    counted = np.where((step > 0) & (step <= SESSION_GAP_S), step, 0.0)
    spans = np.add.reduceat(counted, starts)
    for k, e, span in zip(group_keys, ends.tolist(), spans.tolist(), strict=True):
        streams.time[k] = float(recv[e])
        streams.seconds[k] = streams.seconds.get(k, 0.0) + span

    rtt = _numbers(batch, "rtt_ms", rows)
    ts = _numbers(batch, "ts", rows)
    # null (a version 1 log) means true: every sample a probe, ts the sender's own clock
    probe = _flags(batch, "probe", rows)
    clock = _flags(batch, "sender_clock", rows)
    ul = _numbers(batch, "ul_kbps", rows)
    dl = _numbers(batch, "dl_kbps", rows)
    answered = new & ~np.isnan(rtt)
    _jitter(rtt, key, answered, streams, out, lnk, links)
    delay = np.where(clock, (recv - ts) * 1_000.0, np.nan)
    _vehicle_links(out, new, key, starts, group_keys, rtt, answered, probe, delay, ul, dl,
                   links, sources, limits, capacity=capacity)
    for code in np.unique(lnk).tolist():
        mine = new & (lnk == code)
        raw = out.link(links.names[code])
        raw.vehicles.update(sources.names[s] for s in np.unique(src[mine]).tolist())
        raw.samples += int(np.count_nonzero(mine))
        got = rtt[mine & answered]
        raw.timeouts += int(np.count_nonzero(mine & probe & np.isnan(rtt)))
        raw.rtt.add_many(got)
        d = delay[mine & ~np.isnan(delay)]
        raw.delay.add_many(d)
        for limit in limits.rtt_ms:
            raw.rtt_within[limit] = raw.rtt_within.get(limit, 0) \
                + int(np.count_nonzero(got <= limit))
        for limit in limits.delay_ms:
            raw.delay_within[limit] = raw.delay_within.get(limit, 0) \
                + int(np.count_nonzero(d <= limit))
        has_ul = mine & ~np.isnan(ul)
        u = ul[has_ul]
        raw.ul.add_many(u)
        need = required[src[has_ul]]
        judged = need > 0  # 0: no requirement, nothing to meet
        raw.ul_judged += int(np.count_nonzero(judged))
        raw.ul_meets_required += int(np.count_nonzero(judged & (u >= need)))
        w = dl[mine & ~np.isnan(dl)]
        raw.dl.add_many(w)
        if not capacity:
            continue
        raw.ul_capacity_n += int(u.size)
        raw.dl_capacity_n += int(w.size)
        for limit in limits.ul_kbps:
            raw.ul_at_least[limit] = raw.ul_at_least.get(limit, 0) \
                + int(np.count_nonzero(u >= limit))
        for limit in limits.dl_kbps:
            raw.dl_at_least[limit] = raw.dl_at_least.get(limit, 0) \
                + int(np.count_nonzero(w >= limit))


def _vehicle_links(out: RawFigures, new: np.ndarray, key: np.ndarray, starts: np.ndarray,
                   group_keys: list[int], rtt: np.ndarray, answered: np.ndarray,
                   probe: np.ndarray, delay: np.ndarray, ul: np.ndarray, dl: np.ndarray,
                   links: Keys, sources: Keys, limits: Limits, *, capacity: bool) -> None:
    """Each stream's (vehicle, link) counts of this batch. A stream's rows are contiguous,
    so every count is one ``reduceat`` over the batch, not a pass per stream."""
    timeout = new & probe & np.isnan(rtt)
    got = new & answered
    has_delay = new & ~np.isnan(delay)
    has_ul, has_dl = new & ~np.isnan(ul), new & ~np.isnan(dl)

    def per_stream(mask: np.ndarray) -> list[int]:
        return np.add.reduceat(mask.astype(np.int64), starts).tolist()

    counts = {name: per_stream(mask) for name, mask in (
        ("samples", new), ("timeouts", timeout), ("delay_n", has_delay), ("ul_n", has_ul),
        ("dl_n", has_dl))}
    with np.errstate(invalid="ignore"):  # NaN compares False: not within, not at least
        within = {limit: per_stream(got & (rtt <= limit)) for limit in limits.rtt_ms}
        delay_within = {limit: per_stream(has_delay & (delay <= limit))
                        for limit in limits.delay_ms}
        ul_at = {limit: per_stream(has_ul & (ul >= limit)) for limit in limits.ul_kbps} \
            if capacity else {}
        dl_at = {limit: per_stream(has_dl & (dl >= limit)) for limit in limits.dl_kbps} \
            if capacity else {}
    ends = np.r_[starts[1:], key.size]
    for i, (k, a, b) in enumerate(zip(group_keys, starts.tolist(), ends.tolist(),
                                      strict=True)):
        raw = out.vehicle_link(sources.names[k // _LINK_SLOTS],
                               links.names[k % _LINK_SLOTS])
        raw.add_rtts(rtt[a:b][got[a:b]])
        raw.samples += counts["samples"][i]
        raw.timeouts += counts["timeouts"][i]
        raw.delay_n += counts["delay_n"][i]
        raw.ul_n += counts["ul_n"][i]
        raw.dl_n += counts["dl_n"][i]
        for book, made in ((raw.rtt_within, within), (raw.delay_within, delay_within),
                           (raw.ul_at_least, ul_at), (raw.dl_at_least, dl_at)):
            for limit, n in made.items():
                book[limit] = book.get(limit, 0) + n[i]
        if capacity:
            raw.ul_capacity_n += counts["ul_n"][i]
            raw.dl_capacity_n += counts["dl_n"][i]


def _counted(seq: np.ndarray, starts: np.ndarray, group_keys: list[int],
             streams: _Streams, link_of: list[str]) -> np.ndarray:
    """Which rows count as samples (new or late, not duplicates), by the hub's own sequence
    rule (telemetry/sequence.py) run on each stream's tracker, kept across batches."""
    counted = np.ones(seq.size, dtype=bool)
    ends = np.r_[starts[1:], seq.size]
    for k, a, b, name in zip(group_keys, starts.tolist(), ends.tolist(), link_of, strict=True):
        tracker = streams.seq.get(k)
        if tracker is None:
            tracker = streams.seq[k] = SeqTracker()
            streams.link[k] = name
        counted[a:b] = observe_many(tracker, seq[a:b])
    return counted


def _jitter(rtt: np.ndarray, key: np.ndarray, answered: np.ndarray, streams: _Streams,
            out: RawFigures, lnk: np.ndarray, links: Keys) -> None:
    """RFC 3550's D, unsmoothed: |difference| of consecutive answered RTTs of a stream."""
    idx = np.flatnonzero(answered)
    if not idx.size:
        return
    k, r, code = key[idx], rtt[idx], lnk[idx]
    first = np.empty(k.size, dtype=bool)
    first[0] = True
    np.not_equal(k[1:], k[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    keys = k[starts].tolist()
    prev = np.empty_like(r)
    prev[1:] = r[:-1]
    prev[starts] = [streams.rtt.get(x, np.nan) for x in keys]
    diff = np.abs(r - prev)
    ends = np.r_[starts[1:], r.size] - 1
    for x, e in zip(keys, ends.tolist(), strict=True):
        streams.rtt[x] = float(r[e])
    ok = ~np.isnan(diff)
    for c in np.unique(code).tolist():
        mine = ok & (code == c)
        raw = out.link(links.names[c])
        raw.jitter_sum += float(diff[mine].sum())
        raw.jitter_n += int(np.count_nonzero(mine))
