"""Recordings and replays keep commands (issue 25, item 1): ``serve --record`` on a real
Mosquitto writes each command it sent and each answer it heard; replaying the recording
carries them through the hub's ingest (sent to nobody), and the report gives their round trips
per condition and links, with their sample sizes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
import pytest

from l4mon.faces.report import ReportOptions, build_report, render
from scenarios.scenario import run_log
from telemetry.commands import CommandAnswer, answer_topic, command_topic, decode_command, encode
from telemetry.drivelog import read_table
from telemetry.topics import link_topic, state_topic
from telemetry.wire import LinkSample, VehicleState
from testing.broker import Broker, free_port
from testing.hub import launch_hub, stop_hub
from tests.test_commands import SITE, _config, _token

pytestmark = pytest.mark.mqtt


class AnsweringVehicle:
    """Reports its state and one link (l5g) at 10 Hz and answers each command it hears:
    received at once, done 0.2 s later; a resume it refuses (with its reason)."""

    def __init__(self, broker: Broker, vehicle: str) -> None:
        self.vehicle = vehicle
        self.heard: list[str] = []
        self._stop = threading.Event()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{vehicle}-ans",
                                  protocol=paho.MQTTv5)
        self.client.on_message = self._on_command
        self.client.on_subscribe = lambda *args: subscribed.set()
        host, port = broker.url.removeprefix("mqtt://").rsplit(":", 1)
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.client.subscribe(command_topic(SITE, vehicle), qos=1)
        assert subscribed.wait(10)
        self._reporter = threading.Thread(target=self._report, daemon=True)
        self._reporter.start()

    def _report(self) -> None:
        seq = 0
        while not self._stop.wait(0.1):
            now = time.time()
            self.client.publish(state_topic(SITE, self.vehicle), msgspec.json.encode(
                VehicleState(ts=now, seq=seq, lat=36.0, lon=136.0, speed_mps=5.0,
                             heading_deg=0.0, mode="autonomous")))
            self.client.publish(link_topic(SITE, self.vehicle, "l5g"), msgspec.json.encode(
                LinkSample(ts=now, seq=seq, rat="nr", rsrp_dbm=-80.0, sinr_db=15.0,
                           rtt_ms=20.0, ul_kbps=20_000.0)))
            seq += 1

    def _answer(self, command_id: str, status: str, reason: str | None = None) -> None:
        self.client.publish(answer_topic(SITE, self.vehicle), encode(CommandAnswer(
            id=command_id, status=status, ts=time.time(), reason=reason)), qos=1)  # type: ignore[arg-type]

    def _on_command(self, _client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        command = decode_command(message.payload)
        self.heard.append(command.id)
        if command.kind == "resume":
            self._answer(command.id, "refused", "the test vehicle never resumes")
            return
        self._answer(command.id, "received")
        threading.Timer(0.2, self._answer, (command.id, "done")).start()

    def close(self) -> None:
        self._stop.set()
        self._reporter.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def test_a_recording_keeps_commands_and_the_report_gives_their_round_trips(
        broker: Broker, tmp_path: Path) -> None:
    record = tmp_path / "rec"
    hub = launch_hub(broker, _config(tmp_path), tmp_path / "hub.log", free_port(),
                     extra_args=["--record", str(record)])
    vehicle = AnsweringVehicle(broker, "rec-1")
    try:
        hub.wait_for(lambda: any(v["id"] == "rec-1" and v["telemetry"] == "fresh"
                                 for v in hub.json("/api/vehicles")), what="rec-1 fresh")
        hub.wait_for(lambda: hub.json("/api/vehicles/rec-1")["links"]["l5g"]["state"] == "ok",
                     what="l5g ok", timeout=15)
        op = hub.http.__class__(base_url=hub.http.base_url, timeout=10.0,
                                headers={"Authorization": f"Bearer {_token('op-a')}"})
        assert op.post("/api/duty/on", json={"vehicles": ["rec-1"]}).status_code == 200
        for n in range(3):
            sent = op.post("/api/vehicles/rec-1/commands", json={"kind": "stop", "id": f"r{n}"})
            assert sent.status_code == 202, sent.text
            hub.wait_for(lambda n=n: hub.json(f"/api/commands/r{n}")["command"]["state"]
                         == "done", what=f"r{n} done")
        refused = op.post("/api/vehicles/rec-1/commands",
                          json={"kind": "resume", "id": "r-res", "confirm": True})
        assert refused.status_code == 202, refused.text
        hub.wait_for(lambda: hub.json("/api/commands/r-res")["command"]["state"] == "refused",
                     what="r-res refused")
        live = {c: hub.json(f"/api/commands/{c}")["steps"] for c in ("r0", "r1", "r2", "r-res")}
        time.sleep(0.5)
    finally:
        stop_hub(hub)
        vehicle.close()
    heard = list(vehicle.heard)
    assert heard == ["r0", "r1", "r2", "r-res"]

    rows = [r for r in read_table(record).select(["kind", "event_kind", "detail"]).to_pylist()
            if r["kind"] in ("command", "command_ack")]
    assert [(r["kind"], r["event_kind"]) for r in rows if r["detail"] == "r0"] == [
        ("command", "stop"), ("command_ack", "received"), ("command_ack", "done")]
    assert ("command_ack", "refused", "r-res") in {(r["kind"], r["event_kind"], r["detail"])
                                                   for r in rows}

    doc = run_log(record)
    commands = {c["id"]: c for c in doc["commands"]}
    assert set(commands) == {"r0", "r1", "r2", "r-res"}
    assert doc["quarantine"] == {}  # answers and commands are no telemetry, and no trouble
    for cid in ("r0", "r1", "r2"):
        c = commands[cid]
        assert c["links"] == "l5g" and c["kind"] == "stop"
        # the replay's round trip is the live one: from the hub's publish (after it journaled
        # the command) to the answer's arrival, as the hub journaled it
        steps = {s["state"]: s["at"] for s in live[cid]}
        assert 0 < c["received_ms"] <= (steps["received"] - steps["issued"]) * 1000 + 0.01
        # "done" leaves the vehicle 0.2 s after the command reached it, so at least 0.2 s after
        # the hub's publish; "received" may travel slower than "done" on a loaded machine, so
        # the gap between the two arrivals says only their order
        assert 200 <= c["done_ms"] < 2_200 and c["received_ms"] < c["done_ms"]
    assert commands["r-res"]["refused"] == "the test vehicle never resumes"

    report = build_report([str(record)], ReportOptions())
    (row,) = report.tables["command_times"].rows
    assert (row["links"], row["sent"], row["received"], row["done"], row["refused"],
            row["unanswered"]) == ("l5g", 4, 3, 3, 1, 0)
    assert row["received_p50_ms"] == pytest.approx(
        sorted(commands[c]["received_ms"] for c in ("r0", "r1", "r2"))[1])
    assert "Command round trips" in render(report)
    assert vehicle.heard == heard  # the replay and the report sent nothing
