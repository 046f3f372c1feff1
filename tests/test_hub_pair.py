"""A hub pair: two hubs on one journal, one leading (l4mon/leadership.py).

First the standby's engine on its own (two engines on one journal, fed the same messages at
chosen times): it decides nothing, mirrors what the leader journals, and on promotion raises
exactly what the leader had not. Then the real thing: one PostgreSQL, one Mosquitto, two
``l4mon serve`` processes; the leader is killed with SIGKILL and the standby takes over.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from l4mon.alerts.follower import JournalFollower
from l4mon.alerts.standby import NotLeader
from l4mon.clock import ManualClock
from l4mon.config import HaSettings
from l4mon.leadership import Leadership
from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker, free_port
from testing.demo import chromium_page
from testing.hub import (
    ROOT,
    TEST_TOKEN,
    HubProcess,
    launch_hub,
    running_pair,
    stop_hub,
    write_hub_config,
)
from tests.mqtt_publish import Publisher
from tests.parts import needs
from tests.test_alert_engine import T0, Rig

MRM_RULE = """
[[rule]]
name = "mrm"
title = "Minimal risk manoeuvre"
scope = "vehicle"
when = "mode == 'mrm'"
clear_when = "mode != 'mrm'"
severity = "takeover"
clear_for_s = 1.0
"""

TAKEOVER_RULE = """
[[rule]]
name = "takeover_requested"
title = "Vehicle requests takeover"
scope = "event"
when = "kind == 'takeover_request'"
severity = "takeover"
"""


def _pair(tmp_path: Path, rules: str) -> tuple[Rig, Rig, JournalFollower]:
    """A leader and a standby engine on one journal file, and the standby's follower."""
    journal = tmp_path / "pair.sqlite"
    leader, standby = Rig(journal, rules), Rig(journal, rules)
    standby.engine.stand_by()
    return leader, standby, JournalFollower(standby.engine)


def _both(now: float, leader: Rig, standby: Rig, *messages: tuple[str, Any]) -> None:
    """The same batch to both hubs at the same time, then a tick on each."""
    for rig in (leader, standby):
        rig.send(now, *messages)
        rig.hub.tick(now)


def test_a_standby_decides_nothing_and_mirrors_what_the_leader_journals(tmp_path: Path) -> None:
    """Same messages: the leader raises and journals; the standby writes nothing, takes the
    duty roster, the alert and the leader's acknowledgement from the journal, tells its
    listeners, and refuses an operator's action."""
    leader, standby, follower = _pair(tmp_path, TAKEOVER_RULE)
    leader.duty.go_on("alice", T0 - 1)
    assert standby.engine.mirror_duty() and standby.duty.operators() == ["alice"]
    _both(T0, leader, standby, leader.event_msg(T0, "v1"))
    (alert,) = leader.alerts()
    assert standby.alerts() == [] and standby.heard == []
    assert len(standby.engine.deferred) == 1  # kept, in case the leader dies before journaling
    assert follower.catch_up() == 1
    assert [a.id for a in standby.alerts()] == [alert.id]
    leader.engine.acknowledge(alert.id, "alice", T0 + 1)
    assert follower.catch_up() == 1
    assert standby.one().state == "acknowledged"
    assert [t.kind for t, _ in standby.heard] == ["raised", "acknowledged"]
    with pytest.raises(NotLeader):
        standby.engine.acknowledge(alert.id, "bob", T0 + 2)
    assert len(leader.journal.alerts()) == 1


def test_promotion_raises_only_the_events_the_leader_did_not_have(tmp_path: Path) -> None:
    """v1: raised by the leader and resolved by an operator before it died (not raised again);
    v2: raised by the leader, still open (not twice); v3: reached only the standby (the
    leader died first): raised on promotion, with the time it was received."""
    leader, standby, follower = _pair(tmp_path, TAKEOVER_RULE)
    _both(T0, leader, standby, leader.event_msg(T0, "v1"), leader.event_msg(T0, "v2"))
    first = leader.one(vehicle="v1")
    leader.engine.resolve(first.id, "alice", T0 + 1, "handled")
    standby.send(T0 + 2, standby.event_msg(T0 + 2, "v3"))  # the leader is gone by now
    follower.catch_up()
    raised = standby.engine.promote(T0 + 2.5)
    assert [(a.vehicle, a.raised_at) for a in raised] == [("v3", T0 + 2)]
    rows = standby.journal.alerts()
    assert sorted((a.vehicle, a.state) for a in rows) == [
        ("v1", "resolved"), ("v2", "raised"), ("v3", "raised")]
    assert standby.engine.deferred == type(standby.engine.deferred)()


def test_an_event_is_kept_while_the_standby_still_sees_its_alert_open(tmp_path: Path) -> None:
    """The leader resolves v1's alert and dies before the vehicle's next request reaches it;
    the standby, not having read the resolve yet, still sees the alert open when the request
    arrives: it keeps the request anyway and raises it on promotion."""
    leader, standby, follower = _pair(tmp_path, TAKEOVER_RULE)
    _both(T0, leader, standby, leader.event_msg(T0, "v1"))
    follower.catch_up()
    first = leader.one(vehicle="v1")
    leader.engine.resolve(first.id, "alice", T0 + 1, "handled")
    standby.send(T0 + 1.1, leader.event_msg(T0 + 1.1, "v1"))  # the leader is gone by now
    assert [a.id for a in standby.alerts()] == [first.id]  # its copy lags by a poll
    follower.catch_up()
    (again,) = standby.engine.promote(T0 + 1.3)
    assert again.id != first.id and again.raised_at == T0 + 1.1


def test_an_event_delivered_late_after_a_restart_is_not_raised_twice(tmp_path: Path) -> None:
    """The standby was down while the leader raised v4's request and an operator resolved it;
    restarted, it gets the request late (the broker queued it for its session). Promoted, it
    must not raise it again: the leader's alert was raised when the event was sent. A new
    request sent after that resolve is still raised."""
    leader, _, _ = _pair(tmp_path, TAKEOVER_RULE)
    leader.send(T0 + 5, leader.event_msg(T0 + 5, "v4"))
    first = leader.one(vehicle="v4")
    leader.engine.resolve(first.id, "alice", T0 + 5.3, "handled")
    restarted = Rig(tmp_path / "pair.sqlite", TAKEOVER_RULE)  # knows no track of v4
    restarted.engine.stand_by()
    restarted.send(T0 + 7, leader.event_msg(T0 + 5, "v4"))  # queued while it was down
    restarted.send(T0 + 7.5, leader.event_msg(T0 + 7.4, "v5"))  # the leader never saw this
    JournalFollower(restarted.engine).catch_up()
    raised = restarted.engine.promote(T0 + 8)
    assert [(a.vehicle, a.raised_at) for a in raised] == [("v5", T0 + 7.5)]
    assert sorted(a.vehicle for a in restarted.journal.alerts()) == ["v4", "v5"]


def test_promotion_resolves_what_cleared_and_raises_what_held(tmp_path: Path) -> None:
    """State rules: the standby times holds as the leader does, so on promotion a cleared
    alert is resolved and a condition that held unraised is raised, both at once."""
    leader, standby, follower = _pair(tmp_path, MRM_RULE)
    _both(T0, leader, standby, leader.state_msg(T0, "v1", mode="mrm"))
    follower.catch_up()
    assert [a.vehicle for a in standby.alerts()] == ["v1"]
    # The leader dies; only the standby hears v1 recover and v2 begin an MRM.
    for at in (T0 + 1, T0 + 1.5, T0 + 2.5):
        standby.step(at, standby.state_msg(at, "v1"), standby.state_msg(at, "v2", mode="mrm"))
    assert [a.vehicle for a in standby.alerts()] == ["v1"]  # decided nothing
    follower.catch_up()
    assert standby.engine.promote(T0 + 3) == []
    standby.hub.evaluate_alerts(T0 + 3)
    assert [a.vehicle for a in standby.alerts()] == ["v2"]
    assert sorted((a.vehicle, a.state) for a in standby.journal.alerts()) == [
        ("v1", "resolved"), ("v2", "raised")]


def test_a_leader_that_loses_its_journal_connection_is_fenced_and_the_standby_leads(
        pg_url: str) -> None:
    """Two leaderships on one PostgreSQL journal: one leads, one stands by. The leader's
    connection is killed on the server: it says it is fenced (it keeps alerting, takes no
    operator actions) and the standby, whose next try gets the lock, leads; the fenced one
    reconnects and rejoins as the standby."""
    a, b = Rig(pg_url, TAKEOVER_RULE), Rig(pg_url, TAKEOVER_RULE)
    clock = ManualClock(T0)
    first, second = (Leadership(hub=rig.hub, lock=rig.journal, clock=clock,  # type: ignore[arg-type]
                                settings=HaSettings(), url=f"http://{name}:8080",
                                client_id=f"hub-{name}")
                     for rig, name in ((a, "a"), (b, "b")))
    try:
        first.step()
        second.step()
        assert (first.role, second.role) == ("leader", "standby")
        assert second.leader == {"url": "http://a:8080", "client_id": "hub-a", "since": T0}
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)",
                          (a.journal._db.info.backend_pid,))  # type: ignore[attr-defined]
        first.step()
        assert first.role == "fenced" and not first.leading and a.engine.leading
        second.step()
        assert second.role == "leader" and second.promotions == 1 and b.engine.leading
        assert second.last_promotion is not None
        # The fenced hub reconnects by itself and rejoins as a standby: the lock is taken,
        # so it decides nothing and follows the new leader (no restart needed).
        first.step()
        assert first.role == "standby" and not a.engine.leading
        assert first.leader == {"url": "http://b:8080", "client_id": "hub-b", "since": T0}
        first.step()
        assert first.role == "standby"
    finally:
        a.journal.close()
        b.journal.close()


# -- two real hubs ----------------------------------------------------------------------------


def _event(vehicle: str, seq: int) -> bytes:
    return msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request", seq=seq))


def _takeovers(pg_url: str) -> dict[str, list[str]]:
    """Per vehicle, the states of its takeover alerts as PostgreSQL holds them."""
    out: dict[str, list[str]] = {}
    with psycopg.connect(pg_url) as db:
        for vehicle, state in db.execute("SELECT vehicle, state FROM alerts WHERE rule = "
                                         "'takeover_requested' ORDER BY id"):
            out.setdefault(vehicle, []).append(state)
    return out


def _role(hub: HubProcess) -> str | None:
    try:
        return hub.health()["role"]  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return None


def _config(tmp_path: Path, name: str, ports: list[int]) -> Path:
    peers = ", ".join(f'"http://127.0.0.1:{p}"' for p in ports)
    return write_hub_config(tmp_path, file_name=f"{name}.toml", extra=(
        f'[mqtt]\nclient_id = "l4mon-{name}"\n[ha]\npeers = [{peers}]\npoll_interval_s = 0.2'))


@contextlib.contextmanager
def _two_hubs(broker: Broker, pg_url: str, tmp_path: Path
              ) -> Iterator[tuple[HubProcess, HubProcess, list[int]]]:
    """Hub a (the leader) and hub b on one PostgreSQL journal, with this file's configs."""
    with running_pair(broker, pg_url, tmp_path, _config) as pair:
        yield pair


def test_two_hubs_one_leads_and_the_standby_takes_over_after_kill_9(
        broker: Broker, pg_url: str, tmp_path: Path) -> None:
    """One leader; an alert journaled once and seen on both; an ack on the leader known to
    the standby, refused on the standby; SIGKILL of the leader: the standby leads within 2 s
    and every takeover request (one the leader had, one only the standby got, one sent
    during the failover, one after) is raised exactly once, the acknowledged one untouched."""
    with _two_hubs(broker, pg_url, tmp_path) as (a, b, ports):
        assert (_role(a), _role(b)) == ("leader", "standby")
        assert b.json("/api/ha")["leader"] == f"http://127.0.0.1:{ports[0]}"
        a.post("/api/duty/on")
        with Publisher(broker.host, broker.port, client_id="pair-pub") as pub:
            def send(vehicle: str, seq: int) -> None:
                pub.publish(event_topic("pair", vehicle), _event(vehicle, seq), qos=1)
                pub.flush()

            send("veh-1", 1)
            a.wait_for(lambda: len(a.json("/api/alerts", state="open")) == 1, what="an alert")
            (alert,) = a.json("/api/alerts")
            assert b.json("/api/alerts") == [alert]  # one journal
            b.wait_for(lambda: b.metric("l4mon_alerts_open") == 1, what="standby mirrored it")
            a.post(f"/api/alerts/{alert['id']}/ack", {"note": "on it"})
            b.wait_for(lambda: b.json(f"/api/alerts/{alert['id']}")["alert"]["state"]
                       == "acknowledged", what="the ack on the standby", timeout=2)
            refused = b.http.post(f"/api/alerts/{alert['id']}/resolve", json={"reason": "x"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["x-l4mon-leader"] == f"http://127.0.0.1:{ports[0]}"
            assert "standby" in refused.json()["detail"]
            assert b.http.post("/api/duty/off").status_code == 503
            assert b.metric("l4mon_ha_leader") == 0 and a.metric("l4mon_ha_leader") == 1

            # veh-2: the leader raises it and an operator resolves it: never raised again.
            send("veh-2", 1)
            a.wait_for(lambda: "veh-2" in _takeovers(pg_url), what="veh-2's alert")
            (second,) = a.json("/api/alerts", vehicle="veh-2")
            a.post(f"/api/alerts/{second['id']}/resolve", {"reason": "spoke to the vehicle"})
            # veh-3: the leader is frozen, so only the standby processes it (and keeps it).
            kept = b.health()["ha"]["kept_events"]
            a.proc.send_signal(signal.SIGSTOP)
            send("veh-3", 1)
            b.wait_for(lambda: b.health()["ha"]["kept_events"] > kept, what="veh-3 kept")
            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            send("veh-4", 1)  # during the failover
            while _role(b) != "leader" and time.monotonic() - killed < 5:
                time.sleep(0.01)
            failover_s = time.monotonic() - killed
            send("veh-5", 1)  # after it
            b.wait_for(lambda: {"veh-3", "veh-4", "veh-5"} <= set(_takeovers(pg_url)),
                       what="every takeover raised")
        time.sleep(0.5)  # room for a late duplicate to show itself
        print(f"failover after kill -9: {failover_s * 1000:.0f} ms")
        assert failover_s < 2.0, f"standby led only after {failover_s:.2f} s\n{b.log()[-2000:]}"
        assert _takeovers(pg_url) == {"veh-1": ["acknowledged"], "veh-2": ["resolved"],
                                      "veh-3": ["raised"], "veh-4": ["raised"],
                                      "veh-5": ["raised"]}
        health = b.health()
        assert health["role"] == "leader" and health["leader_since"] is not None
        assert b.metric("l4mon_ha_leader") == 1 and b.metric("l4mon_ha_promotions_total") == 1
        assert "standby -> leader after" in b.log()
        assert b.json(f"/api/alerts/{alert['id']}")["alert"]["state"] == "acknowledged"
        b.post(f"/api/alerts/{alert['id']}/resolve", {"reason": "done"})  # it takes actions


def test_a_second_hub_with_the_leaders_mqtt_client_id_is_refused(
        broker: Broker, pg_url: str, tmp_path: Path) -> None:
    """Two hubs with one client id would take each other's broker session: the second stops
    at start (exit 2), naming the setting."""
    config = write_hub_config(tmp_path)
    a = launch_hub(broker, config, tmp_path / "a.log", free_port(),
                   extra_args=["--journal", pg_url])
    try:
        run = subprocess.run(
            [sys.executable, "-m", "l4mon", "serve", "--config", str(config), "--broker",
             broker.url, "--http", f"127.0.0.1:{free_port()}", "--journal", pg_url],
            check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "client_id" in run.stderr and "Traceback" not in run.stderr
        assert a.health()["role"] == "leader"
    finally:
        stop_hub(a)



def _alert_id(pg_url: str, vehicle: str) -> int | None:
    with psycopg.connect(pg_url) as db:
        row = db.execute("SELECT id FROM alerts WHERE vehicle = %s", (vehicle,)).fetchone()
    return None if row is None else int(row[0])


def _wait(predicate: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


@pytest.mark.mqtt
@needs("chromium", "playwright")
def test_a_console_moves_to_the_leading_hub_by_itself(broker: Broker, pg_url: str,
                                                      tmp_path: Path) -> None:
    """Opened on the standby, the console moves to the leader and acts there (a cross-origin
    call the leader allows its peer's page); after the leader's kill -9 it moves back to the
    standby, which leads now, and shows the alerts it raises."""
    from playwright.sync_api import expect

    with _two_hubs(broker, pg_url, tmp_path) as (a, _b, ports), \
            chromium_page(1400, 800) as page, \
            Publisher(broker.host, broker.port, client_id="pair-console-pub") as pub:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{ports[1]}/#token={TEST_TOKEN}")
        role = page.get_by_test_id("hub-role")
        expect(role).to_contain_text(f"LEADER · 127.0.0.1:{ports[0]}", timeout=10_000)
        pub.publish(event_topic("pair", "veh-8"), _event("veh-8", 1), qos=1)
        first = _wait(lambda: _alert_id(pg_url, "veh-8"), "veh-8's alert")
        card = page.get_by_test_id(f"alert-{first}")
        card.get_by_test_id("ack-button").click(timeout=10_000)
        _wait(lambda: a.json(f"/api/alerts/{first}")["alert"]["state"] == "acknowledged",
              "the console's ack on the leader")
        a.proc.kill()
        expect(role).to_contain_text(f"LEADER · 127.0.0.1:{ports[1]}", timeout=10_000)
        pub.publish(event_topic("pair", "veh-9"), _event("veh-9", 1), qos=1)
        second = _wait(lambda: _alert_id(pg_url, "veh-9"), "veh-9's alert")
        expect(page.get_by_test_id(f"alert-{second}")).to_be_visible(timeout=10_000)
        expect(card.get_by_test_id("alert-state")).to_contain_text("acknowledged")
        assert errors == []
