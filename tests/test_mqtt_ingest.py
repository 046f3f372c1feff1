"""End to end: messages through a real Mosquitto into ``l4mon serve``, read back over HTTP."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from telemetry.topics import event_topic, link_topic, state_topic
from telemetry.wire import LinkSample, VehicleEvent, VehicleState
from testing.broker import Broker, free_port
from testing.hub import HubProcess
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt
SITE = "itest"


def link_payload(seq: int, rtt: float | None, *, ts: float | None = None,
                 cell: str = "nr-1") -> bytes:
    return msgspec.json.encode(LinkSample(
        ts=time.time() if ts is None else ts, seq=seq, rat="nr", cell_id=cell, rsrp_dbm=-85.0,
        rsrq_db=-10.0, sinr_db=18.0, rtt_ms=rtt, ul_kbps=25_000.0, dl_kbps=80_000.0))


def link_seq(hub: HubProcess, vehicle: str, link: str) -> dict:
    return hub.json(f"/api/vehicles/{vehicle}")["links"][link]["sequence"]  # type: ignore[index]


def test_link_figures_match_what_was_sent(broker: Broker, hub_process: HubProcess) -> None:
    """Counts are exact and RTT percentiles equal numpy's over the same samples."""
    rng = random.Random(7)
    sent_rtts: list[float] = []
    with Publisher(broker.host, broker.port) as pub:
        for seq in range(300):
            if 100 <= seq < 110:
                continue  # a 10-sample gap: loss
            rtt = round(rng.lognormvariate(3.0, 0.4), 3)
            sent_rtts.append(rtt)
            pub.publish(link_topic(SITE, "veh-a", "l5g"), link_payload(seq, rtt))
        pub.publish(link_topic(SITE, "veh-a", "l5g"), link_payload(150, 999.0))  # redelivery
    hub_process.wait_for(lambda: link_seq(hub_process, "veh-a", "l5g")["received"] == 290,
                         what="290 samples")
    hub_process.wait_for(lambda: link_seq(hub_process, "veh-a", "l5g")["duplicates"] == 1,
                         what="the duplicate to be counted")
    seq = link_seq(hub_process, "veh-a", "l5g")
    assert (seq["received"], seq["lost"], seq["duplicates"], seq["reordered"]) == (290, 10, 1, 0)
    window = hub_process.json("/api/vehicles/veh-a")["links"]["l5g"]["windows"]["60s"]
    assert window["samples"] == 290
    for q in (50, 95, 99):
        assert window[f"rtt_p{q}_ms"] == pytest.approx(np.percentile(sent_rtts, q), abs=1e-3)
    assert window["loss_ratio"] == pytest.approx(10 / 300, abs=1e-6)
    assert window["rtt_jitter_ms"] == pytest.approx(
        float(np.mean(np.abs(np.diff(sent_rtts)))), abs=1e-3)
    listed = hub_process.json("/api/vehicles")
    assert [v["id"] for v in listed] == ["veh-a"]  # type: ignore[index]


def test_mosquitto_pub_messages_and_garbage(broker: Broker, hub_process: HubProcess,
                                            mosquitto_pub: str) -> None:
    """A client we did not write: a valid state is shown, garbage is quarantined with a reason."""
    state = msgspec.json.encode(VehicleState(ts=time.time(), seq=0, lat=36.06, lon=136.34,
                                             speed_mps=5.5, heading_deg=90.0, mode="autonomous"))
    base = [mosquitto_pub, "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5"]
    subprocess.run([*base, "-t", state_topic(SITE, "veh-b"), "-m", state.decode()], check=True,
                   timeout=10)
    subprocess.run([*base, "-t", state_topic(SITE, "veh-b"), "-m", '{"ts": 1, "seq": '],
                   check=True, timeout=10)
    subprocess.run([*base, "-t", "l4mon/v1/itest/vehicle/veh-b/wheel", "-m", "{}"], check=True,
                   timeout=10)
    hub_process.wait_for(lambda: hub_process.json("/api/quarantine")["total"] == 2,
                         what="two quarantined messages")
    vehicle = hub_process.json("/api/vehicles/veh-b")
    assert vehicle["mode"] == "autonomous"  # type: ignore[index]
    assert vehicle["speed_mps"] == 5.5  # type: ignore[index]
    q = hub_process.json("/api/quarantine")
    assert q["counts"] == {"malformed": 1, "unknown_topic": 1}  # type: ignore[index]
    newest = q["items"][0]  # type: ignore[index]
    assert newest["topic"] == "l4mon/v1/itest/vehicle/veh-b/wheel"
    assert newest["payload_text"] == "{}"
    metrics = hub_process.get("/metrics").text
    assert 'l4mon_messages_quarantined_total{reason="malformed"} 1.0' in metrics
    assert "l4mon_mqtt_connected 1.0" in metrics


def test_messagepack_and_qos1_event_redelivery(broker: Broker, hub_process: HubProcess) -> None:
    """MQTT v5 content type selects MessagePack; a redelivered QoS 1 event counts once."""
    sample = LinkSample(ts=time.time(), seq=0, rat="lte", cell_id="lte-9", rsrp_dbm=-99.0,
                        rtt_ms=48.0)
    event = VehicleEvent(ts=time.time(), kind="takeover_request", seq=1, detail="door")
    with Publisher(broker.host, broker.port) as pub:
        pub.publish(link_topic(SITE, "veh-c", "lte"), msgspec.msgpack.encode(sample),
                    content_type="application/msgpack")
        for _ in range(2):
            pub.publish(event_topic(SITE, "veh-c"), msgspec.json.encode(event), qos=1)
    hub_process.wait_for(lambda: len(hub_process.json("/api/vehicles/veh-c")["events"]) == 1
                         and hub_process.json("/healthz")["ingest"]["duplicates"] == 1,
                         what="one event and one duplicate")
    vehicle = hub_process.json("/api/vehicles/veh-c")
    assert vehicle["links"]["lte"]["cell_id"] == "lte-9"  # type: ignore[index]
    assert vehicle["events"][0]["kind"] == "takeover_request"  # type: ignore[index]


def test_hub_recovers_when_the_broker_restarts(broker: Broker, hub_process: HubProcess) -> None:
    """Broker goes away mid-stream and comes back: the hub reconnects and keeps counting."""
    topic = link_topic(SITE, "veh-d", "l5g")
    with Publisher(broker.host, broker.port, client_id="pub-1") as pub:
        for seq in range(50):
            pub.publish(topic, link_payload(seq, 20.0))
    hub_process.wait_for(lambda: link_seq(hub_process, "veh-d", "l5g")["received"] == 50,
                         what="the first 50 samples")
    broker.stop()
    hub_process.wait_for(lambda: not hub_process.json("/healthz")["mqtt"]["connected"],
                         what="the hub to notice the broker is gone")
    assert hub_process.json("/healthz")["status"] == "degraded"  # type: ignore[index]
    broker.start()
    hub_process.wait_for(lambda: hub_process.json("/healthz")["mqtt"]["connects"] == 2,
                         timeout=30.0, what="the hub to reconnect")
    with Publisher(broker.host, broker.port, client_id="pub-2") as pub:
        for seq in range(50, 100):
            pub.publish(topic, link_payload(seq, 20.0))
    hub_process.wait_for(lambda: link_seq(hub_process, "veh-d", "l5g")["received"] == 100,
                         what="the next 50 samples after the restart")
    assert link_seq(hub_process, "veh-d", "l5g")["lost"] == 0
    health = hub_process.json("/healthz")
    assert health["mqtt"]["disconnects"] == 1  # type: ignore[index]
    assert "lost broker" in hub_process.log()
    metrics = hub_process.get("/metrics").text
    assert "l4mon_mqtt_disconnects_total 1.0" in metrics


def test_simulate_feeds_serve_end_to_end(broker: Broker, hub_process: HubProcess) -> None:
    """``l4mon simulate`` publishes the demo fleet to the broker; ``serve`` shows it."""
    result = subprocess.run(
        [sys.executable, "-m", "l4mon", "simulate", "--broker", broker.url, "--vehicles", "2",
         "--duration", "3"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout.split()[1])
    assert sent > 2 * 3 * 10  # two vehicles, three streams, ~10 Hz, ~3 s, plus RSUs
    hub_process.wait_for(lambda: hub_process.json("/healthz")["ingest"]["accepted"] == sent,
                         what=f"all {sent} simulated messages")
    vehicles = hub_process.json("/api/vehicles")
    assert [v["id"] for v in vehicles] == ["shuttle-01", "shuttle-02"]  # type: ignore[index]
    assert hub_process.json("/healthz")["ingest"]["quarantined"] == 0  # type: ignore[index]


def test_serve_records_a_drive_log_that_replays(broker: Broker, tmp_path: Path) -> None:
    """serve --record writes what it ingested, hour-partitioned; a clean stop loses nothing,
    and the log replays to the same link counts."""
    from scenarios.scenario import run_log
    from telemetry.drivelog import read_manifest, read_table
    from testing.hub import launch_hub, stop_hub, write_hub_config

    record = tmp_path / "rec"
    config = write_hub_config(tmp_path)
    hub = launch_hub(broker, config, tmp_path / "hub.log", free_port(),
                     extra_args=["--record", str(record)])
    try:
        with Publisher(broker.host, broker.port) as pub:
            for seq in range(120):
                pub.publish(link_topic(SITE, "veh-r", "l5g"), link_payload(seq, 20.0 + seq % 9))
            pub.publish(link_topic(SITE, "veh-r", "l5g"), b"garbage")
        hub.wait_for(lambda: hub.json("/healthz")["ingest"]["received"] == 121,
                     what="121 messages")
    finally:
        stop_hub(hub)
    manifest = read_manifest(record)
    assert manifest.messages == 120 and manifest.vehicles == ["veh-r"]
    assert all("date=" in str(p) and "hour=" in str(p) for p in record.rglob("*.parquet"))
    assert read_table(record).num_rows == 120
    doc = run_log(record)
    assert doc["kpis"]["veh-r"]["links"]["l5g"]["samples"] == 120


def test_replay_publishes_a_scenario_to_a_live_hub(broker: Broker, hub_process: HubProcess,
                                                   tmp_path: Path) -> None:
    """l4mon replay --publish sends the scenario's messages to the broker, with timestamps
    moved to the present, and a live hub takes every one of them as fresh telemetry."""
    scenario = tmp_path / "rehearse.toml"
    scenario.write_text('name = "rehearse"\n[generator]\nvehicles = 1\nseed = 3\n'
                        'duration_s = 5\n')
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "l4mon", "replay", str(scenario), "--speed", "10", "--publish",
         broker.url, "--out", str(out)], check=False, capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 0, result.stderr
    sent = msgspec.json.decode(out.read_bytes())["span"]["messages"]
    assert f"published {sent} messages" in result.stdout
    hub_process.wait_for(lambda: hub_process.json("/healthz")["ingest"]["accepted"] == sent,
                         what=f"all {sent} replayed messages")
    assert hub_process.json("/healthz")["ingest"]["quarantined"] == 0
    vehicle = hub_process.json("/api/vehicles/shuttle-01")
    assert vehicle["links"]["l5g"]["clock_suspect"] is False  # ts moved to the present


def test_healthz_and_metrics_say_which_ingest_path_runs(hub_process: HubProcess) -> None:
    """The lean path passed its self-check, and every path acknowledges after processing."""
    mqtt = hub_process.json("/healthz")["mqtt"]
    assert mqtt["client"].startswith("gmqtt ")  # type: ignore[index]
    assert (mqtt["lean_path"], mqtt["lean_path_reason"]) == (True, None)  # type: ignore[index]
    assert mqtt["ack_after_processing"] == {"lean": True, "gmqtt": True}  # type: ignore[index]
    assert mqtt["ack_after_processing_reasons"] == {}  # type: ignore[index]
    metrics = hub_process.get("/metrics").text
    assert "l4mon_mqtt_lean_path 1.0" in metrics
    assert 'l4mon_mqtt_ack_after_processing{path="lean"} 1.0' in metrics
    assert 'l4mon_mqtt_ack_after_processing{path="gmqtt"} 1.0' in metrics
