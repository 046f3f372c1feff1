"""Everything the hub knows about one (vehicle, link): rolling figures and a health verdict.

``add`` runs once per sample on the ingest hot path, so it only appends to a bounded ring and
updates counters; the percentiles are computed when someone asks (``figures``) or when the hub's
evaluation tick judges the link (``evaluate``).
"""

from __future__ import annotations

from collections import deque
from typing import Final

import msgspec

from telemetry.linkstate import STALE, Figures, LinkHealth, LinkThresholds, judge
from telemetry.sequence import DUPLICATE, NEW, SeqTracker
from telemetry.window import JudgingWindow, mean, mean_abs_step, percentile
from telemetry.wire import LinkSample

#: Windows reported by the API, seconds.
WINDOWS: Final = (10.0, 60.0)
#: Ring capacity: the longest window at up to 20 Hz. Beyond that rate the window holds only the
#: newest samples, which is the estimator's stated error bound.
RING: Final = 1_200


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
    probe_timeouts: int
    owd_p50_ms: float | None
    owd_p95_ms: float | None
    loss_ratio: float
    ul_kbps: float | None
    dl_kbps: float | None


class LinkTrack:
    """Per-link state. Never called concurrently: the hub's one ingest task owns it."""

    __slots__ = ("name", "seq", "ring", "judging", "last", "last_rx", "last_answer",
                 "cell_changes", "health", "clock_suspect", "judged_rtt_p95_ms",
                 "judged_loss_ratio")

    def __init__(self, name: str) -> None:
        self.name = name
        self.seq = SeqTracker()
        # (hub receive time, rtt_ms or None, one-way delay s, ul, dl, cum received, cum lost)
        self.ring: deque[tuple[float, float | None, float, float | None, float | None, int, int]] \
            = deque(maxlen=RING)
        self.judging = JudgingWindow()
        self.judged_rtt_p95_ms: float | None = None
        self.judged_loss_ratio = 0.0
        self.last: LinkSample | None = None
        self.last_rx: float | None = None
        self.last_answer: float | None = None
        self.cell_changes = 0
        self.health = LinkHealth()
        self.clock_suspect = False

    def add(self, msg: LinkSample, now: float) -> bool:
        """Take one sample received at hub time ``now``; False if it was a duplicate."""
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
        rtt = msg.rtt_ms
        entry = (now, rtt, now - msg.ts, msg.ul_kbps, msg.dl_kbps, seq.received, seq.lost)
        self.ring.append(entry)
        judging = self.judging
        judging.times.append(now)
        judging.owd.append(entry[2])
        judging.received.append(seq.received)
        judging.lost.append(seq.lost)
        if rtt is not None:
            judging.rtt_times.append(now)
            judging.rtt.append(rtt)
            self.last_answer = now
        if kind == NEW:  # a late sample must not roll the radio picture back
            last = self.last
            if last is not None and last.cell_id != msg.cell_id:
                self.cell_changes += 1
            self.last = msg
        self.last_rx = now
        return True

    def age(self, now: float) -> float | None:
        return None if self.last_rx is None else now - self.last_rx

    def _window(self, now: float, window_s: float) -> tuple[list[float], int, list[float],
                                                         list[float], list[float], float]:
        start = now - window_s
        rtts: list[float] = []
        owds: list[float] = []
        uls: list[float] = []
        dls: list[float] = []
        timeouts = 0
        first: tuple[int, int] | None = None
        for entry in reversed(self.ring):
            if entry[0] < start:
                first = (entry[5], entry[6])
                break
            if entry[1] is None:
                timeouts += 1
            else:
                rtts.append(entry[1])
            owds.append(entry[2])
            if entry[3] is not None:
                uls.append(entry[3])
            if entry[4] is not None:
                dls.append(entry[4])
        seq = self.seq
        base_rx, base_lost = first if first is not None else (0, 0)
        if first is None and self.ring and len(self.ring) == self.ring.maxlen:
            oldest = self.ring[0]
            base_rx, base_lost = oldest[5] - 1, oldest[6]
        d_lost = seq.lost - base_lost
        d_expected = (seq.received - base_rx) + d_lost
        loss = max(0.0, d_lost / d_expected) if d_expected > 0 else 0.0
        rtts.reverse()  # back to arrival order, which jitter needs
        return rtts, timeouts, owds, uls, dls, loss

    def figures(self, now: float, window_s: float) -> WindowFigures:
        rtts, timeouts, owds, uls, dls, loss = self._window(now, window_s)
        jitter = mean_abs_step(rtts)
        rtts.sort()
        owds.sort()
        owd50 = percentile(owds, 50)
        owd95 = percentile(owds, 95)
        return WindowFigures(
            window_s=window_s, samples=len(owds),
            rtt_p50_ms=percentile(rtts, 50), rtt_p95_ms=percentile(rtts, 95),
            rtt_p99_ms=percentile(rtts, 99), rtt_jitter_ms=jitter, probe_timeouts=timeouts,
            owd_p50_ms=None if owd50 is None else owd50 * 1000.0,
            owd_p95_ms=None if owd95 is None else owd95 * 1000.0,
            loss_ratio=loss, ul_kbps=mean(uls), dl_kbps=mean(dls),
        )

    def evaluate(self, now: float, thr: LinkThresholds, *, max_clock_offset_s: float,
                 max_behind_s: float) -> bool:
        """Re-judge the link's health at ``now``; True when the state changed."""
        health = self.health
        if self.last_rx is None:
            return False
        if now - self.last_rx > thr.stale_after_s:
            return health.mark_stale(now) if health.state != STALE else False
        judging = self.judging
        judging.trim(now - thr.window_s)
        rtts = sorted(judging.rtt)
        if judging.owd:
            # The smallest one-way delay bounds the clock offset best (queueing only adds):
            # far positive, or negative, means the vehicle's clock is wrong, not the radio slow.
            low = min(judging.owd)
            self.clock_suspect = low > max_clock_offset_s or low < -max_behind_s
        seq = self.seq
        loss = judging.loss_ratio(seq.received, seq.lost)
        p95 = percentile(rtts, 95)
        self.judged_rtt_p95_ms = p95
        self.judged_loss_ratio = loss
        last = self.last
        fig = Figures(
            rtt_p95_ms=p95, loss_ratio=loss,
            rsrp_dbm=last.rsrp_dbm if last else None, sinr_db=last.sinr_db if last else None,
            probe_silence_s=None if self.last_answer is None else now - self.last_answer,
            in_service=last is not None and last.rat != "none",
        )
        verdict, reasons = judge(fig, thr, health.state)
        return health.update(verdict, reasons, now, thr)

    def signal(self) -> Signal | None:
        last = self.last
        if last is None:
            return None
        return Signal(rat=last.rat, cell_id=last.cell_id, rsrp_dbm=last.rsrp_dbm,
                      rsrq_db=last.rsrq_db, sinr_db=last.sinr_db)
