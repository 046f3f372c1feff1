"""The journal's own faults against real parts: a PostgreSQL server stopped under a running
``l4mon serve`` (its own server, so the others' tests keep theirs), a hub killed while its
journal was away, and a single hub riding out a database restart.

Nothing acknowledged that is not kept: a QoS 1 takeover request whose alert could not be
journaled is not acknowledged, so a hub killed meanwhile gets it again from the broker and
raises it exactly once; a hub that lives on journals it when the database is back. Meanwhile
no request gets a 500 (a 503 naming the cause), consoles are closed with a code and a reason,
and nothing needs a restart.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker, free_port
from testing.hub import TEST_TOKEN, HubProcess, launch_hub, stop_hub, write_hub_config
from testing.postgres import PostgresServer
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt
SITE = "jf"


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, to stop and start."""
    try:
        server = PostgresServer()
    except FileNotFoundError as error:
        pytest.skip(f"{error} (./scripts/test.sh installs it)")
    with server:
        yield server


def takeover(pub: Publisher, vehicle: str, seq: int) -> None:
    pub.publish(event_topic(SITE, vehicle), msgspec.json.encode(VehicleEvent(
        ts=time.time(), kind="takeover_request", seq=seq)), qos=1)
    pub.flush()


def journaled(url: str, vehicle: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as db:
        return [(r[0], r[1]) for r in db.execute(
            "SELECT rule, state FROM alerts WHERE vehicle = %s ORDER BY id", (vehicle,))]


def journal_state(hub: HubProcess) -> dict:
    return hub.json("/healthz")["journal"]


def test_a_takeover_request_during_a_journal_fault_is_raised_once_after_kill_9(
        broker: Broker, own_postgres: PostgresServer, tmp_path: Path) -> None:
    """The database goes away; a QoS 1 takeover request arrives (the hub shows it from
    memory, but does not acknowledge it); the hub is killed; the database and the hub come
    back: the broker delivers the request again and it is raised, and journaled, once."""
    url = own_postgres.new_schema()
    config, port = write_hub_config(tmp_path), free_port()
    hub = launch_hub(broker, config, tmp_path / "hub.log", port, extra_args=["--journal", url])
    try:
        with Publisher(broker.host, broker.port, client_id="jf-vehicles") as pub:
            takeover(pub, "veh-a", 1)
            hub.wait_for(lambda: len(journaled(url, "veh-a")) == 1, what="veh-a journaled")
            own_postgres.stop(mode="immediate")
            takeover(pub, "veh-b", 1)
            hub.wait_for(lambda: journal_state(hub)["acks_held"] >= 1, timeout=15,
                         what="the takeover request held, not acknowledged")
            assert journal_state(hub)["kept"] >= 1
            hub.proc.send_signal(signal.SIGKILL)
            hub.proc.wait(timeout=10)
    finally:
        stop_hub(hub)
    own_postgres.start()
    hub = launch_hub(broker, config, tmp_path / "hub.log", port, extra_args=["--journal", url])
    try:
        hub.wait_for(lambda: journaled(url, "veh-b") == [("takeover_requested", "raised")],
                     timeout=20, what="veh-b's request, redelivered and raised")
        time.sleep(1.0)  # a second delivery would be raised by now
        assert journaled(url, "veh-b") == [("takeover_requested", "raised")]
        assert journaled(url, "veh-a") == [("takeover_requested", "raised")]
    finally:
        stop_hub(hub)


def test_a_single_hub_rides_out_a_database_restart(
        broker: Broker, own_postgres: PostgresServer, tmp_path: Path) -> None:
    """No pair: while the database restarts, reads and actions answer 503 naming the journal
    (never 500), a resuming console is closed with code 1013 and a reason, a takeover request
    is shown from memory and held; once the database is back the hub reconnects by itself,
    leads again, journals the request once and the outage as journal_unavailable (raised and
    resolved), and answers as before — no restart."""
    url = own_postgres.new_schema()
    hub = launch_hub(broker, write_hub_config(tmp_path), tmp_path / "hub.log", free_port(),
                     extra_args=["--journal", url])
    try:
        hub.post("/api/duty/on")
        with Publisher(broker.host, broker.port, client_id="jf-vehicles") as pub:
            takeover(pub, "veh-a", 1)
            hub.wait_for(lambda: len(hub.json("/api/alerts")) == 1, what="veh-a's alert")
            (first,) = hub.json("/api/alerts")
            own_postgres.stop()
            hub.wait_for(lambda: hub.get("/healthz").json()["role"] == "fenced", timeout=10,
                         what="the hub noticing its journal is away")
            takeover(pub, "veh-b", 1)
            hub.wait_for(lambda: journal_state(hub)["acks_held"] >= 1, timeout=10,
                         what="veh-b's request held")
            for answer in (hub.get("/api/alerts"),
                           hub.http.post(f"/api/alerts/{first['id']}/ack", json={})):
                assert answer.status_code == 503, answer.text
                assert "journal" in answer.json()["detail"]
            with connect(f"ws://127.0.0.1:{hub.port}/ws?token={TEST_TOKEN}&last_seq=1") as ws, \
                    pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert "journal" in closed.value.rcvd.reason
            own_postgres.start()
            hub.wait_for(lambda: hub.get("/healthz").json()["role"] == "leader" and
                         journal_state(hub)["ok"] and not journal_state(hub)["acks_held"],
                         timeout=30, what="the hub leading again with everything journaled")
        assert journaled(url, "veh-b") == [("takeover_requested", "raised")]
        with psycopg.connect(url) as db:
            own = db.execute("SELECT state FROM alerts WHERE rule = 'journal_unavailable'"
                             ).fetchall()
        assert own == [("resolved",)]
        assert hub.http.post(f"/api/alerts/{first['id']}/ack", json={}).status_code == 200
        assert {a["vehicle"] for a in hub.json("/api/alerts", state="open")} >= {"veh-a", "veh-b"}
        assert "Traceback" not in hub.log()
    finally:
        stop_hub(hub)

