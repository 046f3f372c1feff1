"""Link verdicts: judge() enter/clear bands, LinkHealth hysteresis, threshold validation."""

from __future__ import annotations

import pytest

from telemetry.linkstate import (
    DEGRADED,
    DOWN,
    OK,
    STALE,
    UNKNOWN,
    Figures,
    Limits,
    LinkHealth,
    LinkThresholds,
    judge,
    worst,
)

T0 = 1_700_000_000.0
DEFAULT = LinkThresholds()
CUSTOM = LinkThresholds(
    degrade_after_s=2.0, down_after_s=0.5, recover_after_s=3.0, probe_silence_s=4.0,
    degraded=Limits(rtt_p95_ms=50.0, loss_ratio=0.05),
    degraded_clear=Limits(rtt_p95_ms=40.0, loss_ratio=0.03),
    down=Limits(rtt_p95_ms=400.0, sinr_db=-5.0),
    down_clear=Limits(rtt_p95_ms=300.0, sinr_db=-2.0),
)


def fig(*, rtt: float | None = 20.0, loss: float = 0.0, rsrp: float | None = -80.0,
        sinr: float | None = 20.0, silence: float | None = 0.1, service: bool = True) -> Figures:
    return Figures(rtt_p95_ms=rtt, loss_ratio=loss, rsrp_dbm=rsrp, sinr_db=sinr,
                   probe_silence_s=silence, in_service=service)


# -- judge ----------------------------------------------------------------------------------------

def test_judge_good_link_is_ok() -> None:
    """Figures well inside every limit are ok with no reasons, whatever the current state."""
    for current in (UNKNOWN, OK, DEGRADED, DOWN, STALE):
        assert judge(fig(), DEFAULT, current) == (OK, [])


@pytest.mark.parametrize(("figures", "reason"), [
    (fig(rtt=130.0), "rtt_p95"),
    (fig(loss=0.015), "loss"),
    (fig(rsrp=-108.0), "rsrp"),
    (fig(sinr=1.5), "sinr"),
])
def test_judge_between_clear_and_enter_keeps_but_does_not_enter(figures: Figures,
                                                                 reason: str) -> None:
    """Between clear and enter values: ok stays ok, degraded stays degraded (default limits)."""
    assert judge(figures, DEFAULT, OK) == (OK, [])
    assert judge(figures, DEFAULT, DEGRADED) == (DEGRADED, [reason])
    # Leaving down lands on degraded while the degraded clear value is still breached.
    assert judge(figures, DEFAULT, DOWN) == (DEGRADED, [reason])


@pytest.mark.parametrize(("figures", "reason"), [
    (fig(rtt=150.5), "rtt_p95"),
    (fig(loss=0.021), "loss"),
    (fig(rsrp=-110.5), "rsrp"),
    (fig(sinr=-0.5), "sinr"),
])
def test_judge_beyond_enter_degrades_from_ok(figures: Figures, reason: str) -> None:
    """Past a degraded enter value the verdict is degraded even from ok."""
    assert judge(figures, DEFAULT, OK) == (DEGRADED, [reason])


def test_judge_enter_value_itself_does_not_breach() -> None:
    """Limits are strict: exactly the enter value is not a breach."""
    assert judge(fig(rtt=150.0, loss=0.02, rsrp=-110.0, sinr=0.0), DEFAULT, OK) == (OK, [])
    assert judge(fig(rtt=120.0, loss=0.01, rsrp=-106.0, sinr=3.0), DEFAULT, DEGRADED) == (OK, [])


def test_judge_down_band() -> None:
    """Down enters past the down limits and holds until the stricter down_clear values."""
    assert judge(fig(rtt=800.0), DEFAULT, OK) == (DEGRADED, ["rtt_p95"])
    assert judge(fig(rtt=800.0), DEFAULT, DOWN) == (DOWN, ["rtt_p95"])
    assert judge(fig(rtt=1_001.0), DEFAULT, OK) == (DOWN, ["rtt_p95"])
    assert judge(fig(loss=0.2), DEFAULT, OK) == (DEGRADED, ["loss"])
    assert judge(fig(loss=0.2), DEFAULT, DOWN) == (DOWN, ["loss"])
    assert judge(fig(rsrp=-122.0), DEFAULT, DEGRADED) == (DEGRADED, ["rsrp"])
    assert judge(fig(rsrp=-122.0), DEFAULT, DOWN) == (DOWN, ["rsrp"])
    assert judge(fig(rsrp=-126.0, loss=0.5), DEFAULT, OK) == (DOWN, ["loss", "rsrp"])


def test_judge_no_service_and_no_probe() -> None:
    """No serving cell is down at once; probes unanswered for too long are down too; without
    unanswered probes (none sent) there is no evidence, so no verdict rests on probes."""
    assert judge(fig(service=False), DEFAULT, OK) == (DOWN, ["no_service"])
    assert judge(fig(silence=2.5), DEFAULT, OK) == (DOWN, ["no_probe_answer"])
    assert judge(fig(silence=None, rtt=None), DEFAULT, UNKNOWN) == (OK, [])
    assert judge(fig(silence=2.0), DEFAULT, OK) == (OK, [])


def test_judge_missing_figures_do_not_breach() -> None:
    """Unknown rtt/rsrp/sinr are not breaches (a criterion needs a value)."""
    assert judge(fig(rtt=None, rsrp=None, sinr=None), DEFAULT, OK) == (OK, [])


def test_judge_custom_thresholds() -> None:
    """Custom limits are used; criteria set to None are switched off."""
    assert judge(fig(rtt=45.0), CUSTOM, OK) == (OK, [])
    assert judge(fig(rtt=45.0), CUSTOM, DEGRADED) == (DEGRADED, ["rtt_p95"])
    assert judge(fig(rtt=55.0), CUSTOM, OK) == (DEGRADED, ["rtt_p95"])
    assert judge(fig(rtt=350.0), CUSTOM, DOWN) == (DOWN, ["rtt_p95"])
    assert judge(fig(rtt=350.0), CUSTOM, OK) == (DEGRADED, ["rtt_p95"])
    assert judge(fig(sinr=-6.0), CUSTOM, OK) == (DOWN, ["sinr"])
    assert judge(fig(sinr=-3.0), CUSTOM, DOWN) == (DOWN, ["sinr"])
    assert judge(fig(sinr=-3.0), CUSTOM, OK) == (OK, [])  # no degraded sinr criterion
    assert judge(fig(rsrp=-150.0), CUSTOM, OK) == (OK, [])  # rsrp switched off
    assert judge(fig(silence=3.5), CUSTOM, OK) == (OK, [])
    assert judge(fig(silence=4.5), CUSTOM, OK) == (DOWN, ["no_probe_answer"])


# -- LinkHealth ----------------------------------------------------------------------------------

def test_first_data_goes_straight_to_verdict() -> None:
    """From unknown the first verdict applies at once, even a bad one."""
    health = LinkHealth()
    assert health.state == UNKNOWN and health.since is None
    assert health.update(DEGRADED, ["rtt_p95"], T0, DEFAULT) is True
    assert (health.state, health.since, health.reasons, health.changes) == (
        DEGRADED, T0, ["rtt_p95"], 1)


@pytest.mark.parametrize(("thr", "hold"), [(DEFAULT, 1.0), (CUSTOM, 2.0)])
def test_worse_verdict_needs_degrade_hold(thr: LinkThresholds, hold: float) -> None:
    """Degraded takes effect only after degrade_after_s of continuous degraded verdicts."""
    health = LinkHealth()
    health.update(OK, [], T0, thr)
    assert health.update(DEGRADED, ["loss"], T0 + 1.0, thr) is False
    assert health.update(DEGRADED, ["loss"], T0 + 1.0 + hold - 1e-3, thr) is False
    assert health.state == OK
    at = T0 + 1.0 + hold + 1e-3
    assert health.update(DEGRADED, ["loss"], at, thr) is True
    assert (health.state, health.since, health.reasons) == (DEGRADED, at, ["loss"])


@pytest.mark.parametrize(("thr", "hold"), [(DEFAULT, 0.3), (CUSTOM, 0.5)])
def test_down_needs_down_hold(thr: LinkThresholds, hold: float) -> None:
    """Down takes effect after down_after_s (shorter than the degrade hold)."""
    health = LinkHealth()
    health.update(OK, [], T0, thr)
    assert health.update(DOWN, ["no_service"], T0 + 1.0, thr) is False
    assert health.update(DOWN, ["no_service"], T0 + 1.0 + hold - 1e-3, thr) is False
    assert health.state == OK
    assert health.update(DOWN, ["no_service"], T0 + 1.0 + hold + 1e-3, thr) is True
    assert health.state == DOWN


@pytest.mark.parametrize(("thr", "hold"), [(DEFAULT, 5.0), (CUSTOM, 3.0)])
def test_better_verdict_needs_recover_hold(thr: LinkThresholds, hold: float) -> None:
    """A better verdict takes effect only after recover_after_s."""
    health = LinkHealth()
    health.update(DOWN, ["no_service"], T0, thr)
    assert health.update(OK, [], T0 + 1.0, thr) is False
    assert health.update(OK, [], T0 + 1.0 + hold - 1e-3, thr) is False
    assert health.state == DOWN
    assert health.update(OK, [], T0 + 1.0 + hold + 1e-3, thr) is True
    assert (health.state, health.reasons, health.changes) == (OK, [], 2)


def test_no_flapping_on_alternating_signal() -> None:
    """A verdict alternating every 0.5 s never passes a 1 s hold: the state never changes."""
    health = LinkHealth()
    health.update(OK, [], T0, DEFAULT)
    for i in range(1, 41):
        verdict = DEGRADED if (i // 5) % 2 == 0 else OK  # 0.5 s of each at 10 Hz
        assert health.update(verdict, ["rtt_p95"] if verdict == DEGRADED else [],
                             T0 + i * 0.1, DEFAULT) is False
    assert health.state == OK
    assert health.changes == 1


def test_flip_back_resets_pending_timer() -> None:
    """After a flip back, a new bad spell needs its own full hold."""
    health = LinkHealth()
    health.update(OK, [], T0, DEFAULT)
    health.update(DEGRADED, [], T0 + 0.1, DEFAULT)
    health.update(OK, [], T0 + 0.9, DEFAULT)
    assert health.update(DEGRADED, [], T0 + 1.0, DEFAULT) is False
    assert health.update(DEGRADED, [], T0 + 1.5, DEFAULT) is False  # 1.4 s after the first
    assert health.update(DEGRADED, [], T0 + 1.999, DEFAULT) is False
    assert health.update(DEGRADED, [], T0 + 2.001, DEFAULT) is True


def test_pending_switches_between_worse_verdicts() -> None:
    """A pending degraded that turns into down starts the down hold from then."""
    health = LinkHealth()
    health.update(OK, [], T0, DEFAULT)
    health.update(DEGRADED, ["rtt_p95"], T0 + 1.0, DEFAULT)
    assert health.update(DOWN, ["no_service"], T0 + 1.5, DEFAULT) is False
    assert health.update(DOWN, ["no_service"], T0 + 1.7, DEFAULT) is False
    assert health.update(DOWN, ["no_service"], T0 + 1.801, DEFAULT) is True
    assert health.state == DOWN


def test_stale_is_immediate_and_data_after_stale_is_immediate() -> None:
    """mark_stale needs no hold; the first verdict after staleness needs none either."""
    health = LinkHealth()
    health.update(OK, [], T0, DEFAULT)
    assert health.mark_stale(T0 + 1.01) is True
    assert (health.state, health.since, health.reasons) == (STALE, T0 + 1.01, ["no_sample"])
    assert health.mark_stale(T0 + 2.0) is False
    assert health.since == T0 + 1.01
    assert health.update(DEGRADED, ["loss"], T0 + 3.0, DEFAULT) is True
    assert health.state == DEGRADED


def test_same_verdict_updates_reasons_not_since() -> None:
    """Repeating the current verdict keeps ``since`` but refreshes the reasons."""
    health = LinkHealth()
    health.update(DEGRADED, ["rtt_p95"], T0, DEFAULT)
    assert health.update(DEGRADED, ["loss"], T0 + 3.0, DEFAULT) is False
    assert (health.since, health.reasons, health.changes) == (T0, ["loss"], 1)


def test_zero_hold_applies_at_once() -> None:
    """With all hold times 0 every verdict takes effect immediately."""
    thr = LinkThresholds(degrade_after_s=0.0, down_after_s=0.0, recover_after_s=0.0)
    health = LinkHealth()
    health.update(OK, [], T0, thr)
    assert health.update(DEGRADED, [], T0 + 0.1, thr) is True
    assert health.update(OK, [], T0 + 0.2, thr) is True
    assert health.changes == 3


def test_worst() -> None:
    """Worst of link states; stale counts as down; no judged link is unknown."""
    assert worst([]) == UNKNOWN
    assert worst([UNKNOWN]) == UNKNOWN
    assert worst([OK, UNKNOWN]) == OK
    assert worst([OK, DEGRADED]) == DEGRADED
    assert worst([OK, STALE]) == DOWN
    assert worst([DOWN, DEGRADED]) == DOWN


# -- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "field"), [
    ({"degraded_clear": Limits(rtt_p95_ms=200.0)}, "links.degraded_clear.rtt_p95_ms"),
    ({"degraded_clear": Limits(loss_ratio=0.05)}, "links.degraded_clear.loss_ratio"),
    ({"degraded_clear": Limits(rsrp_dbm=-115.0)}, "links.degraded_clear.rsrp_dbm"),
    ({"degraded_clear": Limits(sinr_db=-1.0)}, "links.degraded_clear.sinr_db"),
    ({"down_clear": Limits(rtt_p95_ms=1_500.0)}, "links.down_clear.rtt_p95_ms"),
    ({"down_clear": Limits(loss_ratio=0.4)}, "links.down_clear.loss_ratio"),
    ({"down_clear": Limits(rsrp_dbm=-130.0)}, "links.down_clear.rsrp_dbm"),
    ({"down": Limits(sinr_db=-5.0), "down_clear": Limits(sinr_db=-8.0)},
     "links.down_clear.sinr_db"),
])
def test_clear_on_wrong_side_of_enter_raises(kwargs: dict, field: str) -> None:
    """A clear value on the wrong side of its enter value is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        LinkThresholds(**kwargs)


def test_clear_equal_to_enter_is_allowed() -> None:
    """Clear equal to enter (no band) is valid."""
    thr = LinkThresholds(degraded_clear=Limits(rtt_p95_ms=150.0, loss_ratio=0.02,
                                               rsrp_dbm=-110.0, sinr_db=0.0))
    assert thr.degraded_clear.rtt_p95_ms == 150.0


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"window_s": 0.0}, "window_s"),
    ({"stale_after_s": -1.0}, "stale_after_s"),
    ({"probe_silence_s": 0.0}, "probe_silence_s"),
    ({"degrade_after_s": -0.1}, "hold times"),
    ({"recover_after_s": -5.0}, "hold times"),
])
def test_invalid_times_raise(kwargs: dict, words: str) -> None:
    """Non-positive windows and negative hold times are refused."""
    with pytest.raises(ValueError, match=words):
        LinkThresholds(**kwargs)
