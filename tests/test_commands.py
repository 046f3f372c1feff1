"""Commands with a closed loop, for real: ``l4mon serve`` on a real Mosquitto, the simulated
shuttles of ``l4mon simulate`` (which obey and answer), or a vehicle that hears and never
answers. What the operator sends, what the vehicle says and what the journal keeps."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as paho
import pytest

from l4mon.auth import hash_token
from telemetry.commands import (
    CommandAnswer,
    answer_topic,
    command_topic,
    decode_command,
    encode,
)
from telemetry.topics import service_topic, state_topic
from telemetry.wire import ServiceStatus, VehicleState
from testing.broker import Broker, free_port
from testing.demo import stop_process
from testing.hub import ROOT, HubProcess, launch_hub, stop_hub, write_hub_config

pytestmark = pytest.mark.mqtt

SITE = "demo"
#: Tokens of the test hub besides its admin's: two operators and a viewer.
PEOPLE = {"op-a": "operator", "op-b": "operator", "watcher": "viewer"}


def _token(name: str) -> str:
    return f"token-of-{name}-not-secret"


def _config(tmp_path: Path, extra: str = "") -> Path:
    people = "".join(f'\n[[auth.tokens]]\nname = "{name}"\nrole = "{role}"\n'
                     f'sha256 = "{hash_token(_token(name))}"\n' for name, role in PEOPLE.items())
    return write_hub_config(tmp_path, extra=people + extra)


def _as(hub: HubProcess, name: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10.0,
                        headers={"Authorization": f"Bearer {_token(name)}"})


@contextlib.contextmanager
def _simulated(broker: Broker, vehicles: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``l4mon simulate``: each shuttle on its own connection, obeying its command topic."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "l4mon", "simulate", "--broker", broker.url, "--vehicles",
             str(vehicles), "--per-vehicle", "--duration", "120"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield proc
    finally:
        stop_process(proc)


def _fresh(hub: HubProcess, vehicle: str) -> bool:
    found = [v for v in hub.json("/api/vehicles") if v["id"] == vehicle]
    return bool(found) and found[0]["telemetry"] == "fresh"


def _command(hub: HubProcess, command_id: str) -> dict[str, Any]:
    return hub.json(f"/api/commands/{command_id}")  # type: ignore[no-any-return]


def _until_state(hub: HubProcess, command_id: str, state: str, timeout: float = 20.0
                 ) -> dict[str, Any]:
    hub.wait_for(lambda: _command(hub, command_id)["command"]["state"] == state,
                 timeout=timeout, what=f"command {command_id} {state}")
    return _command(hub, command_id)


def _mode(hub: HubProcess, vehicle: str) -> str:
    return str(hub.json(f"/api/vehicles/{vehicle}")["mode"])


def test_an_operator_on_duty_stops_and_resumes_a_shuttle(broker: Broker, tmp_path: Path) -> None:
    """op-a, on duty for shuttle-01, stops it: the journal keeps issued, sent, received,
    executing, done (who and why), and the shuttle stands in MRM. A viewer and op-b (on duty
    for shuttle-02 only) get 403; a resume without its second confirmation 409; confirmed,
    the shuttle drives again. The same stop id sent again is not executed again."""
    hub = launch_hub(broker, _config(tmp_path), tmp_path / "hub.log", free_port())
    with _simulated(broker, 2, tmp_path / "sim.log"):
        try:
            hub.wait_for(lambda: _fresh(hub, "shuttle-01") and _fresh(hub, "shuttle-02"),
                         timeout=20, what="both shuttles fresh")
            a, b, viewer = _as(hub, "op-a"), _as(hub, "op-b"), _as(hub, "watcher")
            assert a.post("/api/duty/on", json={"vehicles": ["shuttle-01"]}).status_code == 200
            assert b.post("/api/duty/on", json={"vehicles": ["shuttle-02"]}).status_code == 200
            stop = {"kind": "stop", "id": "stop-1", "reason": "pedestrian on the road"}
            url = "/api/vehicles/shuttle-01/commands"
            assert viewer.post(url, json=stop).status_code == 403
            off_duty = b.post(url, json=stop)
            assert off_duty.status_code == 403 and "not on duty" in off_duty.json()["detail"]
            with pytest.raises(httpx.HTTPStatusError):  # nothing was journaled for them
                _command(hub, "stop-1")

            sent = a.post(url, json=stop)
            assert sent.status_code == 202, sent.text
            assert sent.json()["new"] is True
            done = _until_state(hub, "stop-1", "done")
            steps = [(s["state"], s["actor"]) for s in done["steps"]]
            assert steps == [("issued", "op-a"), ("sent", None), ("received", "vehicle"),
                             ("executing", "vehicle"), ("done", "vehicle")]
            assert "pedestrian on the road" in done["steps"][0]["detail"]
            hub.wait_for(lambda: _mode(hub, "shuttle-01") == "mrm", what="shuttle-01 in MRM")

            resume = {"kind": "resume", "id": "resume-1", "reason": "road clear"}
            unconfirmed = a.post(url, json=resume)
            assert unconfirmed.status_code == 409
            assert "second confirmation" in unconfirmed.json()["detail"]
            assert a.post(url, json={**resume, "confirm": True}).status_code == 202
            _until_state(hub, "resume-1", "done")
            hub.wait_for(lambda: _mode(hub, "shuttle-01") == "autonomous",
                         what="shuttle-01 driving again")

            again = a.post(url, json=stop)  # the operator's retry of a done command
            assert again.status_code == 202 and again.json()["new"] is False
            time.sleep(1.0)  # had it been executed again, the shuttle would be braking now
            assert _mode(hub, "shuttle-01") == "autonomous"
            assert len(_command(hub, "stop-1")["steps"]) == 5
            assert [c["id"] for c in hub.json("/api/commands", vehicle="shuttle-01")] \
                == ["resume-1", "stop-1"]
        finally:
            stop_hub(hub)


class MuteVehicle:
    """A vehicle that reports its state, hears its command topic and answers only when told:
    a paho client, as a vehicle's own MQTT stack would be."""

    def __init__(self, broker: Broker, vehicle: str) -> None:
        self.vehicle = vehicle
        self.heard: list[bytes] = []
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{vehicle}-mute",
                                  protocol=paho.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.heard.append(m.payload)
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        host, port = broker.url.removeprefix("mqtt://").rsplit(":", 1)
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.client.subscribe(command_topic(SITE, vehicle), qos=1)
        assert self._subscribed.wait(10)
        self._reporter = threading.Thread(target=self._report, daemon=True)
        self._reporter.start()

    def _report(self) -> None:
        seq = 0
        while not self._stop.wait(0.1):
            self.client.publish(state_topic(SITE, self.vehicle), msgspec.json.encode(
                VehicleState(ts=time.time(), seq=seq, lat=36.0, lon=136.0, speed_mps=5.0,
                             heading_deg=0.0, mode="autonomous")))
            seq += 1

    def leave_service(self, reason: str) -> None:
        self._stop.set()
        self._reporter.join(5)
        self.client.publish(service_topic(SITE, self.vehicle), msgspec.json.encode(
            ServiceStatus(ts=time.time(), status="out_of_service", reason=reason)),
            qos=1).wait_for_publish(10)

    def answer(self, command_id: str, status: str) -> None:
        self.client.publish(answer_topic(SITE, self.vehicle), encode(CommandAnswer(
            id=command_id, status=status, ts=time.time())), qos=1).wait_for_publish(10)  # type: ignore[arg-type]

    def close(self) -> None:
        self._stop.set()
        self._reporter.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def test_a_vehicle_that_never_answers_is_not_confirmed(broker: Broker, tmp_path: Path) -> None:
    """The vehicle hears the stop and says nothing: 2 s later the command is not confirmed,
    and the command_not_confirmed takeover alert names it."""
    hub = launch_hub(broker, _config(tmp_path), tmp_path / "hub.log", free_port())
    mute = MuteVehicle(broker, "mute-1")
    try:
        hub.wait_for(lambda: _fresh(hub, "mute-1"), what="mute-1 fresh")
        a = _as(hub, "op-a")
        assert a.post("/api/duty/on", json={"vehicles": ["mute-1"]}).status_code == 200
        sent = a.post("/api/vehicles/mute-1/commands", json={"kind": "stop", "id": "hush"})
        assert sent.status_code == 202, sent.text
        gone = _until_state(hub, "hush", "not_confirmed", timeout=10)
        assert [s["state"] for s in gone["steps"]] == ["issued", "sent", "not_confirmed"]
        waited = gone["steps"][2]["at"] - gone["steps"][1]["at"]
        assert 2.0 <= waited < 3.0, waited  # received_within_s, found at the next tick
        alerts = hub.json("/api/alerts", vehicle="mute-1", state="open")
        (alert,) = [x for x in alerts if x["rule"] == "command_not_confirmed"]
        assert alert["severity"] == "takeover" and "hush" in alert["detail"]
        assert [decode_command(p).id for p in mute.heard] == ["hush"]
    finally:
        mute.close()
        stop_hub(hub)


def test_a_hub_killed_with_a_command_in_flight_resumes_it_once(broker: Broker,
                                                                tmp_path: Path) -> None:
    """kill -9 right after the stop was sent; the vehicle answers while the hub is down (the
    broker keeps the answers for the hub's session). The restarted hub takes them for the
    journaled command: one command, each answer once, and the vehicle heard it once: the
    command was not sent again."""
    config = _config(tmp_path, "[commands]\nreceived_within_s = 30.0\n")
    hub = launch_hub(broker, config, tmp_path / "hub.log", free_port())
    mute = MuteVehicle(broker, "mute-2")
    try:
        hub.wait_for(lambda: _fresh(hub, "mute-2"), what="mute-2 fresh")
        a = _as(hub, "op-a")
        assert a.post("/api/duty/on", json={"vehicles": ["mute-2"]}).status_code == 200
        sent = a.post("/api/vehicles/mute-2/commands", json={"kind": "stop", "id": "k9"})
        assert sent.status_code == 202 and sent.json()["state"] == "sent", sent.text
        os.kill(hub.pid, signal.SIGKILL)
        hub.proc.wait(10)
        for status in ("received", "executing", "done"):
            mute.answer("k9", status)
        mute.answer("k9", "done")  # a vehicle repeating itself: counted once
        stop_hub(hub)
        hub = launch_hub(broker, config, tmp_path / "hub.log", hub.port)
        done = _until_state(hub, "k9", "done")
        assert [s["state"] for s in done["steps"]] == [
            "issued", "sent", "received", "executing", "done"]
        assert [c["id"] for c in hub.json("/api/commands", vehicle="mute-2")] == ["k9"]
        time.sleep(1.0)  # a re-sent command would have reached the vehicle by now
        assert [decode_command(p).id for p in mute.heard] == ["k9"]
    finally:
        mute.close()
        stop_hub(hub)


def test_an_out_of_reach_vehicle_is_said_so_before_sending(broker: Broker,
                                                           tmp_path: Path) -> None:
    """A vehicle that left service: 409 naming why, nothing journaled; with force the command
    is journaled as forced, and goes out."""
    hub = launch_hub(broker, _config(tmp_path), tmp_path / "hub.log", free_port())
    mute = MuteVehicle(broker, "mute-3")
    try:
        hub.wait_for(lambda: _fresh(hub, "mute-3"), what="mute-3 fresh")
        mute.leave_service("end of shift")
        hub.wait_for(lambda: hub.json("/api/vehicles/mute-3")["service"]["status"]
                     == "out_of_service", what="mute-3 out of service")
        a = _as(hub, "op-a")
        assert a.post("/api/duty/on", json={"vehicles": ["mute-3"]}).status_code == 200
        url = "/api/vehicles/mute-3/commands"
        refused = a.post(url, json={"kind": "stop", "id": "far"})
        assert refused.status_code == 409
        assert "out of reach: out of service (end of shift)" in refused.json()["detail"]
        assert hub.get("/api/commands/far").status_code == 404
        forced = a.post(url, json={"kind": "stop", "id": "far", "force": True})
        assert forced.status_code == 202, forced.text
        first = _command(hub, "far")["steps"][0]
        assert "forced although out of service" in first["detail"]
    finally:
        mute.close()
        stop_hub(hub)
