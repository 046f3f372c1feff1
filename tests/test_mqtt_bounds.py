"""Bounded MQTT input: an oversized message is never read whole and holds up nobody,
its sender is named; a retained event is not an event; the hub says when its session is taken.

Real parts: Mosquitto (the ``broker`` fixture, the deployment's config over TLS), ``l4mon
serve`` (testing/hub.py), and, for a broker that ignores the hub's Maximum Packet Size, a
real Mosquitto behind testing/mqtt_proxy.py, which removes that property from the CONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
import pytest

from l4mon.ingest import _bounded_read
from l4mon.ingest._bounded_read import CHUNK, PacketReader, Refused
from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.ingest.refusals import packet_bound
from l4mon.types import Batch
from telemetry.topics import event_topic, state_topic
from telemetry.wire import VehicleState
from testing.broker import Broker, free_port
from testing.hub import HubProcess, launch_hub, rss_mb, stop_hub, write_hub_config
from testing.mqtt_proxy import IgnoringProxy, strip_max_packet_size
from tests.mqtt_publish import Publisher
from tests.test_mosquitto_acl import Vehicle, _render, mosquitto_with_certs

SITE = "depot"
LIMIT = packet_bound(16_384)


def _packet(command: int, body: bytes) -> bytes:
    return _bounded_read._packet(command, body)


def _publish(topic: str, payload: bytes, packet_id: int | None = None, *,
             command: int = 0x30) -> bytes:
    return _packet(command, _bounded_read._publish_body(topic.encode(), payload, packet_id))


# --- the reader, on its own --------------------------------------------------------------------

def test_reader_refuses_a_64_mb_publish_holding_no_more_than_one_read() -> None:
    """A 64 MB QoS 1 PUBLISH fed as a socket would (64 KiB reads): refused with its topic and
    packet id, never held; the packets on either side of it come out whole."""
    topic = state_topic(SITE, "shuttle-01")
    size = 64 * 1024 * 1024
    body_head = _bounded_read._publish_body(topic.encode(), b"", 0x0A0B)[:-1]  # no props byte
    remaining = len(body_head) + 1 + size
    length = bytearray()
    value = remaining
    while True:
        value, byte = divmod(value, 128)
        length.append(byte | (0x80 if value else 0))
        if not value:
            break
    before = _publish(event_topic(SITE, "v2"), b'{"n":1}')
    after = _publish(event_topic(SITE, "v3"), b'{"n":2}', 5, command=0x32)
    emitted: list[tuple[int, bytes]] = []
    refused: list[Refused] = []
    reader = PacketReader(limit=LIMIT, emit=lambda c, b: emitted.append((c, b)),
                          refuse=refused.append)
    stream_head = before + bytes([0x32]) + bytes(length) + body_head + b"\x00"
    assert reader.feed(stream_head)
    zeros = bytes(CHUNK)
    left = size
    while left:
        step = min(CHUNK, left)
        assert reader.feed(zeros if step == CHUNK else zeros[:step])
        left -= step
    assert reader.feed(after)
    assert refused == [Refused(0x32, 1 + len(length) + remaining, topic, 0x0A0B)]
    assert [c for c, _ in emitted] == [0x30, 0x32]
    assert reader.peak_held <= len(stream_head) + len(after)


def test_reader_self_check_passes_and_catches_a_broken_reader(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up check agrees with gmqtt's own parser on the pinned gmqtt, and fails when
    the reader would hold an oversized packet or lose the packet after it."""
    assert _bounded_read.check_reader(LIMIT) is None
    monkeypatch.setattr(PacketReader, "_head", staticmethod(lambda *args: None))
    assert _bounded_read.check_reader(LIMIT) is not None


def test_proxy_strips_only_the_maximum_packet_size() -> None:
    """The test proxy's rewrite: a CONNECT as gmqtt builds it loses property 0x27, nothing else."""
    props = b"\x11\x00\x00\x0e\x10" + b"\x27\x00\x00\x50\x00" + b"\x21\x00\x14"
    body = b"\x00\x04MQTT\x05\x02\x00\x3c" + bytes([len(props)]) + props + b"\x00\x03hub"
    stripped = strip_max_packet_size(_packet(0x10, body))
    want = b"\x00\x04MQTT\x05\x02\x00\x3c\x08\x11\x00\x00\x0e\x10\x21\x00\x14\x00\x03hub"
    assert stripped == _packet(0x10, want)


# --- a real broker and a real hub --------------------------------------------------------------

class Peak:
    """A process's resident memory, sampled every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.mb = max(self.mb, rss_mb(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _takeover() -> bytes:
    return json.dumps({"ts": time.time(), "kind": "takeover_request", "seq": 1}).encode()


def _alerts(hub: HubProcess) -> list[dict[str, object]]:
    return hub.json("/api/alerts", limit=1000)  # type: ignore[no-any-return]


def _raised(hub: HubProcess, rule: str) -> dict[str, float]:
    return {str(a["vehicle"]): float(a["raised_at"])  # type: ignore[arg-type]
            for a in _alerts(hub) if a["rule"] == rule}


def _quarantined(hub: HubProcess, reason: str) -> float:
    for line in hub.get("/metrics").text.splitlines():
        if line.startswith("l4mon_messages_quarantined_total{") and f'"{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@contextlib.contextmanager
def _hub(url: str, tmp_path: Path, name: str = "hub") -> Iterator[HubProcess]:
    config = write_hub_config(tmp_path, file_name=f"{name}.toml",
                              journal=tmp_path / f"{name}.sqlite")
    hub = launch_hub(url, config, tmp_path / f"{name}.log", free_port())
    try:
        time.sleep(0.3)  # SUBSCRIBE follows CONNACK
        yield hub
    finally:
        stop_hub(hub)


def _attack(broker: Broker, hub: HubProcess, victims: int) -> dict[str, float]:
    """shuttle-01 publishes 64 MB at QoS 1 on its own state topic; once the broker took it,
    each victim vehicle one takeover request. Returns each victim's latency (s)."""
    with Publisher(broker.host, broker.port, client_id="shuttle-01") as attacker:
        attacker.publish(state_topic(SITE, "shuttle-01"), bytes(64 * 1024 * 1024), qos=1)
        attacker.flush()
    sent: dict[str, float] = {}
    with Publisher(broker.host, broker.port, client_id="victims") as others:
        for n in range(victims):
            vehicle = f"victim-{n}"
            sent[vehicle] = time.time()
            others.publish(event_topic(SITE, vehicle), _takeover(), qos=1)
    hub.wait_for(lambda: set(sent) <= set(_raised(hub, "takeover_requested")), timeout=10,
                 what="every victim's takeover alert")
    raised = _raised(hub, "takeover_requested")
    return {v: raised[v] - sent[v] for v in sent}


def test_an_oversized_publish_is_refused_unread_and_holds_up_nobody(
        broker: Broker, tmp_path: Path) -> None:
    """Through a broker that ignores the hub's Maximum Packet Size: shuttle-01's 64 MB QoS 1
    state goes by unread; ten other vehicles' takeover requests, queued behind it, are all
    raised within 1 s; the hub's memory grows by under 10 MB; shuttle-01 is named in a
    sender_refused alert and counted; its PUBACK was sent (a restarted hub with the same
    session is not sent it again)."""
    with IgnoringProxy(broker) as proxy:
        with _hub(proxy.url, tmp_path) as hub:
            # the telemetry and the command connections both announce the bound
            hub.wait_for(lambda: proxy.stripped == 2, timeout=5, what="both CONNECTs stripped")
            before = hub.rss_mb()
            with Peak(hub.pid) as peak:
                latency = _attack(broker, hub, victims=10)
            assert max(latency.values()) < 1.0, latency
            assert peak.mb - before < 10.0, f"RSS {before:.1f} -> peak {peak.mb:.1f} MB"
            hub.wait_for(lambda: "shuttle-01" in _raised(hub, "sender_refused"), timeout=5,
                         what="shuttle-01 named")
            alert = next(a for a in _alerts(hub) if a["rule"] == "sender_refused")
            assert alert["title"] == "Messages refused from vehicle shuttle-01"
            assert "oversize" in str(alert["detail"]) and "67,108,9" in str(alert["detail"])
            assert hub.metric("l4mon_mqtt_oversize_refused_total") == 1
            assert _quarantined(hub, "oversize") == 1
            assert hub.metric("l4mon_mqtt_disconnects_total") == 0
        with _hub(proxy.url, tmp_path) as again:  # same client id, same broker session
            time.sleep(1.0)
            assert again.metric("l4mon_mqtt_oversize_refused_total") == 0


def test_a_conforming_broker_never_sends_the_hub_an_oversized_publish(
        broker: Broker, tmp_path: Path) -> None:
    """A broker that honours the hub's Maximum Packet Size drops the 64 MB for the hub: the
    takeover requests behind it arrive within 1 s and the hub's memory does not move."""
    with _hub(broker.url, tmp_path) as hub:
        assert hub.metric("l4mon_mqtt_max_packet_bytes") == LIMIT
        before = hub.rss_mb()
        with Peak(hub.pid) as peak:
            latency = _attack(broker, hub, victims=5)
        assert max(latency.values()) < 1.0, latency
        assert peak.mb - before < 10.0
        assert hub.metric("l4mon_mqtt_oversize_refused_total") == 0  # it never came


def test_a_retained_takeover_request_raises_nothing(broker: Broker, tmp_path: Path) -> None:
    """A retained takeover_request on a vehicle's event topic, there before the hub starts
    with a fresh session: quarantined as retained_event, no takeover alert, the sender named;
    a retained state of the same vehicle is taken as its last known state."""
    state = msgspec.json.encode(VehicleState(
        ts=time.time(), seq=1, lat=36.0, lon=136.0, speed_mps=0.0, heading_deg=0.0,
        mode="autonomous"))
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="old-vehicle",
                      protocol=paho.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for topic, payload in [(event_topic(SITE, "ghost"), _takeover()),
                               (state_topic(SITE, "ghost"), state)]:
            pub.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()
    with _hub(broker.url, tmp_path) as hub:
        hub.wait_for(lambda: _quarantined(hub, "retained_event") == 1, timeout=5,
                     what="the retained event quarantined")
        hub.wait_for(lambda: "ghost" in _raised(hub, "sender_refused"), timeout=5,
                     what="ghost named")
        hub.wait_for(lambda: any(v["id"] == "ghost" for v in hub.json("/api/vehicles")),
                     timeout=5, what="ghost's retained state taken")
        assert "ghost" not in _raised(hub, "takeover_requested")
        items = hub.json("/api/quarantine", reason="retained_event")["items"]
        assert [i["topic"] for i in items] == [event_topic(SITE, "ghost")]


def test_the_hub_alerts_when_another_client_takes_its_session(
        broker: Broker, tmp_path: Path) -> None:
    """A client connecting with the hub's client id and reconnecting as the hub does: the
    broker closes the hub's connection each time (Mosquitto 2.0.11 without a reason; later
    ones say 0x8E); the hub counts it, raises hub_session_taken_over (a takeover), gets its
    session back once the client is gone, and a takeover request sent then reaches it."""
    with _hub(broker.url, tmp_path) as hub:
        intruder = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="l4mon-hub",
                               protocol=paho.MQTTv5)
        connected = threading.Event()
        intruder.on_connect = lambda *args: connected.set()
        intruder.connect(broker.host, broker.port)
        intruder.loop_start()
        try:
            assert connected.wait(10)
            hub.wait_for(lambda: any(a["rule"] == "hub_session_taken_over"
                                     for a in _alerts(hub)), timeout=15,
                         what="hub_session_taken_over raised")
            closes = hub.metric("l4mon_mqtt_closed_by_broker_total")
            said = hub.metric("l4mon_mqtt_session_taken_over_total")
            assert closes >= 3 or said >= 1, (closes, said)
        finally:
            intruder.disconnect()
            intruder.loop_stop()
        alert = next(a for a in _alerts(hub) if a["rule"] == "hub_session_taken_over")
        assert alert["severity"] == "takeover" and alert["vehicle"] is None
        assert "client id" in str(alert["detail"])
        hub.wait_for(lambda: hub.health()["mqtt"]["connected"], timeout=15,
                     what="the hub back on its session")
        time.sleep(0.3)
        with Publisher(broker.host, broker.port, client_id="after") as pub:
            pub.publish(event_topic(SITE, "v-after"), _takeover(), qos=1)
        hub.wait_for(lambda: "v-after" in _raised(hub, "takeover_requested"), timeout=5,
                     what="a takeover request after the intruder left")


# --- the deployment's broker -------------------------------------------------------------------

def test_the_deployed_broker_refuses_a_packet_over_the_hubs_bound(tmp_path: Path) -> None:
    """deploy/mosquitto/mosquitto.conf for real (TLS, the ACL): shuttle-01's 32 KiB state (sent
    over MQTT 3.1.1, which cannot know the limit) gets it disconnected before the broker reads
    it, and never reaches the hub; its normal state, after, does."""
    binary, certs = mosquitto_with_certs(tmp_path, "l4mon-hub-a", "shuttle-01")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(_render(certs, port))
    assert "max_packet_size 20480" in config.read_text()
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        settings = MqttSettings(url=f"mqtts://127.0.0.1:{port}", client_id="l4mon-hub-a",
                                ca_file=str(certs / "ca.crt"),
                                cert_file=str(certs / "l4mon-hub-a.crt"),
                                key_file=str(certs / "l4mon-hub-a.key"))
        big = b'{"pad":"' + b"x" * 32_768 + b'"}'
        ok = msgspec.json.encode(VehicleState(ts=time.time(), seq=1, lat=36.0, lon=136.0,
                                              speed_mps=1.0, heading_deg=0.0,
                                              mode="autonomous"))
        got, code, dropped = asyncio.run(_through_deployed(port, certs, settings, big, ok))
        assert dropped, "the broker did not disconnect the sender of a 32 KiB packet"
        assert code == 0
        assert [payload for _, payload, _ in got] == [ok]
        log = (certs / "mosquitto.log").read_text()
        assert "shuttle-01" in log
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        assert time.monotonic() < deadline, "mosquitto did not start listening"
        time.sleep(0.05)


def _old_client(port: int, certs: Path, lost: threading.Event) -> paho.Client:
    """shuttle-01 over MQTT 3.1.1 and TLS: it cannot be told the broker's maximum packet size."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="shuttle-01-311",
                         protocol=paho.MQTTv311)
    client.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(certs / "shuttle-01.crt"),
                   keyfile=str(certs / "shuttle-01.key"))
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.on_disconnect = lambda *args: lost.set()
    client.reconnect_delay_set(30, 30)  # one connection is what is measured
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10)
    return client


async def _through_deployed(port: int, certs: Path, settings: MqttSettings, big: bytes,
                            ok: bytes) -> tuple[Batch, int, bool]:
    got: Batch = []
    async with MqttSource(settings=settings) as hub:
        deadline = time.monotonic() + 10
        while not hub.status.connected:
            assert time.monotonic() < deadline, hub.status.last_error
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)

        def publish() -> tuple[int, bool]:
            lost = threading.Event()
            old = _old_client(port, certs, lost)
            try:
                old.publish(state_topic(SITE, "shuttle-01"), big, qos=1)
                dropped = lost.wait(10)
            finally:
                old.disconnect()
                old.loop_stop()
            vehicle = Vehicle(port, certs, "shuttle-01")
            try:
                return vehicle.publish(state_topic(SITE, "shuttle-01"), ok), dropped
            finally:
                vehicle.close()

        code, dropped = await asyncio.to_thread(publish)
        while ok not in [payload for _, payload, _ in got]:
            assert time.monotonic() < deadline + 10, got
            with contextlib.suppress(TimeoutError):
                got += await asyncio.wait_for(hub.__anext__(), 0.1)
        with contextlib.suppress(TimeoutError):  # anything else that came: it must not be big
            got += await asyncio.wait_for(hub.__anext__(), 0.3)
    return got, code, dropped
