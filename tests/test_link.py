"""LinkTrack: windowed figures against numpy, verdicts over time, clock checks, late samples."""

from __future__ import annotations

import random

import numpy as np
import pytest

from telemetry.link import KEEP_SAMPLES, LinkTrack
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE, UNKNOWN, LinkThresholds
from telemetry.wire import LinkSample, Rat

T0 = 1_700_000_000.0
THR = LinkThresholds()
# Judged at every 10 Hz step here; the staggered 1 s judging has tests of its own below.
CLOCK = {"max_clock_offset_s": 2.0, "max_behind_s": 0.25, "judge_interval_s": 0.1}


def sample(seq: int, ts: float, *, rtt: float | None = 20.0, rat: Rat = "nr",
           cell: str | None = "c1", rsrp: float | None = -80.0, sinr: float | None = 20.0,
           ul: float | None = None, dl: float | None = None) -> LinkSample:
    return LinkSample(ts=ts, seq=seq, rat=rat, cell_id=cell, rsrp_dbm=rsrp, sinr_db=sinr,
                      rtt_ms=rtt, ul_kbps=ul, dl_kbps=dl)


class Feed:
    """A 10 Hz sender on one link, with the hub judging after every sample."""

    def __init__(self, track: LinkTrack, start: float = T0) -> None:
        self.track = track
        self.step = 0
        self.start = start
        self.seq = 0
        self.log: list[tuple[float, str, float | None]] = []  # (now, state, judged p95)

    @property
    def now(self) -> float:
        return self.start + self.step * 0.1

    def run(self, seconds: float, *, send: bool = True, **fields: object) -> None:
        for _ in range(round(seconds * 10)):
            self.step += 1
            now = self.now
            if send:
                self.track.add(sample(self.seq, now - 0.02, **fields), now)  # type: ignore[arg-type]
                self.seq += 1
            self.track.evaluate(now, THR, **CLOCK)
            self.log.append((now, self.track.health.state, self.track.judged_rtt_p95_ms))


# -- figures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded() -> tuple[LinkTrack, float, list[dict]]:
    """90 s at 10 Hz: random rtt (every 7th unanswered), random delay, every 10th seq lost."""
    rng = random.Random(42)
    track = LinkTrack("l5g")
    sent: list[dict] = []
    for i in range(900):
        hub = T0 + i * 0.1
        if i % 10 == 5:
            continue  # lost on the way
        rtt = None if i % 7 == 3 else rng.uniform(5.0, 300.0)
        ts = hub - rng.uniform(0.01, 0.2)
        ul, dl = rng.uniform(1e3, 5e4), rng.uniform(1e3, 9e4)
        assert track.add(sample(i, ts, rtt=rtt, ul=ul, dl=dl), hub) is True
        sent.append({"seq": i, "hub": hub, "rtt": rtt, "owd": hub - ts, "ul": ul, "dl": dl})
    now = T0 + 899 * 0.1 + 0.05  # the window edge falls half-way between two samples
    return track, now, sent


@pytest.mark.parametrize("window_s", [10.0, 60.0])
def test_figures_match_numpy(recorded: tuple[LinkTrack, float, list[dict]],
                             window_s: float) -> None:
    """Percentiles, jitter, timeouts, delay and throughput equal numpy on exactly the window."""
    track, now, sent = recorded
    inside = [s for s in sent if s["hub"] >= now - window_s]
    assert len(inside) == pytest.approx(window_s * 9, abs=1)
    fig = track.figures(now, window_s)
    rtts = [s["rtt"] for s in inside if s["rtt"] is not None]
    assert fig.window_s == window_s
    assert fig.samples == len(inside)
    for q, got in ((50, fig.rtt_p50_ms), (95, fig.rtt_p95_ms), (99, fig.rtt_p99_ms)):
        assert got == pytest.approx(float(np.percentile(rtts, q)), abs=1e-9)
    jitter = float(np.mean(np.abs(np.diff(rtts))))
    assert fig.rtt_jitter_ms == pytest.approx(jitter, abs=1e-9)
    assert fig.probe_timeouts == sum(1 for s in inside if s["rtt"] is None)
    assert fig.probe_timeouts > 0
    owds = [s["owd"] * 1000.0 for s in inside]
    assert fig.owd_p50_ms == pytest.approx(float(np.percentile(owds, 50)), abs=1e-9)
    assert fig.owd_p95_ms == pytest.approx(float(np.percentile(owds, 95)), abs=1e-9)
    assert 10.0 <= fig.owd_p50_ms <= 200.0  # type: ignore[operator]
    assert fig.ul_kbps == pytest.approx(float(np.mean([s["ul"] for s in inside])), rel=1e-12)
    assert fig.dl_kbps == pytest.approx(float(np.mean([s["dl"] for s in inside])), rel=1e-12)


@pytest.mark.parametrize("window_s", [10.0, 60.0])
def test_figures_loss_from_seq_gaps(recorded: tuple[LinkTrack, float, list[dict]],
                                    window_s: float) -> None:
    """Dropping every 10th seq shows ~10 % loss, exactly the gaps noticed inside the window."""
    track, now, sent = recorded
    inside = [s for s in sent if s["hub"] >= now - window_s]
    # A gap is counted when the sample after it arrives.
    noticed = sum(1 for s in inside if s["seq"] % 10 == 6)
    fig = track.figures(now, window_s)
    assert fig.loss_ratio == pytest.approx(noticed / (len(inside) + noticed), abs=1e-12)
    assert fig.loss_ratio == pytest.approx(0.1, abs=0.01)


def test_figures_empty_window() -> None:
    """A window with no samples has None figures and zero loss, not errors."""
    track = LinkTrack("a")
    fig = track.figures(T0, 10.0)
    assert (fig.samples, fig.rtt_p50_ms, fig.rtt_jitter_ms, fig.owd_p95_ms) == (0, None, None, None)
    assert fig.loss_ratio == 0.0 and fig.probe_timeouts == 0
    track.add(sample(0, T0 - 0.02), T0)
    later = track.figures(T0 + 30.0, 10.0)
    assert later.samples == 0 and later.rtt_p95_ms is None and later.loss_ratio == 0.0


def test_figures_full_ring_keeps_newest() -> None:
    """Past KEEP_SAMPLES the window holds only the newest of them, loss still exact."""
    track = LinkTrack("a")
    n = KEEP_SAMPLES + 300
    for i in range(n):  # 25 Hz for 60 s: more than the ring holds
        hub = T0 + i * 0.04
        if i % 20 != 10:
            track.add(sample(i, hub - 0.01, rtt=float(i)), hub)
    now = T0 + (n - 1) * 0.04
    track.evaluate(now, THR, **CLOCK)  # judging is when the window is trimmed
    fig = track.figures(now, 60.0)
    assert fig.samples == KEEP_SAMPLES
    kept = [i for i in range(n) if i % 20 != 10][-KEEP_SAMPLES:]
    assert fig.rtt_p50_ms == pytest.approx(float(np.percentile(kept, 50)), abs=1e-9)
    assert fig.loss_ratio == pytest.approx(0.05, abs=0.005)


# -- evaluate ------------------------------------------------------------------------------------

def test_good_link_is_ok_from_first_judgement() -> None:
    """A healthy link is ok at its first evaluation and stays ok."""
    track = LinkTrack("a")
    assert track.evaluate(T0, THR, **CLOCK) is False  # nothing yet: stays unknown
    assert track.health.state == UNKNOWN
    feed = Feed(track)
    feed.run(5.0)
    assert {state for _, state, _ in feed.log} == {OK}
    assert track.health.changes == 1
    assert track.judged_loss_ratio == 0.0
    assert track.clock_suspect is False


def test_degraded_after_rtt_p95_above_150_for_hold() -> None:
    """High rtt degrades the link only once p95 has been above 150 ms for degrade_after_s."""
    track = LinkTrack("a")
    feed = Feed(track)
    feed.run(12.0, rtt=20.0)
    assert track.health.state == OK
    mark = len(feed.log)
    feed.run(3.0, rtt=300.0)
    after = feed.log[mark:]
    breach = next(now for now, _, p95 in after if p95 is not None and p95 > 150.0)
    for now, state, _ in after:
        if now - breach < 0.95:
            assert state == OK, now - breach
        elif now - breach > 1.05:
            assert state == DEGRADED, now - breach
    assert track.health.reasons == ["rtt_p95"]
    assert track.health.since is not None and track.health.since - breach == pytest.approx(1.0,
                                                                                           abs=0.11)


def test_recovers_after_recover_hold() -> None:
    """Back to good rtt, the link returns to ok recover_after_s after p95 clears 120 ms."""
    track = LinkTrack("a")
    feed = Feed(track)
    feed.run(12.0, rtt=20.0)
    feed.run(12.0, rtt=300.0)
    assert track.health.state == DEGRADED
    mark = len(feed.log)
    feed.run(25.0, rtt=20.0)
    after = feed.log[mark:]
    cleared = next(now for now, _, p95 in after if p95 is not None and p95 <= 120.0)
    assert cleared - after[0][0] > 5.0  # the bad samples have to age out of the 10 s window
    for now, state, _ in after:
        if now - cleared < 4.95:
            assert state == DEGRADED, now - cleared
        elif now - cleared > 5.05:
            assert state == OK, now - cleared


def test_down_at_once_when_the_modem_reports_no_service() -> None:
    """rat 'none' is the modem's own word, not a noisy figure: down at once, no hold."""
    track = LinkTrack("a")
    feed = Feed(track)
    feed.run(3.0)
    mark = len(feed.log)
    feed.run(1.0, rat="none", cell=None, rsrp=None, sinr=None)
    after = feed.log[mark:]
    assert all(s == DOWN for _, s, _ in after)
    assert track.health.reasons == ["no_service"]


def test_no_service_sample_is_urgent() -> None:
    """add() flags a no-service sample URGENT so the hub judges it after the batch."""
    from telemetry.sequence import URGENT

    track = LinkTrack("a")
    assert track.add(sample(0, T0), T0) is True
    assert track.add(sample(1, T0 + 0.1, rat="none", cell=None), T0 + 0.1) == URGENT


def test_down_when_probe_silent() -> None:
    """No answered probe for more than probe_silence_s (samples still arriving) is down."""
    track = LinkTrack("a")
    feed = Feed(track)
    feed.run(3.0)
    last_answer = feed.now
    feed.run(4.0, rtt=None)
    for now, state, _ in feed.log:
        silent = now - last_answer
        if silent < 2.25:
            assert state == OK, silent
        elif silent > 2.45:
            assert state == DOWN, silent
    assert track.health.reasons == ["no_probe_answer"]
    assert track.figures(feed.now, 10.0).probe_timeouts == 40


def test_stale_when_silent_then_back() -> None:
    """No sample for more than stale_after_s is stale at once; data again is judged at once."""
    track = LinkTrack("a")
    feed = Feed(track)
    feed.run(3.0)
    last_rx = track.last_rx
    assert last_rx == feed.now
    feed.run(0.9, send=False)
    assert track.health.state == OK
    feed.run(0.2, send=False)
    assert track.health.state == STALE
    assert track.health.reasons == ["no_sample"]
    assert track.age(feed.now) == pytest.approx(1.1)
    assert track.evaluate(feed.now + 5.0, THR, **CLOCK) is False  # already stale
    feed.run(0.1)
    assert track.health.state == OK


def test_clock_suspect() -> None:
    """A sender clock 5 s behind or 1 s ahead flags the link; a normal delay does not."""
    for offset, suspect in ((5.0, True), (-1.0, True), (0.05, False), (1.9, False)):
        track = LinkTrack("a")
        for i in range(10):
            now = T0 + i * 0.1
            track.add(sample(i, now - offset), now)
        track.evaluate(T0 + 0.95, THR, **CLOCK)
        assert track.clock_suspect is suspect, offset
        fig = track.figures(T0 + 0.95, 10.0)
        assert fig.owd_p50_ms == pytest.approx(offset * 1000.0, abs=1e-3)


def test_late_sample_does_not_roll_back_signal_or_count_loss() -> None:
    """A reordered sample is counted but keeps the newest cell and is not loss."""
    track = LinkTrack("a")
    assert track.add(sample(0, T0, cell="A"), T0 + 0.02)
    assert track.add(sample(2, T0 + 0.2, cell="B"), T0 + 0.22)
    assert track.seq.lost == 1
    assert track.add(sample(1, T0 + 0.1, cell="C", rsrp=-100.0), T0 + 0.25) is True
    sig = track.signal()
    assert sig is not None
    assert (sig.cell_id, sig.rsrp_dbm) == ("B", -80.0)
    assert track.cell_changes == 1
    assert (track.seq.lost, track.seq.reordered, track.seq.received) == (0, 1, 3)
    fig = track.figures(T0 + 0.3, 10.0)
    assert (fig.samples, fig.loss_ratio) == (3, 0.0)
    track.evaluate(T0 + 0.3, THR, **CLOCK)
    assert track.judged_loss_ratio == 0.0


def test_duplicates_ignored() -> None:
    """A redelivered sample returns False and changes no figure, time or signal."""
    track = LinkTrack("a")
    assert track.add(sample(0, T0, rtt=10.0), T0 + 0.02) is True
    assert track.add(sample(1, T0 + 0.1, rtt=30.0), T0 + 0.12) is True
    assert track.add(sample(1, T0 + 0.1, rtt=30.0, cell="X"), T0 + 0.5) is False
    assert track.add(sample(0, T0, rtt=10.0), T0 + 0.6) is False
    assert track.last_rx == T0 + 0.12
    assert track.seq.duplicates == 2
    assert track.signal().cell_id == "c1"  # type: ignore[union-attr]
    fig = track.figures(T0 + 0.7, 10.0)
    assert fig.samples == 2
    assert fig.rtt_p50_ms == pytest.approx(20.0)
    assert fig.rtt_jitter_ms == pytest.approx(20.0)


def test_window_figures_are_rejudged_once_per_interval() -> None:
    """Between judgements the p95 stays as judged; staleness and holds still act every tick."""
    track = LinkTrack("a", phase=0.99)  # second judgement ~1 s after the first
    thr = LinkThresholds()
    clock = {"max_clock_offset_s": 2.0, "max_behind_s": 0.25, "judge_interval_s": 1.0}
    for i in range(20):
        track.add(sample(i, T0 + i * 0.1, rtt=20.0), T0 + i * 0.1)
    track.evaluate(T0 + 2.0, thr, **clock)
    assert track.judged_rtt_p95_ms == 20.0
    for i in range(20, 30):  # very slow probes arrive
        track.add(sample(i, T0 + i * 0.1, rtt=2_000.0), T0 + i * 0.1)
    track.evaluate(T0 + 2.5, thr, **clock)
    assert track.judged_rtt_p95_ms == 20.0  # not re-judged within the interval
    track.evaluate(T0 + 3.0, thr, **clock)
    assert track.judged_rtt_p95_ms == 2_000.0
    assert track.health.state == "ok"  # down is pending, its 0.3 s hold not yet over
    assert track.evaluate(T0 + 3.3, thr, **clock) is True  # the hold ends between judgements
    assert track.health.state == "down"
    assert track.evaluate(T0 + 3.0 + thr.stale_after_s + 0.01, thr, **clock) is True
    assert track.health.state == "stale"


def test_loss_of_service_is_judged_at_the_next_tick() -> None:
    """A sample saying rat 'none' is judged at once, not at the end of the interval."""
    track = LinkTrack("a")
    thr = LinkThresholds(down_after_s=0.0)
    clock = {"max_clock_offset_s": 2.0, "max_behind_s": 0.25, "judge_interval_s": 1.0}
    track.add(sample(0, T0, rtt=20.0), T0)
    track.evaluate(T0, thr, **clock)
    assert track.health.state == "ok"
    track.add(sample(1, T0 + 0.1, rtt=None, rat="none", cell=None), T0 + 0.1)
    assert track.evaluate(T0 + 0.25, thr, **clock) is True
    assert (track.health.state, track.health.reasons) == ("down", ["no_service"])


def test_phases_spread_judging_over_ticks() -> None:
    """Links created together are judged on different ticks after their first judgement."""
    from telemetry.fleet import Fleet
    from telemetry.topics import Route

    fleet = Fleet()
    for v in range(40):
        fleet.apply(Route("link", "s", f"v{v}", "l5g"), sample(0, T0, rtt=20.0), T0)
    fleet.evaluate(T0, judge_interval_s=1.0)  # every link's first judgement
    judged_per_tick = []
    for k in range(1, 5):
        before = {id(link): link.next_judge_at for v in fleet.vehicles.values()
                  for link in v.links.values()}
        fleet.evaluate(T0 + 0.25 * k, judge_interval_s=1.0)
        judged_per_tick.append(sum(
            1 for v in fleet.vehicles.values() for link in v.links.values()
            if link.next_judge_at != before[id(link)]))
    assert sum(judged_per_tick) == 40
    assert max(judged_per_tick) <= 14  # about a quarter each, never all at once


# -- measured, not measured --------------------------------------------------------------------

def _run_1hz(track: LinkTrack, seconds: int, *, ping_every: int | None,
             answered: bool = True, sender_clock: bool = True, ul: float | None = None,
             start: int = 0) -> None:
    """A 1 Hz link (a drive-test logger) that pings every ``ping_every`` s (None: never)."""
    for s in range(start, start + seconds):
        now = T0 + s
        pinged = ping_every is not None and s % ping_every == 0
        track.add(LinkSample(ts=now - 0.05, seq=s, rat="nr", cell_id="c1", rsrp_dbm=-85.0,
                             sinr_db=15.0, rtt_ms=40.0 if pinged and answered else None,
                             probe=pinged, sender_clock=sender_clock, ul_kbps=ul), now)
        track.evaluate(now, THR, max_clock_offset_s=2.0, max_behind_s=0.25,
                       judge_interval_s=1.0)


@pytest.mark.parametrize("ping_every", [None, 1, 10])
def test_probes_every_10_s_1_s_or_never_judge_only_what_was_measured(
        ping_every: int | None) -> None:
    """Samples without a probe are neither timeouts nor "no probe answer": the link stays ok
    whatever the probing pace, and its RTT is measured only when a probe was sent."""
    track = LinkTrack("cell")
    _run_1hz(track, 60, ping_every=ping_every)
    assert track.health.state == OK
    fig = track.figures(T0 + 59, 60.0)
    assert fig.probe_timeouts == 0
    probes = 0 if ping_every is None else len(range(0, 60, ping_every))
    assert fig.probes == probes
    assert (fig.rtt_p50_ms is None) == (ping_every is None)


@pytest.mark.parametrize("ping_every", [1, 10])
def test_unanswered_probes_make_a_link_down_at_any_pace(ping_every: int) -> None:
    """Two probes in a row without an answer, the first over probe_silence_s ago: down."""
    track = LinkTrack("cell")
    _run_1hz(track, 30, ping_every=ping_every)
    assert track.health.state == OK
    _run_1hz(track, 30, ping_every=ping_every, answered=False, start=30)
    assert track.health.state == DOWN and "no_probe_answer" in track.health.reasons
    assert track.figures(T0 + 59, 60.0).probe_timeouts == len(range(30, 60, ping_every))


def test_one_lost_probe_of_a_sparse_prober_is_not_an_outage() -> None:
    track = LinkTrack("cell")
    _run_1hz(track, 30, ping_every=10)  # answers at 0, 10, 20
    track.add(LinkSample(ts=T0 + 30, seq=30, rat="nr", cell_id="c1", rsrp_dbm=-85.0,
                         sinr_db=15.0, probe=True), T0 + 30)  # the ping at 30 is lost
    _run_1hz(track, 9, ping_every=None, start=31)
    assert track.health.state == OK


def test_without_a_sender_clock_there_is_no_one_way_delay() -> None:
    """``sender_clock`` false (an import's one clock): no one-way delay and no clock verdict,
    even where ts is far from the receive time."""
    track = LinkTrack("cell")
    for s in range(20):
        now = T0 + s
        track.add(LinkSample(ts=now - 30.0, seq=s, rat="nr", cell_id="c1", rtt_ms=30.0,
                             sender_clock=False), now)
        track.evaluate(now, THR, **CLOCK)
    fig = track.figures(T0 + 19, 60.0)
    assert fig.owd_p50_ms is None and fig.owd_p95_ms is None
    assert track.min_owd_s is None and not track.clock_suspect
    with_clock = LinkTrack("cell")
    for s in range(20):
        now = T0 + s
        with_clock.add(LinkSample(ts=now - 30.0, seq=s, rat="nr", cell_id="c1", rtt_ms=30.0),
                       now)
        with_clock.evaluate(now, THR, **CLOCK)
    assert with_clock.clock_suspect  # the same figures with a clock say it is 30 s off


def test_an_rtt_is_an_answered_probe_whatever_probe_says() -> None:
    track = LinkTrack("cell")
    track.add(LinkSample(ts=T0, seq=0, rat="nr", rtt_ms=20.0, probe=False), T0)
    fig = track.figures(T0, 10.0)
    assert (fig.probes, fig.probe_timeouts, fig.rtt_p50_ms) == (1, 0, 20.0)


def test_a_1_hz_link_is_stale_at_its_own_pace() -> None:
    """A logger writing once a second that skips a row is not stale for it (1 s would say
    so); silent for three of its intervals, it is. At 10 Hz the configured 1 s still holds."""
    track = LinkTrack("cell")
    _run_1hz(track, 30, ping_every=None)
    track.evaluate(T0 + 31.0, THR, **CLOCK)  # row 30 skipped: 2 s since the last
    assert track.health.state == OK
    assert track.evaluate(T0 + 32.5, THR, **CLOCK) and track.health.state == STALE  # 3.5 s
    fast = LinkTrack("l5g")
    feed = Feed(fast)
    feed.run(5.0)
    feed.run(1.2, send=False)
    assert fast.health.state == STALE and fast.stale_after_s == THR.stale_after_s
