"""Cadence: silence judged at each stream's own pace, learned, declared or not yet known.

Real senders report at 0.3-10 Hz with skipped rows; none of that may become a stale link, a
stale vehicle or a takeover, while real silence still does (docs/link-health.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec
import pytest

from scenarios.importers import declare_pace
from scenarios.replay import Outcome, run
from telemetry.link import LinkTrack
from telemetry.linkstate import OK, STALE, LinkThresholds
from telemetry.pace import LEARNED_AFTER, learned_interval, stream_limit
from telemetry.topics import Route, link_topic, state_topic
from telemetry.vehicle import VehicleTrack
from telemetry.wire import LinkSample, VehicleState

T0 = 1_700_000_000.0
THR = LinkThresholds()
JUDGE = {"max_clock_offset_s": 2.0, "max_behind_s": 0.25, "judge_interval_s": 1.0}


def link_sample(seq: int, at: float, *, interval_s: float | None = None) -> LinkSample:
    return LinkSample(ts=at, seq=seq, rat="lte", cell_id="c1", rsrp_dbm=-90.0, rtt_ms=None,
                      probe=False, sender_clock=False, interval_s=interval_s)


def state(seq: int, at: float, *, interval_s: float | None = None) -> VehicleState:
    return VehicleState(ts=at, seq=seq, lat=36.0, lon=136.0, speed_mps=8.0, heading_deg=90.0,
                        mode="autonomous", interval_s=interval_s)


def states_over(track: LinkTrack, times: list[float], until: float,
                step: float = 0.25) -> list[tuple[float, str]]:
    """Feed samples at ``times`` and judge every ``step`` s up to ``until`` (a hub's ticks)."""
    seen: list[tuple[float, str]] = []
    pending = sorted(times)
    seq = 0
    now = pending[0]
    while now <= until + 1e-9:
        while pending and pending[0] <= now + 1e-9:
            track.add(link_sample(seq, pending[0]), pending.pop(0))
            seq += 1
        track.evaluate(now, THR, **JUDGE)
        seen.append((round(now - T0, 2), track.health.state))
        now += step
    return seen


# -- the rule ---------------------------------------------------------------------------------

def test_stream_limit_learned_declared_unlearned() -> None:
    """Unknown pace: the unlearned limit, or the declared pace; learned: the slower of learned
    and declared, never below the floor."""
    assert stream_limit(1.0, 10.0, None, None) == 10.0
    assert stream_limit(1.0, 10.0, None, 20.0) == 60.0  # a sender slower than expected
    assert stream_limit(1.0, 10.0, 0.1, None) == 1.0  # 10 Hz: the configured floor
    assert stream_limit(1.0, 10.0, 1.0, None) == 3.0
    assert stream_limit(1.0, 10.0, 0.5, 1.0) == 3.0  # doubled rows look fast; it said 1 s
    assert stream_limit(1.0, 10.0, 3.0, 1.0) == 9.0  # it says 1 s, it writes every 3 s


def test_a_pace_is_learned_only_from_enough_intervals() -> None:
    times = [T0 + i for i in range(LEARNED_AFTER)]  # LEARNED_AFTER - 1 intervals
    assert learned_interval(times) is None
    assert learned_interval([*times, T0 + LEARNED_AFTER]) == 1.0


# -- links ------------------------------------------------------------------------------------

def test_a_1_hz_logger_with_a_cold_start_and_skipped_rows_is_never_stale() -> None:
    """The first sample, then a skipped second, then rows with skips now and then: the link is
    never stale, neither before its pace is known nor after (a skip is one missing row)."""
    times = [T0, T0 + 2.0, T0 + 3.0, T0 + 5.0, *[T0 + s for s in range(6, 40) if s % 7]]
    seen = states_over(LinkTrack("cell"), times, until=T0 + 39)
    assert {state for _, state in seen} == {OK}, [s for s in seen if s[1] != OK][:3]


def test_a_1_hz_logger_silent_for_three_rows_is_stale() -> None:
    times = [T0 + s for s in range(20)]
    seen = dict(states_over(LinkTrack("cell"), times, until=T0 + 25))
    assert seen[22.0] == OK  # 3 s since the last row: three intervals, not more
    assert seen[22.25] == STALE


def test_a_link_heard_once_is_stale_only_after_the_unlearned_limit() -> None:
    track = LinkTrack("cell")
    seen = dict(states_over(track, [T0], until=T0 + 12))
    assert seen[THR.unlearned_stale_after_s] == OK
    assert seen[THR.unlearned_stale_after_s + 0.25] == STALE


def test_a_declared_slow_pace_holds_before_and_after_learning() -> None:
    """A sender declaring 20 s between samples is not stale at 15 s after its first, nor after
    a skipped sample once learned; three declared intervals of silence make it stale."""
    track = LinkTrack("modem")
    for k, at in enumerate([T0, T0 + 20, T0 + 60, T0 + 80, T0 + 100, T0 + 120, T0 + 140]):
        track.add(link_sample(k, at, interval_s=20.0), at)
        for dt in (0.0, 15.0, 19.0):  # judged in between, never stale
            track.evaluate(at + dt, THR, **JUDGE)
            assert track.health.state == OK, (k, dt)
    assert track.evaluate(T0 + 140 + 60.5, THR, **JUDGE)
    assert track.health.state == STALE


def test_at_10_hz_the_configured_second_still_decides() -> None:
    times = [T0 + i / 10 for i in range(50)]
    seen = dict(states_over(LinkTrack("l5g"), times, until=T0 + 6.5))
    assert seen[5.75] == OK
    assert seen[6.0] == STALE  # 1.1 s after the last sample


# -- the vehicle's state stream -----------------------------------------------------------------

def vehicle_telemetry(times: list[float], until: float) -> list[tuple[float, str]]:
    vehicle = VehicleTrack("v1", "s1")
    pending = sorted(times)
    seen = []
    now = pending[0]
    seq = 0
    while now <= until + 1e-9:
        while pending and pending[0] <= now + 1e-9:
            vehicle.add_state(state(seq, pending[0]), pending.pop(0))
            seq += 1
        vehicle.refresh(now, THR)
        seen.append((round(now - T0, 2), vehicle.telemetry))
        now += 0.25
    return seen


def test_a_3_s_state_cadence_is_fresh_between_reports_and_stale_after_three() -> None:
    times = [T0 + 3 * k for k in range(12) if k != 5]  # one report skipped
    seen = dict(vehicle_telemetry(times, until=T0 + 33 + 10))
    assert all(v == "fresh" for t, v in seen.items() if t <= 33 + 9)
    assert seen[33 + 9.25] == "stale"


# -- the whole pipeline: no takeover for shape, a takeover for silence ------------------------

def deliveries(vehicle: str, links: Iterable[str], times: Iterable[float], *,
               seq0: int = 0) -> Iterator[tuple[float, str, bytes, None]]:
    """A vehicle's state and link rows at ``times`` (a logger: one of each per row)."""
    encode = msgspec.json.encode
    for n, at in enumerate(times, start=seq0):
        yield at, state_topic("s1", vehicle), encode(state(n, at)), None
        for link in links:
            yield at, link_topic("s1", vehicle, link), encode(link_sample(n, at)), None


def replay(*streams: Iterable[tuple[float, str, bytes, None]]) -> Outcome:
    merged = sorted((d for s in streams for d in s), key=lambda d: d[0])
    return run(merged)


def test_a_1_hz_phone_drive_with_a_cold_start_and_skips_raises_nothing() -> None:
    """One link, 1 Hz, its second row missing and one row in ten skipped after: the replay
    raises nothing and the vehicle is available throughout."""
    times = [T0, *[T0 + s for s in range(2, 300) if s % 10 != 5]]
    outcome = replay(deliveries("phone", ["cell"], times))
    assert [a.rule for a in outcome.alerts] == []
    assert outcome.vehicle_time["phone"].get("all_links_down", 0.0) == 0.0


def test_a_3_s_modem_logger_with_three_links_raises_nothing_until_it_falls_silent() -> None:
    """Every 3 s, three links, a row skipped now and then: nothing raised. Then the vehicle
    falls silent while the clock runs on (another vehicle still reports): a takeover."""
    times = [T0 + 3 * k for k in range(60) if k % 9 != 4]
    other = [T0 + k * 0.5 for k in range(2 * 3 * 60 + 40)]  # keeps the clock (and feed) going
    outcome = replay(deliveries("car", ["m1", "m2", "m3"], times),
                     deliveries("witness", ["l5g"], other))
    silent_from = times[-1]
    rules = [(a.rule, a.vehicle) for a in outcome.alerts]
    assert ("both_links_down", "car") in rules
    raised = next(a for a in outcome.alerts if a.rule == "both_links_down")
    # three of its 3 s intervals of silence, judged at the next tick
    assert 9.0 < raised.raised_at - silent_from <= 9.0 + 0.5
    assert all(a.raised_at > silent_from for a in outcome.alerts)


@pytest.mark.parametrize("doubled", [False, True])
def test_an_import_declares_each_streams_pace(doubled: bool) -> None:
    """A 1 Hz file, some seconds doubled (spread within the second): every state and link
    message says 1 s, what the file as a whole shows."""
    times = []
    for s in range(60):
        times.append(T0 + s)
        if doubled and s % 3 == 0:
            times.append(T0 + s + 0.5)
    entries = []
    for n, at in enumerate(times):
        entries.append((at, Route("state", "s1", "v"), state(n, at)))
        entries.append((at, Route("link", "s1", "v", "cell"), link_sample(n, at)))
    declared = declare_pace(entries)
    assert {msg.interval_s for _, _, msg in declared} == {1.0}
