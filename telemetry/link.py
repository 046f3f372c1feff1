"""Everything the hub knows about one (vehicle, link): rolling figures and a health verdict.

``add`` runs once per sample on the ingest hot path, so it only appends to flat arrays and
bumps counters. The percentiles are computed when someone asks (``figures``) or when the hub's
evaluation tick judges the link (``evaluate``), about once a second per link.
"""

from __future__ import annotations

from bisect import bisect_left
from math import isnan
from typing import Any, Final, Protocol

import msgspec

from telemetry.linkstate import STALE, Figures, LinkHealth, LinkThresholds, judge
from telemetry.pace import learned_interval, stream_limit
from telemetry.sequence import DUPLICATE, NEW, URGENT, SeqTracker
from telemetry.window import NAN, LinkWindow, mean_abs_step, percentile
from telemetry.wire import LinkSample

#: Windows reported by the API, seconds; the longest is what a link keeps.
WINDOWS: Final = (10.0, 60.0)
KEEP_S: Final = max(WINDOWS)
#: Samples kept at most: the longest window at 20 Hz. Beyond that rate the windows hold only the
#: newest samples, which is the estimator's stated error bound.
KEEP_SAMPLES: Final = 1_200
#: Probes that must go unanswered in a row before their silence can make a link down: one
#: lost probe of a sender that probes every 15 s is not 15 s of outage.
UNANSWERED_MIN: Final = 2
#: The link's pace (its usual sample interval) is re-measured at every this many judgements
#: (about every 8 s): it changes with the sender's setup, not from one second to the next.
PACE_EVERY: Final = 8


class Signal(msgspec.Struct, frozen=True):
    rat: str
    cell_id: str | None
    rsrp_dbm: float | None
    rsrq_db: float | None
    sinr_db: float | None


class WindowFigures(msgspec.Struct, frozen=True):
    """One window's figures; ``None`` where the window had no data for it."""

    window_s: float
    samples: int
    rtt_p50_ms: float | None
    rtt_p95_ms: float | None
    rtt_p99_ms: float | None
    rtt_jitter_ms: float | None
    #: Probes the window's samples reported (answered + unanswered); 0: RTT not measured.
    probes: int
    probe_timeouts: int
    #: None without a sender clock (``LinkSample.sender_clock`` false): not measured.
    owd_p50_ms: float | None
    owd_p95_ms: float | None
    loss_ratio: float
    ul_kbps: float | None
    dl_kbps: float | None


class Pose(Protocol):
    """Where the vehicle was: anything with ``lat`` and ``lon`` (the hub passes the vehicle's
    last state message itself, so placing a sample costs a reference, not a copy)."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


class LinkWatcher(Protocol):
    """Follows one link's samples over time and reports what it finds once final: the hub
    gives each link one (handover detection, handover/detect.py). Defined here, implemented
    above, so that the link statistics know nothing of handovers."""

    def take(self, now: float, sample: LinkSample, pose: Pose | None) -> None: ...

    def advance(self, now: float) -> list[Any]: ...

    def drain(self, now: float) -> list[Any]: ...

    def forget_service(self) -> None: ...


class SampleObserver(Protocol):
    """Takes each sample of a link that counts, with the hub time it was received at."""

    def __call__(self, msg: LinkSample, now: float, /) -> None: ...


class Placed(Protocol):
    """What a link belongs to: its ``state`` (the vehicle's last state message) says where."""

    @property
    def state(self) -> Pose | None: ...


class _Nowhere:
    state = None


NOWHERE: Final = _Nowhere()


def _mean_present(values: list[float]) -> float | None:
    present = [v for v in values if not isnan(v)]  # NaN marks "not reported"
    return sum(present) / len(present) if present else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


class LinkTrack:
    """Per-link state. Never called concurrently: the hub's one ingest task owns it."""

    __slots__ = ("cell", "cell_changes", "clock_suspect", "fields_not_measured",
                 "final_handovers", "handovers", "health", "judged", "judged_loss_ratio",
                 "judgements", "observer", "owner",
                 "judged_rtt_p95_ms", "last", "last_answer", "last_rx", "min_owd_s", "name",
                 "next_judge_at", "phase", "seq", "stale_after_s", "ul_at", "ul_kbps_last",
                 "unanswered",
                 "unanswered_since", "window")

    def __init__(self, name: str, *, phase: float = 0.0,
                 owner: Placed = NOWHERE,
                 handovers: LinkWatcher | None = None) -> None:
        if not 0.0 <= phase < 1.0:
            raise ValueError("phase must be in [0, 1)")
        self.name = name
        self.phase = phase
        #: The vehicle: its last state is handed to the handover tracker with each sample, so
        #: each handover is placed (and tagged with its intersection).
        self.owner = owner
        self.handovers = handovers
        #: Called with every sample that counts (new or late, not a duplicate) and its hub
        #: time: a replay keeps its whole-run books this way. None live (costs one check).
        self.observer: SampleObserver | None = None
        #: Handovers whose classification became final, taken by the fleet at each judging.
        self.final_handovers: list[Any] = []
        self.seq = SeqTracker()
        self.window = LinkWindow()
        self.last: LinkSample | None = None
        self.last_rx: float | None = None
        self.last_answer: float | None = None
        #: Probes unanswered in a row since the last answer, and when the first of them came:
        #: the evidence "no probe answer" rests on (a sample without a probe is none).
        self.unanswered = 0
        self.unanswered_since: float | None = None
        #: The last uplink the modem measured, and when (samples without one do not erase it).
        self.ul_kbps_last = 0.0
        self.ul_at: float | None = None
        self.cell_changes = 0
        #: Figures of this link's samples outside their physical range, set to None by the
        #: decoder (telemetry/ranges.py): {field: {reason: count}}. Counted by the hub.
        self.fields_not_measured: dict[str, dict[str, int]] = {}
        #: The last cell that served the link, kept through a loss of service: the cell a
        #: vehicle lost is what ties several vehicles' alerts to one outage.
        self.cell: str | None = None
        self.health = LinkHealth()
        self.clock_suspect = False
        self.min_owd_s: float | None = None  # smallest one-way delay in the judging window
        self.judged_rtt_p95_ms: float | None = None
        self.judged_loss_ratio = 0.0
        #: Silence past this is staleness: the configured stale_after_s, or three of the
        #: link's usual intervals if it reports more slowly (telemetry/pace.py); None until
        #: its pace is learned (or declared), when the unlearned limit applies.
        self.stale_after_s: float | None = None
        self.judgements = 0
        self.next_judge_at = 0.0  # judged at the first tick after its first sample
        self.judged = False

    def add(self, msg: LinkSample, now: float) -> int:
        """Take one sample received at hub time ``now``: 0 duplicate, 1 new, URGENT new and
        reporting no service (the hub then judges the link right after this batch)."""
        seq = self.seq
        number = msg.seq
        if number == seq.high + 1:  # the usual case, inlined: this runs ~100k times a second
            seq.high = number
            seq.received += 1
            kind = NEW
        else:
            kind = seq.observe(number)
            if kind == DUPLICATE:
                return False
        if self.observer is not None:
            self.observer(msg, now)
        w = self.window
        w.times.append(now)
        if msg.sender_clock:
            w.owd_times.append(now)
            w.owd.append(now - msg.ts)
        w.lost.append(seq.lost)
        ul = msg.ul_kbps
        if ul is None:
            w.ul.append(NAN)
        else:
            w.ul.append(ul)
            self.ul_kbps_last = ul
            self.ul_at = now
        dl = msg.dl_kbps
        w.dl.append(NAN if dl is None else dl)
        rtt = msg.rtt_ms
        if rtt is not None:
            w.rtt_times.append(now)
            w.rtt.append(rtt)
            self.last_answer = now
            self.unanswered = 0
            self.unanswered_since = None
        elif msg.probe:
            w.timeout_times.append(now)
            if not self.unanswered:
                self.unanswered_since = now
            self.unanswered += 1
        if kind == NEW:  # a late sample must not roll the radio picture back
            last = self.last
            cell = msg.cell_id
            if last is not None and last.cell_id != cell:
                self.cell_changes += 1
            if cell is not None:
                self.cell = cell
            if self.handovers is not None:
                self.handovers.take(now, msg, self.owner.state)
            self.last = msg
            if msg.rat == "none":
                self.last_rx = now
                self.next_judge_at = 0.0  # lost service: judge now, not in a second
                return URGENT
        self.last_rx = now
        return True

    def restart(self, now: float) -> None:
        """Its vehicle entered or left service (telemetry/vehicle.py ``restart``): the state is
        unknown again, silence counts from ``now`` (the link's age then says so too), and the
        next sample opens no gap in the sequence and no outage or handover. The windows and
        the learned pace stay: figures are still true of the samples they hold."""
        if self.last_rx is not None:
            self.last_rx = now
        self.health = LinkHealth()
        self.seq.rebase()
        self.unanswered = 0
        self.unanswered_since = None
        self.next_judge_at = 0.0
        if self.handovers is not None:
            self.handovers.forget_service()

    def age(self, now: float) -> float | None:
        return None if self.last_rx is None else now - self.last_rx

    def figures(self, now: float, window_s: float) -> WindowFigures:
        w = self.window
        since = now - window_s
        first = w.start(since)
        rtts = w.rtt[bisect_left(w.rtt_times, since):].tolist()
        jitter = mean_abs_step(rtts)
        rtts.sort()
        owds = sorted(w.owd[bisect_left(w.owd_times, since):])
        samples = len(w.times) - first
        timeouts = len(w.timeout_times) - bisect_left(w.timeout_times, since)
        return WindowFigures(
            window_s=window_s, samples=samples,
            rtt_p50_ms=percentile(rtts, 50), rtt_p95_ms=percentile(rtts, 95),
            rtt_p99_ms=percentile(rtts, 99), rtt_jitter_ms=jitter,
            probes=len(rtts) + timeouts, probe_timeouts=timeouts,
            owd_p50_ms=_ms(percentile(owds, 50)), owd_p95_ms=_ms(percentile(owds, 95)),
            loss_ratio=w.loss_ratio(first, self.seq.lost),
            ul_kbps=_mean_present(w.ul[first:].tolist()),
            dl_kbps=_mean_present(w.dl[first:].tolist()),
        )

    def evaluate(self, now: float, thr: LinkThresholds, *, judge_interval_s: float,
                 max_clock_offset_s: float, max_behind_s: float) -> bool:
        """Bring the link's health up to ``now``; True when the state changed.

        Silence is checked at every call; the window figures are recomputed at most every
        ``judge_interval_s`` (they move slowly), and between those a pending change only
        waits out its hold time.
        """
        health = self.health
        if self.last_rx is None:
            return False
        # Before the staleness check: silence is a failure too, so the tracker must see time
        # pass on a stale link as well.
        if self.handovers is not None:
            done = self.handovers.advance(now)
            if done:
                self.final_handovers.extend(done)
        stale_after = self.stale_after_s
        if stale_after is None:  # pace not learned yet: never stale sooner for want of one
            last = self.last
            stale_after = stream_limit(thr.stale_after_s, thr.unlearned_stale_after_s, None,
                                       last.interval_s if last is not None else None)
        if now - self.last_rx > stale_after:
            return health.mark_stale(now) if health.state != STALE else False
        if now < self.next_judge_at:
            return health.settle(now, thr)
        # After the first judgement a link waits only ``phase`` of an interval, so links that
        # appeared together are judged on different ticks from then on.
        self.next_judge_at = now + judge_interval_s * (1.0 if self.judged else self.phase)
        self.judged = True
        w = self.window
        w.trim(now - KEEP_S, keep_at_most=KEEP_SAMPLES)
        self.judgements += 1
        if self.stale_after_s is None or self.judgements % PACE_EVERY == 1:
            # The pace moves slowly and a median costs: re-measured every few judgements,
            # at every one until it is first learned.
            learned = learned_interval(w.times)
            if learned is not None:
                last = self.last
                self.stale_after_s = stream_limit(
                    thr.stale_after_s, thr.unlearned_stale_after_s, learned,
                    last.interval_s if last is not None else None)
        since = now - thr.window_s
        first = w.start(since)
        rtts = sorted(w.rtt[bisect_left(w.rtt_times, since):])
        clocked = bisect_left(w.owd_times, since)
        if clocked < len(w.owd):
            # The smallest one-way delay bounds the clock offset best (queueing only adds):
            # far positive, or negative, means the vehicle's clock is wrong, not the radio slow.
            low = min(w.owd[clocked:])
            self.min_owd_s = low
            self.clock_suspect = low > max_clock_offset_s or low < -max_behind_s
        elif first < len(w.times):  # samples, none with a sender clock: no offset evidence
            self.min_owd_s = None
            self.clock_suspect = False
        p95 = percentile(rtts, 95)
        loss = w.loss_ratio(first, self.seq.lost)
        self.judged_rtt_p95_ms = p95
        self.judged_loss_ratio = loss
        last = self.last
        fig = Figures(
            rtt_p95_ms=p95, loss_ratio=loss,
            rsrp_dbm=last.rsrp_dbm if last else None, sinr_db=last.sinr_db if last else None,
            probe_silence_s=(now - self.unanswered_since
                             if self.unanswered >= UNANSWERED_MIN
                             and self.unanswered_since is not None else None),
            in_service=last is not None and last.rat != "none",
        )
        verdict, reasons = judge(fig, thr, health.state)
        # The modem itself saying "no service" is a fact, not a noisy measurement: no hold.
        return health.update(verdict, reasons, now, thr, immediate="no_service" in reasons)

    def signal(self) -> Signal | None:
        last = self.last
        if last is None:
            return None
        return Signal(rat=last.rat, cell_id=last.cell_id, rsrp_dbm=last.rsrp_dbm,
                      rsrq_db=last.rsrq_db, sinr_db=last.sinr_db)
