"""deploy/mosquitto/ for real: the committed config and ACL in a real Mosquitto over TLS on
loopback, with certificates from the committed make-certs.sh. A vehicle publishes under its
own topic; its publish under another vehicle's topic never reaches the hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
import pytest

from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.types import Batch
from telemetry.topics import rsu_topic, state_topic
from telemetry.wire import VehicleState
from testing.broker import find_mosquitto, free_port
from testing.demo import stop_process
from tests.parts import require_part

pytestmark = pytest.mark.mqtt

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
NOT_AUTHORIZED = 0x87


def _render(certs: Path, port: int) -> str:
    """The committed mosquitto.conf with port, paths and logging made local; the ACL file is
    the committed one itself. Every substitution must apply, so the file cannot drift away."""
    text = (DEPLOY / "mosquitto.conf").read_text()
    for old, new in [("listener 8883", f"listener {port} 127.0.0.1"),
                     ("/etc/mosquitto/l4mon/acl", str(DEPLOY / "acl")),
                     ("/etc/mosquitto/l4mon/", f"{certs}/"),
                     ("persistence true", "persistence false"),
                     ("log_dest syslog", f"log_dest file {certs / 'mosquitto.log'}")]:
        assert old in text, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
        text = text.replace(old, new)
    # As root, mosquitto would drop to user "mosquitto", which cannot read the temp dir.
    return text + ("user root\n" if os.geteuid() == 0 else "")


def mosquitto_with_certs(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """The mosquitto binary and a fresh test CA with a certificate for 127.0.0.1 and each of
    ``names`` (deploy/mosquitto/make-certs.sh); both tools are parts (tests/parts.py)."""
    require_part("mosquitto", "openssl")
    binary = find_mosquitto()
    certs = tmp_path / "certs"
    subprocess.run([str(DEPLOY / "make-certs.sh"), str(certs), "127.0.0.1", *names],
                   check=True, capture_output=True)
    return Path(binary), certs


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """(port, certificate dir) of a Mosquitto running the committed TLS + ACL config."""
    binary, certs = mosquitto_with_certs(tmp_path, "l4mon-hub", "veh-a", "veh-b")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(_render(certs, port))
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, f"mosquitto exited: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "mosquitto did not start listening"
            time.sleep(0.05)
        yield port, certs
    finally:
        stop_process(proc)  # type: ignore[arg-type]


def tls_client(port: int, certs: Path, name: str, client_id: str,
               **callbacks: object) -> paho.Client:
    """A paho MQTT v5 client connected over mutual TLS with the test CA's certificate
    ``name``, its network loop running; ``callbacks`` are set before it connects."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    client.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(certs / f"{name}.crt"),
                   keyfile=str(certs / f"{name}.key"))
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    for attribute, callback in callbacks.items():
        setattr(client, attribute, callback)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), f"{name} could not connect over TLS"
    return client


class Vehicle:
    """A paho MQTT v5 client over TLS with one client certificate; remembers PUBACK codes."""

    def __init__(self, port: int, certs: Path, name: str) -> None:
        self.acks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.client = tls_client(port, certs, name, f"{name}-test", on_publish=self._on_publish)

    def _on_publish(self, _client: object, _userdata: object, mid: int, reason: object,
                    _props: object) -> None:
        with self._acked:
            self.acks[mid] = int(reason.value)  # type: ignore[attr-defined]
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.acks, 10), "no PUBACK"
            return self.acks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _state(seq: int) -> bytes:
    return msgspec.json.encode(VehicleState(ts=time.time(), seq=seq, lat=36.0, lon=136.0,
                                            speed_mps=1.0, heading_deg=0.0, mode="autonomous"))


def test_a_vehicle_publishes_only_under_its_own_topic(tls_broker: tuple[int, Path]) -> None:
    """veh-a's own state reaches the hub (subscribed over TLS with its own certificate); its
    publishes as veh-b or as RSU rsu-1 are refused by the broker and never arrive."""
    port, certs = tls_broker
    settings = MqttSettings(url=f"mqtts://127.0.0.1:{port}", client_id="l4mon-hub",
                            ca_file=str(certs / "ca.crt"), cert_file=str(certs / "l4mon-hub.crt"),
                            key_file=str(certs / "l4mon-hub.key"))
    own, spoofed, sentinel = _state(1), _state(2), _state(3)

    async def scenario() -> tuple[Batch, list[int]]:
        got: Batch = []
        async with MqttSource(settings=settings) as hub:
            deadline = time.monotonic() + 10
            while not hub.status.connected:
                assert time.monotonic() < deadline, f"hub did not connect: {hub.status.last_error}"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # let the broker apply the subscription

            def publish() -> list[int]:
                vehicle = Vehicle(port, certs, "veh-a")
                try:
                    return [vehicle.publish(state_topic("depot", "veh-a"), own),
                            vehicle.publish(state_topic("depot", "veh-b"), spoofed),
                            vehicle.publish(rsu_topic("depot", "rsu-1"), spoofed),
                            vehicle.publish(state_topic("other-site", "veh-a"), sentinel)]
                finally:
                    vehicle.close()

            codes = await asyncio.to_thread(publish)
            while sentinel not in [payload for _, payload, _ in got]:
                assert time.monotonic() < deadline + 10, got
                with contextlib.suppress(TimeoutError):
                    got += await asyncio.wait_for(hub.__anext__(), 0.1)
        return got, codes

    got, codes = asyncio.run(scenario())
    assert codes == [0, NOT_AUTHORIZED, NOT_AUTHORIZED, 0]
    assert [(topic, payload) for topic, payload, _ in got] == [
        (state_topic("depot", "veh-a"), own), (state_topic("other-site", "veh-a"), sentinel)]


def test_a_client_without_a_certificate_cannot_connect(tls_broker: tuple[int, Path]) -> None:
    """require_certificate: TLS alone (server verified, no client certificate) gets no CONNACK."""
    port, certs = tls_broker
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"  # MQTT 3.1.1, empty id
    answer = b"never sent"
    try:
        with socket.create_connection(("127.0.0.1", port), 5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(connect)
            answer = tls.recv(4)  # TLS 1.3: the broker's refusal arrives here
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b"", f"the broker answered {answer!r} to a client without a certificate"
