"""Roles on the wire, in the hub: the site register (only its ids, each as its kind on its
site), and without one the newcomers (telemetry/newcomers.py): let in at a bounded rate, the
never-confirmed let go, their alerts resolved as "evicted" and kept so across a restart."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from l4mon.alerts.engine import AlertEngine
from l4mon.alerts.lifecycle import EVICTED_ACTOR
from l4mon.config import ConfigError, HubConfig, IngestSettings, config_from_dict
from l4mon.records.alert import Alert
from telemetry.fleet import UNREGISTERED, WRONG_KIND, FleetLimits
from telemetry.register import RegisterError, load_register, parse_register
from telemetry.topics import event_topic, rsu_topic, state_topic
from telemetry.wire import RsuStatus, VehicleEvent, VehicleState
from testing.broker import Broker, free_port
from testing.hub import HubProcess, launch_hub, metric_value, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher
from tests.test_alert_engine import SITE, T0, Rig

REGISTER = parse_register({"hubs": ["l4mon-hub"], "sites": {
    SITE: {"vehicles": ["v1", "v2"], "rsus": ["r1"]}, "other": {"vehicles": ["w1"]}}})
SMALL = FleetLimits(max_vehicles=50, new_vehicles_burst=5, new_vehicles_per_s=1.0,
                    confirm_after_s=10.0, forget_newcomer_after_s=60.0)


def _rig(tmp_path: Path, limits: FleetLimits | None = None) -> Rig:
    config = HubConfig(ingest=IngestSettings(alert_interval_s=0.25),
                       fleet=limits or FleetLimits())
    rig = Rig(tmp_path / "j.sqlite", config=config)
    rig.duty.go_on("alice", T0 - 100)
    return rig


def _fake_states(names: range, at: float, site: str = SITE) -> list[tuple[str, bytes, None]]:
    """One state message from each of ``names`` (fake-0, fake-1, ...)."""
    return [(state_topic(site, f"fake-{i}"), msgspec.json.encode(VehicleState(
        ts=at, seq=0, lat=36.0, lon=136.0, speed_mps=0.0, heading_deg=0.0,
        mode="autonomous")), None) for i in names]


def _ticks(rig: Rig, start: float, end: float, step: float = 0.25, *,
           talking: str | None = None) -> None:
    """Tick from ``start`` to ``end``; ``talking``: a vehicle that reports at every tick, so the
    site stays in view and a silent vehicle is that vehicle's own silence (l4mon/site_watch.py)."""
    at = start
    while at <= end + 1e-9:
        if talking is not None:
            rig.state(at, talking)
        rig.hub.tick(at)
        at = round(at + step, 6)


def _takeovers_of_fakes(rig: Rig) -> list[str]:
    return [a.vehicle or "" for a in rig.engine.journal.alerts(limit=100_000)
            if a.severity == "takeover" and (a.vehicle or "").startswith("fake-")]


# -- the register ---------------------------------------------------------------------------------


def test_with_a_register_unknown_ids_are_quarantined_and_raise_nothing(tmp_path: Path) -> None:
    """An id the register does not name is quarantined ``unregistered``: no track, and no
    alert however long it stays silent; a registered vehicle is in at once."""
    rig = _rig(tmp_path)
    rig.hub.fleet.register = REGISTER
    rig.hub.ingest(_fake_states(range(500), T0), T0)
    rig.state(T0, "v1")
    _ticks(rig, T0, T0 + 30)
    assert list(rig.hub.fleet.vehicles) == ["v1"]
    assert rig.hub.quarantine.counts[UNREGISTERED] == 500
    assert rig.engine.journal.alerts(limit=10) == [] or all(
        a.vehicle == "v1" for a in rig.engine.journal.alerts(limit=10))
    assert _takeovers_of_fakes(rig) == []
    assert len(rig.hub.fleet.newcomers) == 0  # registered: no newcomer


def test_a_vehicle_cannot_pose_as_an_rsu_nor_an_rsu_as_a_vehicle(tmp_path: Path) -> None:
    """By the register: v1 (a vehicle) on an RSU topic, r1 (an RSU) on a vehicle topic and w1
    (a vehicle of another site) here are refused with their reasons; the RSU's own status
    goes in."""
    rig = _rig(tmp_path)
    rig.hub.fleet.register = REGISTER
    status = RsuStatus(ts=T0, seq=0, intersection="x1", health="fault")
    rig.send(T0, (rsu_topic(SITE, "v1"), status), (rsu_topic(SITE, "r1"), status))
    rig.state(T0, "r1")
    rig.state(T0, "w1")
    counts = rig.hub.quarantine.counts
    assert (counts[WRONG_KIND], counts["site_conflict"]) == (2, 1)
    assert list(rig.hub.fleet.rsus) == ["r1"] and rig.hub.fleet.vehicles == {}
    details = [q.detail for q in rig.hub.quarantine.newest(reason=WRONG_KIND)]
    assert details == ["r1 is registered as an RSU, not as vehicle",
                       "v1 is registered as a vehicle, not as RSU"]


def test_without_a_register_a_known_vehicle_cannot_become_an_rsu(tmp_path: Path) -> None:
    """No register: the tables still know each id's kind, so shuttle-01 once heard as a
    vehicle cannot publish RSU status (and an RSU's id cannot report as a vehicle)."""
    rig = _rig(tmp_path)
    rig.state(T0, "v1")
    status = RsuStatus(ts=T0, seq=0, intersection="x1", health="fault")
    rig.send(T0, (rsu_topic(SITE, "v1"), status), (rsu_topic(SITE, "r9"), status))
    rig.state(T0, "r9")
    assert rig.hub.quarantine.counts[WRONG_KIND] == 2
    assert list(rig.hub.fleet.rsus) == ["r9"] and list(rig.hub.fleet.vehicles) == ["v1"]


def test_the_register_file_is_validated(tmp_path: Path) -> None:
    """A name in two roles, a bad name or an unknown key stops the start with the reason."""
    good = tmp_path / "register.toml"
    good.write_text('hubs = ["h"]\n[sites.depot]\nvehicles = ["s1"]\nrsus = ["r1"]\n')
    assert load_register(good).known("r1") == ("rsu", "depot")
    for text, words in [('hubs = ["s1"]\n[sites.depot]\nvehicles = ["s1"]\n', "both hub"),
                        ('[sites.depot]\nvehicles = [".."]\n', "'..'"),
                        ('[sites.depot]\nrsus = ["r\\u202e1"]\n', "'r\\u202e1'"),
                        ('[sites.depot]\ntrucks = ["t1"]\n', "trucks")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(RegisterError, match=words.replace("\\", "\\\\")):
            load_register(bad)


# -- newcomers without a register ---------------------------------------------------------------


def test_a_flood_of_fake_vehicles_raises_a_bounded_number_and_a_real_one_gets_in(
        tmp_path: Path) -> None:
    """5,000 made-up ids, one state each, against a table of 50: the table never overflows,
    at most ``burst`` fakes (judged at once) plus the rate raise a takeover alert, and a real
    new vehicle's takeover request afterwards is raised at once."""
    rig = _rig(tmp_path, SMALL)
    rig.hub.fleet.expect("v1", SITE)
    for start in range(0, 5_000, 500):
        rig.hub.ingest(_fake_states(range(start, start + 500), T0), T0)
        assert len(rig.hub.fleet.vehicles) <= SMALL.max_vehicles
    _ticks(rig, T0, T0 + 20, talking="v1")
    fakes = _takeovers_of_fakes(rig)
    assert len(fakes) <= SMALL.new_vehicles_burst + 1
    assert rig.hub.fleet.evicted >= 5_000 - SMALL.max_vehicles
    rig.send(T0 + 20.1, rig.event_msg(T0 + 20.1, "real-1"))
    (alert,) = [a for a in rig.engine.open_alerts() if a.vehicle == "real-1"]
    assert alert.rule == "takeover_requested" and alert.raised_at == T0 + 20.1


def test_a_vehicle_on_probation_is_not_judged_but_its_events_raise(tmp_path: Path) -> None:
    """Beyond the burst a newcomer is on probation: its silence raises nothing, its takeover
    request and its minimal risk manoeuvre raise at once; heard for ``confirm_after_s`` it is
    confirmed and judged like any vehicle."""
    rig = _rig(tmp_path, SMALL)
    rig.hub.fleet.expect("v1", SITE)
    rig.hub.ingest(_fake_states(range(SMALL.new_vehicles_burst), T0), T0)  # the burst
    rig.state(T0, "late")
    assert rig.hub.fleet.on_probation("late")
    _ticks(rig, T0, T0 + 8, talking="v1")
    assert [a for a in rig.engine.open_alerts() if a.vehicle == "late"] == []
    rig.send(T0 + 8, rig.event_msg(T0 + 8, "late"))
    rig.send(T0 + 8, rig.state_msg(T0 + 8, "late", mode="mrm"))
    assert {a.rule for a in rig.engine.open_alerts() if a.vehicle == "late"} == {
        "takeover_requested", "mrm_active"}
    talker = "talker"
    for k in range(121):  # heard for 12 s at 10 Hz: confirmed
        at = round(T0 + 8 + k * 0.1, 6)
        rig.state(at, talker)
        rig.state(at, "v1")
        rig.hub.tick(at)
    assert not rig.hub.fleet.on_probation(talker)
    assert talker not in rig.hub.fleet.newcomers.first_heard
    _ticks(rig, T0 + 20.25, T0 + 26, talking="v1")
    assert "telemetry_stale" in {a.rule for a in rig.engine.open_alerts()
                                 if a.vehicle == talker}


def test_evicted_fakes_alerts_are_resolved_and_stay_so_after_a_restart(tmp_path: Path) -> None:
    """The fakes judged at once go stale (the attack's takeover alerts). A full table lets the
    oldest of them go to make room; the rest are let go once silent for
    ``forget_alerting_newcomer_after_s``. Each alert is resolved by "evicted", journaled: a
    restarted engine on the same journal has none of them open."""
    limits = FleetLimits(max_vehicles=11, new_vehicles_burst=10, new_vehicles_per_s=1.0)
    rig = _rig(tmp_path, limits)
    rig.hub.fleet.expect("v1", SITE)
    rig.hub.ingest(_fake_states(range(10), T0), T0)
    _ticks(rig, T0, T0 + 12, talking="v1")  # one message: stale after 10 s, unlearned
    assert len(_takeovers_of_fakes(rig)) == 10
    rig.hub.ingest(_fake_states(range(10, 20), T0 + 13), T0 + 13)

    def resolved() -> list[Alert]:
        return [a for a in rig.engine.journal.alerts(limit=1_000)
                if (a.vehicle or "").startswith("fake-") and not a.is_open]

    assert [a.vehicle for a in resolved()] == ["fake-0"]  # the oldest, for room
    _ticks(rig, T0 + 13, T0 + 13 + limits.forget_alerting_newcomer_after_s, step=1.0,
           talking="v1")
    assert len(resolved()) == len(_takeovers_of_fakes(rig)) >= 10  # every one, none open
    assert "v1" in rig.hub.fleet.vehicles
    assert {a.resolved_by for a in resolved()} == {EVICTED_ACTOR}
    assert all("never confirmed" in (a.resolve_reason or "") for a in resolved())
    assert not any(v.startswith("fake-") for v in rig.hub.fleet.vehicles)
    again = AlertEngine(rules=rig.engine.rules, journal=rig.engine.journal, duty=rig.duty,
                        ul_required_kbps=rig.config.requirements.ul_required)
    assert [a for a in again.open.values() if (a.vehicle or "").startswith("fake-")] == []


def test_what_is_never_evicted(tmp_path: Path) -> None:
    """A newcomer whose alert an operator acknowledged, a vehicle that said it is in service
    and an expected one stay when the table is full: the newest arrival is refused instead."""
    limits = FleetLimits(max_vehicles=3, new_vehicles_burst=3, new_vehicles_per_s=1.0)
    rig = _rig(tmp_path, limits)
    rig.hub.fleet.expect("planned", SITE)
    rig.send(T0, rig.event_msg(T0, "asks"))
    (alert,) = rig.engine.open_alerts()
    rig.engine.acknowledge(alert.id, "alice", T0 + 1)
    rig.send(T0 + 1, (f"l4mon/v1/{SITE}/vehicle/working/service",
                      {"ts": T0 + 1, "status": "in_service"}))
    _ticks(rig, T0 + 1, T0 + 120)
    assert sorted(rig.hub.fleet.vehicles) == ["asks", "planned", "working"]
    rig.state(T0 + 121, "stranger")
    assert sorted(rig.hub.fleet.vehicles) == ["asks", "planned", "working"]
    assert rig.hub.quarantine.counts["capacity"] == 1
    assert rig.hub.fleet.evicted == 0


def test_a_silent_newcomer_is_forgotten_and_its_topics_with_it(tmp_path: Path) -> None:
    """Heard once, then silent for ``forget_newcomer_after_s`` with no open alert: let go; its
    topic's cached handler goes too, so a later message makes a fresh newcomer, not a ghost."""
    rig = _rig(tmp_path, SMALL)
    rig.hub.ingest(_fake_states(range(SMALL.new_vehicles_burst), T0), T0)  # the burst
    rig.state(T0, "once")  # on probation: judged never, so no alert keeps it
    _ticks(rig, T0, T0 + 61)
    assert "once" not in rig.hub.fleet.vehicles
    assert rig.hub.fleet.evicted >= 1
    rig.state(T0 + 62, "once")
    assert rig.hub.fleet.vehicles["once"].state_seq.received == 1
    counts = Counter(a.resolved_by for a in rig.engine.journal.alerts(limit=1_000)
                     if a.vehicle == "once")
    assert counts == Counter()


# -- through ``l4mon serve`` and a real broker ------------------------------------------------


def _serve_flood(broker: Broker, tmp_path: Path, fakes: int, extra: str = "", *,
                 pose: bool = False) -> tuple[HubProcess, float | None]:
    """A real hub; ``fakes`` made-up ids, one state each (and with ``pose``, RSU status under
    the name ``v1``); then a takeover request from vehicle ``v1``, never heard before as one:
    (the hub, seconds from its PUBACK to the alert in the API)."""
    hub = launch_hub(broker, write_hub_config(tmp_path, extra=extra), tmp_path / "hub.log",
                     free_port())
    with Publisher(broker.host, broker.port, client_id="flood") as pub:
        for i in range(fakes):
            pub.publish(state_topic(SITE, f"fake-{i}"), _state_bytes())
        if pose:
            pub.publish(rsu_topic(SITE, "v1"), msgspec.json.encode(RsuStatus(
                ts=time.time(), seq=0, intersection="x1", health="fault")), qos=1)
        pub.flush()
        hub.wait_for(lambda: hub.metric("l4mon_messages_received_total") >= fakes + pose,
                     timeout=30, what="the flood at the hub")
        event = msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request",
                                                 seq=0))
        pub.publish(event_topic(SITE, "v1"), event, qos=1)
        pub.flush()
        acked = time.monotonic()
        while time.monotonic() - acked < 5:
            if hub.json("/api/alerts", vehicle="v1", severity="takeover"):
                return hub, time.monotonic() - acked
            time.sleep(0.01)
    return hub, None


def _state_bytes() -> bytes:
    return msgspec.json.encode(VehicleState(ts=time.time(), seq=0, lat=36.0, lon=136.0,
                                            speed_mps=0.0, heading_deg=0.0, mode="autonomous"))


def test_serve_after_a_flood_of_fakes_a_real_takeover_is_raised_within_1_s(
        broker: Broker, tmp_path: Path) -> None:
    """No register, a table of 2,000: 6,000 made-up ids go in (the oldest newcomers let go to
    make room, never a refusal), and then a new vehicle's takeover request is raised within
    1 s of the broker's acknowledgement; no fake raised a takeover alert."""
    hub, latency = _serve_flood(broker, tmp_path, 6_000, "[fleet]\nmax_vehicles = 2000\n")
    try:
        assert latency is not None and latency < 1.0, hub.log()[-2000:]
        assert hub.metric("l4mon_vehicles_evicted_total") >= 4_000
        assert hub.metric('l4mon_messages_quarantined_total{reason="capacity"}') == 0
        takeovers = hub.json("/api/alerts", severity="takeover", limit=1_000)
        assert [a["vehicle"] for a in takeovers] == ["v1"]
    finally:
        stop_hub(hub)


def test_serve_with_a_register_refuses_strangers_and_wrong_kinds(
        broker: Broker, tmp_path: Path) -> None:
    """With [register] path: 2,000 unregistered ids and a vehicle's RSU status are quarantined
    (unregistered, wrong_kind) and raise nothing; the registered vehicle's takeover request is
    raised within 1 s."""
    register = tmp_path / "register.toml"
    register.write_text(f'[sites.{SITE}]\nvehicles = ["v1"]\nrsus = ["r1"]\n')
    hub, latency = _serve_flood(broker, tmp_path, 2_000, f'[register]\npath = "{register}"\n',
                                pose=True)
    try:
        assert latency is not None and latency < 1.0, hub.log()[-2000:]
        text = hub.get("/metrics").text
        assert metric_value(text, 'l4mon_messages_quarantined_total{reason="unregistered"}') \
            == 2_000
        assert metric_value(text, 'l4mon_messages_quarantined_total{reason="wrong_kind"}') == 1
        assert [v["id"] for v in hub.json("/api/vehicles")] == ["v1"]
        assert hub.json("/api/rsus") == []
    finally:
        stop_hub(hub)


def test_the_cap_on_newcomers_is_not_optional() -> None:
    """No rate of 0 or infinity, no negative burst, no idle time shorter for alerting
    newcomers: the config names what is wrong."""
    for fleet in ({"new_vehicles_per_s": 0}, {"new_vehicles_per_s": float("inf")},
                  {"new_vehicles_burst": -1}, {"confirm_after_s": 0},
                  {"forget_newcomer_after_s": 700, "forget_alerting_newcomer_after_s": 600}):
        with pytest.raises(ConfigError, match="fleet"):
            config_from_dict({"fleet": fleet})
    assert config_from_dict({"register": {"path": "/etc/l4mon/register.toml"}}).register.path
