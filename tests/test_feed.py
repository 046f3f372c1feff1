"""The hub's own blindness (l4mon/site_watch.py): one alert for the site, not one per vehicle.

Driven end to end like the alert engine's tests (tests/test_alert_engine.py's Rig): wire
messages into a hub with the shipped rules, ticks at chosen times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from l4mon.site_watch import LOST, OK, RECOVERING, FeedSettings, FeedWatch
from tests.test_alert_engine import T0, Rig

VEHICLES = ("v1", "v2", "v3")
PER_VEHICLE = {"both_links_down", "telemetry_stale", "link_down_other_degraded",
               "uplink_below_requirement", "rtt_over_budget"}


def drive(rig: Rig, start: float, end: float, vehicles: tuple[str, ...] = VEHICLES,
          *, silent: tuple[str, ...] = ()) -> None:
    """10 Hz state and two links per vehicle from ``start`` to ``end``, a tick every 0.25 s."""
    steps = round((end - start) * 10)
    for k in range(steps):
        now = round(start + (k + 1) * 0.1, 6)
        batch = []
        for v in vehicles:
            if v in silent:
                continue
            batch += [rig.state_msg(now, v), rig.link_msg(now, v, "a"), rig.link_msg(now, v, "b")]
        if batch:
            rig.send(now, *batch)
        if round(now * 100) % 25 == 0:
            rig.hub.tick(now)


def quiet(rig: Rig, start: float, end: float) -> None:
    now = start
    while now < end - 1e-9:
        now = round(now + 0.25, 6)
        rig.hub.tick(now)


def test_a_silent_site_is_one_hub_alert_not_a_takeover_per_vehicle(tmp_path: Path) -> None:
    """Every vehicle silent at once (the broker bridge, the network): one hub_feed_lost alert
    to everyone on duty, naming the vehicles that were moving; no per-vehicle alert while it
    lasts nor in the grace after; then the vehicles are judged again and the alert resolves."""
    rig = Rig(tmp_path / "j.sqlite")
    drive(rig, T0, T0 + 10)
    quiet(rig, T0 + 10, T0 + 20)  # 10 s of silence from the whole site
    (lost,) = rig.alerts("hub_feed_lost")
    assert lost.vehicle is None and lost.site == "s1" and lost.is_open
    assert T0 + 11.0 <= lost.raised_at <= T0 + 11.25  # declared before any link is stale
    assert "no message from any of its vehicles" in lost.detail
    assert "v1 (5 m/s)" in lost.detail and "unknown, not down" in lost.detail
    assert rig.hub.feed.sites["s1"].state == LOST
    drive(rig, T0 + 20, T0 + 23, vehicles=("v1", "v2"))  # v3 does not come back
    assert rig.hub.feed.sites["s1"].state == RECOVERING and lost.is_open
    drive(rig, T0 + 23, T0 + 30, vehicles=("v1", "v2"))
    assert rig.hub.feed.sites["s1"].state == OK and not lost.is_open
    per_vehicle = [a for a in rig.engine.journal.alerts() if a.rule in PER_VEHICLE]
    # After the grace (5 s from the feed's return at ~T0+20), only the vehicle that really
    # stayed silent is judged: v3, unreachable on its own (its staleness held by that).
    assert {(a.rule, a.vehicle) for a in per_vehicle} == {("both_links_down", "v3")}
    assert all(a.raised_at >= T0 + 25.0 for a in per_vehicle)


def test_broker_connection_down_is_the_hub_blind_at_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "j.sqlite")
    drive(rig, T0, T0 + 5)
    rig.hub.feed.set_transport(True, T0 + 5)
    rig.hub.feed.set_transport(False, T0 + 5.1)
    quiet(rig, T0 + 5, T0 + 5.25)
    (lost,) = rig.alerts("hub_feed_lost")
    assert lost.raised_at == T0 + 5.25 and "broker connection is down" in lost.detail
    quiet(rig, T0 + 5.25, T0 + 30)
    assert not [a for a in rig.engine.journal.alerts() if a.rule in PER_VEHICLE]
    rig.hub.feed.set_transport(True, T0 + 30)
    drive(rig, T0 + 30, T0 + 40)
    assert not lost.is_open
    assert not [a for a in rig.engine.journal.alerts() if a.rule in PER_VEHICLE]


def test_one_vehicle_silent_is_that_vehicles_alert(tmp_path: Path) -> None:
    """The others keep reporting: the site is seen, the silent vehicle is unreachable."""
    rig = Rig(tmp_path / "j.sqlite")
    drive(rig, T0, T0 + 5)
    drive(rig, T0 + 5, T0 + 12, silent=("v2",))
    assert not rig.alerts("hub_feed_lost")
    assert [a.vehicle for a in rig.alerts("both_links_down")] == ["v2"]


def test_a_lone_vehicle_silent_is_never_the_hub_blind(tmp_path: Path) -> None:
    """One vehicle reporting (another parked long ago): silence is the vehicle's own."""
    rig = Rig(tmp_path / "j.sqlite")
    drive(rig, T0, T0 + 2, vehicles=("parked",))
    quiet(rig, T0 + 2, T0 + 100)
    drive(rig, T0 + 100, T0 + 105, vehicles=("v1",))
    quiet(rig, T0 + 105, T0 + 112)
    assert not rig.alerts("hub_feed_lost")
    assert "v1" in [a.vehicle for a in rig.alerts("both_links_down")]


def test_a_short_hiccup_of_the_whole_site_is_nothing(tmp_path: Path) -> None:
    """0.8 s without any message (under lost_after_s): no alert of any kind."""
    rig = Rig(tmp_path / "j.sqlite")
    drive(rig, T0, T0 + 5)
    quiet(rig, T0 + 5, T0 + 5.75)
    drive(rig, T0 + 5.75, T0 + 12)
    assert not rig.engine.journal.alerts()


def test_feed_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="suspect_after_s"):
        FeedSettings(suspect_after_s=2.0, lost_after_s=1.0)
    with pytest.raises(ValueError, match="min_vehicles"):
        FeedSettings(min_vehicles=0)
    assert FeedWatch().view() == {}


def test_a_broker_outage_in_replay_is_one_alert_and_no_invented_loss_or_failure() -> None:
    """The library's broker-outage scenario replayed (the outage is a log fault: nothing
    arrives for 15 s): one hub_feed_lost alert, raised within 1.5 s and resolved after the
    grace; no link loses a sample or fails a handover over the stretch the hub could not see."""
    from scenarios.scenario import run_scenario

    library = Path(__file__).resolve().parent.parent / "scenarios" / "library"
    doc = run_scenario(library / "broker-outage-daylight.toml")
    assert doc["verdict"] == "pass"
    (alert,) = doc["alerts"]
    assert alert["rule"] == "hub_feed_lost" and alert["resolved_at"] is not None
    assert 30.0 < alert["raised_offset_s"] <= 31.5
    assert 45.0 + 5.0 <= alert["resolved_at"] - doc["span"]["start"] <= 45.0 + 6.0
    for kp in doc["kpis"].values():
        for link in kp["links"].values():
            assert link["loss_ratio"] == 0.0
            assert "failure" not in link["handovers_by_kind"]
