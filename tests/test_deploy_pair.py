"""deploy/ for a hub pair, for real: the two hubs' example configs load with the hub's own
loader and make a pair; the systemd template starts the config of its instance; the Mosquitto
bridge pair (the committed broker config and ACL, plus bridge-a.conf / bridge-b.conf) runs on
two real brokers over mutual TLS and relays a message each way exactly once."""

from __future__ import annotations

import configparser
import contextlib
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from l4mon.config import HubConfig, load_config
from telemetry.register import load_register
from testing.broker import free_port
from testing.demo import stop_process
from tests.test_mosquitto_acl import DEPLOY as MOSQUITTO
from tests.test_mosquitto_acl import _render, mosquitto_with_certs, tls_client

DEPLOY = MOSQUITTO.parent
PAIR = DEPLOY / "pair"


def _pair() -> tuple[HubConfig, HubConfig]:
    return load_config(PAIR / "hub-a.toml"), load_config(PAIR / "hub-b.toml")


def test_the_pair_configs_load_and_make_a_pair() -> None:
    """Both validate; one PostgreSQL journal; own MQTT client ids and certificates; each its
    own URL, listed in both peer lists; the same settings otherwise, but for each hub's
    broker."""
    a, b = _pair()
    assert a.alerts.journal == b.alerts.journal
    assert a.alerts.journal.startswith("postgresql://")
    assert a.mqtt.client_id != b.mqtt.client_id
    assert a.ha.url and b.ha.url and a.ha.url != b.ha.url
    assert set(a.ha.peers) == set(b.ha.peers) == {a.ha.url, b.ha.url}
    assert a.mqtt.url != b.mqtt.url  # each hub on its own broker of the bridge pair
    # The broker makes a client's id its certificate's name: each hub its own certificate,
    # named as its client id, a hub of the site register whose ACL the brokers run.
    hubs = load_register(MOSQUITTO / "register.example.toml").file.hubs
    for hub in (a, b):
        assert Path(hub.mqtt.cert_file).stem == Path(hub.mqtt.key_file).stem == hub.mqtt.client_id
        assert hub.mqtt.client_id in hubs
        # Its command connection too: a certificate named as its command client id.
        assert Path(hub.mqtt.command_cert_file).stem == Path(hub.mqtt.command_key_file).stem \
            == f"{hub.mqtt.client_id}-commands"
    same = {"mqtt": {"client_id", "url", "cert_file", "key_file", "command_cert_file",
                     "command_key_file"}, "ha": {"url"}}
    for section in ("mqtt", "http", "alerts", "ha", "auth", "ingest", "links"):
        left, right = getattr(a, section), getattr(b, section)
        differ = {f for f in left.__struct_fields__ if getattr(left, f) != getattr(right, f)}
        assert differ <= same.get(section, set()), (section, differ)


def test_the_systemd_template_runs_its_instance_config() -> None:
    """``l4mon-hub@a`` runs ``serve --config /etc/l4mon/hub-a.toml`` (the instance name picks
    the file), restarts on failure, and stops with SIGTERM, which frees the lock at once."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "l4mon-hub@.service")
    service = unit["Service"]
    assert "serve --config /etc/l4mon/hub-%i.toml" in service["ExecStart"]
    assert service["Restart"] == "always" and service["KillSignal"] == "SIGTERM"
    assert "mosquitto.service" in unit["Unit"]["After"]
    readme = (PAIR / "README.md").read_text()
    assert "/etc/l4mon/hub-a.toml" in readme and "l4mon-hub@a" in readme


# -- the Mosquitto bridge pair ------------------------------------------------------------------


def _broker_config(certs: Path, port: int, bridge: str, peer_port: int, log: Path) -> str:
    """mosquitto.conf as tests/test_mosquitto_acl.py renders it, plus the bridge file with the
    other broker's address and the certificates made local; every substitution must apply."""
    text = _render(certs, port).replace(str(certs / "mosquitto.log"), str(log))
    bridge_text = (MOSQUITTO / bridge).read_text()
    needed = [("/etc/mosquitto/l4mon/", f"{certs}/"),
              ("mqtt-b.depot.example:8883", f"127.0.0.1:{peer_port}")]
    for old, new in needed if bridge == "bridge-a.conf" else []:
        assert old in bridge_text, f"deploy/mosquitto/{bridge} no longer has {old!r}"
        bridge_text = bridge_text.replace(old, new)
    return f"{text}\n{bridge_text}"


def _start_broker(binary: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    """One mosquitto running ``config``, returned once its port accepts connections."""
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        if time.monotonic() >= deadline:
            stop_process(proc)  # type: ignore[arg-type]
            pytest.fail("mosquitto did not start listening")
        time.sleep(0.05)


@contextlib.contextmanager
def _brokers(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """(port A, port B, certificate dir) of two brokers bridged by the committed files.

    B, the bridge's far end, listens before A starts: A's bridge connects at its first try.
    Started together, a B that came up late (under load) refused that try and the bridge
    waited out ``restart_timeout``'s back-off, seconds, before it carried anything."""
    binary, certs = mosquitto_with_certs(tmp_path, "l4mon-hub-a", "l4mon-hub-b", "l4mon-bridge",
                                         "shuttle-01", "shuttle-02")
    ports = {"a": free_port(), "b": free_port()}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, peer in (("b", "a"), ("a", "b")):
            config = tmp_path / f"broker-{name}.conf"
            config.write_text(_broker_config(certs, ports[name], f"bridge-{name}.conf",
                                             ports[peer], tmp_path / f"broker-{name}.log"))
            procs.append(_start_broker(binary, config, ports[name]))
        yield ports["a"], ports["b"], certs
    finally:
        for proc in procs:
            stop_process(proc)  # type: ignore[arg-type]


class Client:
    """paho over mutual TLS with one certificate of the test CA; keeps what it receives."""

    def __init__(self, port: int, certs: Path, name: str, client_id: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = tls_client(port, certs, name, client_id, on_message=self._on_message)

    def _on_message(self, _client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.got.append((message.topic, message.payload))

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.got)

    def count(self, payload: bytes) -> int:
        with self._lock:
            return sum(p == payload for _, p in self.got)

    def subscribe(self, topic: str) -> None:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _until(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


#: How long the bridge may take to carry its first message each way: its first connection, or
#: one retry of ``restart_timeout 1 30``'s back-off (capped at 30 s) if that one failed.
BRIDGE_UP_S = 40.0
TOPIC_A = "l4mon/v1/depot/vehicle/shuttle-01/event"
TOPIC_B = "l4mon/v1/depot/vehicle/shuttle-02/event"


def _wait_for_the_bridge(veh_a: Client, veh_b: Client, hub_a: Client, hub_b: Client,
                         log: Path) -> None:
    """Return once the bridge has carried a message each way, end to end.

    Each probe names the broker it was published on: a hub gets its own broker's probes
    locally, so only one from the other broker proves the bridge (the same payload on both
    sides let local delivery pass for the bridge). Probes repeat until one of each has
    crossed, because a message published on B before the bridge has subscribed there is
    never relayed (A, by contrast, queues its own for the bridge's persistent session)."""
    deadline = time.monotonic() + BRIDGE_UP_S
    n = 0
    while time.monotonic() < deadline:
        veh_a.publish(TOPIC_A, f"probe-a-{n}".encode())
        veh_b.publish(TOPIC_B, f"probe-b-{n}".encode())
        if _until(lambda: any(p.startswith(b"probe-a-") for _, p in hub_b.received()) and
                  any(p.startswith(b"probe-b-") for _, p in hub_a.received()), 0.2):
            return
        n += 1
    pytest.fail(f"the bridge carried nothing each way within {BRIDGE_UP_S:.0f} s\n"
                f"{log.read_text()[-2000:]}")


@pytest.mark.mqtt
def test_the_bridge_pair_relays_each_way_exactly_once(tmp_path: Path) -> None:
    """A vehicle's event published on broker A reaches a hub subscribed on B, one published
    on B reaches a hub on A; each arrives exactly once on each broker (no loop)."""
    with _brokers(tmp_path) as (port_a, port_b, certs):
        # The names of deploy/mosquitto/register.example.toml, whose ACL the brokers run; each
        # hub its own certificate (the broker makes the client id the certificate's name).
        hub_a = Client(port_a, certs, "l4mon-hub-a", "l4mon-hub-a")
        hub_b = Client(port_b, certs, "l4mon-hub-b", "l4mon-hub-b")
        veh_a = Client(port_a, certs, "shuttle-01", "shuttle-01")
        veh_b = Client(port_b, certs, "shuttle-02", "shuttle-02")
        try:
            for hub in (hub_a, hub_b):
                hub.subscribe("l4mon/v1/#")
            _wait_for_the_bridge(veh_a, veh_b, hub_a, hub_b, tmp_path / "broker-a.log")
            veh_a.publish(TOPIC_A, b"from-a")
            veh_b.publish(TOPIC_B, b"from-b")
            assert _until(lambda: hub_b.count(b"from-a") and hub_a.count(b"from-b"), 10)
            time.sleep(1.0)  # a loop would have made thousands by now
            counts = {(hub, payload): client.count(payload)
                      for hub, client in (("a", hub_a), ("b", hub_b))
                      for payload in (b"from-a", b"from-b")}
            assert counts == dict.fromkeys(counts, 1), counts
            # Probes too: each publish once per hub, whichever way it came (how many of them
            # crossed depends on when the bridge came up, so their number is not compared).
            for name, hub in (("a", hub_a), ("b", hub_b)):
                twice = [p for p, k in Counter(p for _, p in hub.received()).items() if k > 1]
                assert not twice, (name, twice[:5])
        finally:
            for client in (hub_a, hub_b, veh_a, veh_b):
                client.close()
