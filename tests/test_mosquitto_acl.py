"""deploy/mosquitto/ for real: the committed config and ACL in a real Mosquitto over TLS on
loopback, with certificates from the committed make-certs.sh. A vehicle publishes under its
own topic, as a vehicle, on its own site; its publish under another vehicle's topic, as an RSU
or elsewhere never reaches the hub. No client can take the hub's session."""

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

from l4mon.clock import LiveClock
from l4mon.commands.connection import command_client_id, command_source
from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.ingest.publisher import NotSent
from l4mon.mosquitto_acl import acl_text
from l4mon.types import Batch
from telemetry.commands import (
    Command,
    CommandAnswer,
    answer_topic,
    command_topic,
    decode_command,
    encode,
)
from telemetry.quarantine import Quarantine
from telemetry.register import load_register
from telemetry.topics import event_topic, rsu_topic, state_topic
from telemetry.wire import RsuStatus, VehicleEvent, VehicleState
from testing.broker import find_mosquitto, free_port
from testing.demo import stop_process
from tests.parts import require_part

pytestmark = pytest.mark.mqtt

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
NOT_AUTHORIZED = 0x87
#: Accepted, with nobody subscribed to hear it (MQTT v5 PUBACK 0x10): not a refusal.
NO_SUBSCRIBERS = 0x10
#: Names of deploy/mosquitto/register.example.toml, whose ACL is the committed acl.
HUB, VEHICLE, OTHER_VEHICLE, RSU = "l4mon-hub-a", "shuttle-01", "shuttle-02", "rsu-araya"
#: The hub's command identity: its command connection's certificate name and ACL user.
HUB_COMMANDS = command_client_id(HUB)
SITE = "depot"


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
    binary, certs = mosquitto_with_certs(tmp_path, HUB, HUB_COMMANDS, VEHICLE, OTHER_VEHICLE,
                                         RSU, "stranger")
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

    def __init__(self, port: int, certs: Path, name: str, client_id: str | None = None) -> None:
        self.acks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.client = tls_client(port, certs, name, client_id or f"{name}-test",
                                 on_publish=self._on_publish)

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


def _rsu_status() -> bytes:
    """What the issue's vehicle posing as an RSU sent: a fault, snow, stale V2I."""
    return msgspec.json.encode(RsuStatus(ts=time.time(), seq=1, intersection="ix-1",
                                         health="fault", weather="snow"))


def _hub_settings(port: int, certs: Path, *, own_command_cert: bool = True) -> MqttSettings:
    """The hub as deploy/mosquitto/README.md configures it: its certificate, and its command
    connection's own (or, ``own_command_cert=False``, the hub's, which the broker forbids)."""
    command = {"command_cert_file": str(certs / f"{HUB_COMMANDS}.crt"),
               "command_key_file": str(certs / f"{HUB_COMMANDS}.key")} if own_command_cert \
        else {}
    return MqttSettings(url=f"mqtts://127.0.0.1:{port}", client_id=HUB,
                        ca_file=str(certs / "ca.crt"), cert_file=str(certs / f"{HUB}.crt"),
                        key_file=str(certs / f"{HUB}.key"), **command)


def _command_source(settings: MqttSettings) -> MqttSource:
    return command_source(settings, quarantine=Quarantine(), clock=LiveClock(),
                          max_payload_bytes=16_384)


async def _connected(hub: MqttSource) -> None:
    deadline = time.monotonic() + 10
    while not hub.status.connected:
        assert time.monotonic() < deadline, f"hub did not connect: {hub.status.last_error}"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # let the broker apply the subscription


async def _until_received(hub: MqttSource, got: Batch, done: object, timeout_s: float) -> None:
    """Take the hub's batches into ``got`` until ``done()`` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{len(got)} received"
        with contextlib.suppress(TimeoutError):
            got += await asyncio.wait_for(hub.__anext__(), 0.1)


def test_the_committed_acl_is_what_the_register_writes() -> None:
    """deploy/mosquitto/acl is `l4mon acl register.example.toml`, byte for byte: the file the
    broker runs cannot drift from the register the hub checks."""
    register = load_register(DEPLOY / "register.example.toml")
    assert (DEPLOY / "acl").read_text() == acl_text(register)
    lines = (DEPLOY / "acl").read_text().splitlines()
    assert not [line for line in lines if line.startswith("pattern")]


def test_a_vehicle_publishes_only_under_its_own_topic(tls_broker: tuple[int, Path]) -> None:
    """shuttle-01's own state reaches the hub (subscribed over TLS with its own certificate);
    its publishes as shuttle-02, as RSU rsu-araya, as an RSU under its own name (the issue's
    attack) and on another site are refused by the broker and never arrive."""
    port, certs = tls_broker
    own, sentinel = _state(1), _state(3)
    spoofed = [(state_topic(SITE, OTHER_VEHICLE), _state(2)),
               (rsu_topic(SITE, RSU), _rsu_status()),
               (rsu_topic(SITE, VEHICLE), _rsu_status()),
               (state_topic("other-site", VEHICLE), _state(2))]

    async def scenario() -> tuple[Batch, list[int]]:
        got: Batch = []
        async with MqttSource(settings=_hub_settings(port, certs)) as hub:
            await _connected(hub)

            def publish() -> list[int]:
                vehicle = Vehicle(port, certs, VEHICLE)
                try:
                    return [vehicle.publish(state_topic(SITE, VEHICLE), own),
                            *(vehicle.publish(t, p) for t, p in spoofed),
                            vehicle.publish(state_topic(SITE, VEHICLE), sentinel)]
                finally:
                    vehicle.close()

            codes = await asyncio.to_thread(publish)
            await _until_received(hub, got, lambda: sentinel in [p for _, p, _ in got], 20)
        return got, codes

    got, codes = asyncio.run(scenario())
    assert codes == [0, *[NOT_AUTHORIZED] * len(spoofed), 0]
    assert [(topic, payload) for topic, payload, _ in got] == [
        (state_topic(SITE, VEHICLE), own), (state_topic(SITE, VEHICLE), sentinel)]


def test_an_rsu_publishes_only_as_an_rsu_and_a_stranger_not_at_all(
        tls_broker: tuple[int, Path]) -> None:
    """rsu-araya's status goes through; its state as a vehicle under its own name does not.
    A certificate of the CA whose name the register lacks connects, but publishes nothing."""
    port, certs = tls_broker

    def publish() -> list[int]:
        rsu, stranger = Vehicle(port, certs, RSU), Vehicle(port, certs, "stranger")
        try:
            return [rsu.publish(rsu_topic(SITE, RSU), _rsu_status()),
                    rsu.publish(state_topic(SITE, RSU), _state(1)),
                    stranger.publish(state_topic(SITE, "stranger"), _state(1)),
                    stranger.publish(rsu_topic(SITE, "stranger"), _rsu_status())]
        finally:
            rsu.close()
            stranger.close()

    assert publish() == [NO_SUBSCRIBERS, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED]


#: The issue's measurement: how often the vehicle tries the hub's client id, and the events.
TAKEOVER_TRIES = 20
EVENTS = 100


def test_a_vehicle_cannot_take_the_hubs_session(tls_broker: tuple[int, Path]) -> None:
    """shuttle-01's certificate connects 20 times with the client id "l4mon-hub-a" while
    shuttle-02 publishes 100 QoS 1 events: the broker makes each of those connections session
    "shuttle-01" (use_username_as_clientid), so the hub's connection is never closed and every
    event the broker acknowledged reaches the hub (with the issue's config: 18 drops, 16 of
    100 lost)."""
    port, certs = tls_broker
    events = [msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request", seq=i))
              for i in range(EVENTS)]

    async def scenario() -> tuple[Batch, list[int], int, int]:
        got: Batch = []
        async with MqttSource(settings=_hub_settings(port, certs)) as hub:
            await _connected(hub)
            connects = hub.status.connects

            def attack() -> None:
                for _ in range(TAKEOVER_TRIES):
                    intruder = Vehicle(port, certs, VEHICLE, client_id=HUB)
                    time.sleep(0.05)
                    intruder.close()

            def publish() -> list[int]:
                sender = Vehicle(port, certs, OTHER_VEHICLE)
                try:
                    return [sender.publish(event_topic(SITE, OTHER_VEHICLE), e) for e in events]
                finally:
                    sender.close()

            _, codes = await asyncio.gather(asyncio.to_thread(attack),
                                            asyncio.to_thread(publish))
            await _until_received(hub, got, lambda: len(got) >= EVENTS, 20)
            with contextlib.suppress(TimeoutError):  # a redelivery would show here
                got += await asyncio.wait_for(hub.__anext__(), 0.5)
            return got, codes, hub.status.connects - connects, hub.status.disconnects

    got, codes, reconnects, disconnects = asyncio.run(scenario())
    assert codes == [0] * EVENTS
    assert sorted(p for _, p, _ in got) == sorted(events)
    assert (reconnects, disconnects) == (0, 0)


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


def test_only_the_hubs_command_identity_commands_a_vehicle(
        tls_broker: tuple[int, Path]) -> None:
    """With the committed ACL: the hub's command, published on its command connection (its
    own certificate, l4mon-hub-a-commands), reaches shuttle-02; the same command on the hub's
    telemetry connection is refused by the broker (not authorized), and so are shuttle-01's
    commands to shuttle-02 and to itself, and a stranger's: none of them arrives. shuttle-01
    may answer on its own command_ack topic, not on shuttle-02's."""
    port, certs = tls_broker
    commands: list[bytes] = []
    subscribed = threading.Event()

    def on_message(_client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        commands.append(message.payload)

    target = tls_client(port, certs, OTHER_VEHICLE, f"{OTHER_VEHICLE}-test",
                        on_message=on_message,
                        on_subscribe=lambda *args: subscribed.set())
    target.subscribe(command_topic(SITE, OTHER_VEHICLE), qos=1)
    assert subscribed.wait(10)

    def command(sender: str) -> bytes:
        return encode(Command(id=f"from-{sender}", kind="stop", ts=time.time(), by=sender))

    def forged() -> list[int]:
        vehicle, stranger = Vehicle(port, certs, VEHICLE), Vehicle(port, certs, "stranger")
        answer = encode(CommandAnswer(id="x", status="received", ts=time.time()))
        try:
            return [vehicle.publish(command_topic(SITE, OTHER_VEHICLE), command(VEHICLE)),
                    vehicle.publish(command_topic(SITE, VEHICLE), command(VEHICLE)),
                    stranger.publish(command_topic(SITE, OTHER_VEHICLE), command("stranger")),
                    vehicle.publish(answer_topic(SITE, OTHER_VEHICLE), answer),
                    vehicle.publish(answer_topic(SITE, VEHICLE), answer)]
        finally:
            vehicle.close()
            stranger.close()

    async def scenario() -> tuple[list[int], str, str]:
        codes = await asyncio.to_thread(forged)
        settings = _hub_settings(port, certs)
        async with MqttSource(settings=settings) as hub, _command_source(settings) as channel:
            await _connected(hub)
            await _connected(channel)
            try:
                await hub.publisher.publish(command_topic(SITE, OTHER_VEHICLE), command(HUB))
                refused = "sent"
            except NotSent as error:
                refused = error.reason
            note = await channel.publisher.publish(command_topic(SITE, OTHER_VEHICLE),
                                                   command(HUB_COMMANDS))
        return codes, refused, note

    try:
        codes, refused, note = asyncio.run(scenario())
        deadline = time.monotonic() + 10
        while not commands and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a forged command that slipped through would be here by now
    finally:
        target.disconnect()
        target.loop_stop()
    assert codes == [NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED,
                     NO_SUBSCRIBERS]
    assert "not authorized" in refused
    assert note == ""  # accepted, and shuttle-02 was subscribed
    assert [decode_command(c).id for c in commands] == [f"from-{HUB_COMMANDS}"]


def test_the_command_connection_hears_answers_and_takes_no_session(
        tls_broker: tuple[int, Path]) -> None:
    """Telemetry and command connections up side by side under the committed config: an
    answer of shuttle-01 reaches the command connection (and a state of it only the
    telemetry one); neither connection loses its session, so no takeover is detected. With
    the hub's own certificate instead, the broker names both connections l4mon-hub-a
    (use_username_as_clientid) and the telemetry connection's session is taken over: why
    the command connection has a certificate of its own."""
    port, certs = tls_broker
    answer = encode(CommandAnswer(id="c-1", status="received", ts=time.time()))

    async def side_by_side(settings: MqttSettings, *, talk: bool) -> tuple[Batch, Batch, int,
                                                                           int]:
        heard: Batch = []
        telemetry: Batch = []
        async with MqttSource(settings=settings) as hub, _command_source(settings) as channel:
            await _connected(hub)
            await asyncio.sleep(0.5)  # a takeover would have happened by now
            if talk:
                def publish() -> None:
                    vehicle = Vehicle(port, certs, VEHICLE)
                    try:
                        assert vehicle.publish(answer_topic(SITE, VEHICLE), answer) == 0
                        assert vehicle.publish(state_topic(SITE, VEHICLE), _state(1)) == 0
                    finally:
                        vehicle.close()

                await _connected(channel)
                await asyncio.to_thread(publish)
                await _until_received(channel, heard, lambda: heard, 10)
                await _until_received(hub, telemetry, lambda: len(telemetry) >= 2, 10)
                with contextlib.suppress(TimeoutError):  # the state would show here
                    heard += await asyncio.wait_for(channel.__anext__(), 0.3)
            takeovers = hub.status.session_takeovers + channel.status.session_takeovers
            return heard, telemetry, takeovers, hub.status.disconnects

    heard, telemetry, takeovers, disconnects = asyncio.run(
        side_by_side(_hub_settings(port, certs), talk=True))
    assert [(t, p) for t, p, _ in heard] == [(answer_topic(SITE, VEHICLE), answer)]
    assert {t for t, _, _ in telemetry} == {answer_topic(SITE, VEHICLE),
                                            state_topic(SITE, VEHICLE)}
    assert (takeovers, disconnects) == (0, 0)

    _, _, takeovers, disconnects = asyncio.run(
        side_by_side(_hub_settings(port, certs, own_command_cert=False), talk=False))
    assert takeovers + disconnects > 0
