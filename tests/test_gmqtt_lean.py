"""The hub's lean PUBLISH path on a real gmqtt client, against gmqtt's own path, and the
start-up self-check that guards it.

Packets are fed to the client's package handler as gmqtt's protocol would (fixed header byte,
body); the same packets through an untouched client give what gmqtt itself makes of them.
Through a real broker the path is exercised by the MQTT ingest tests and tests/test_ack_paths.py.

Upgrading gmqtt: these tests (``-k "self_check or lean"``) and tests/test_ack_paths.py are the
ones to run against the new version before its pin moves (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path
from types import SimpleNamespace

import gmqtt
import httpx
import pytest
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.package import Package
from hypothesis import given, settings
from hypothesis import strategies as st

from l4mon.assembly import build_runtime
from l4mon.auth import hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.ingest import _gmqtt
from l4mon.ingest._gmqtt import install_lean_publish
from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.mqtt import MqttSettings, MqttStatus
from l4mon.types import Delivery


def publish(topic: bytes, payload: bytes, *, qos: int = 0, props: bytes = b"",
            retain: bool = False) -> Package:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", 7)
    body += bytes([len(props)]) + props + payload
    return Package(0x30 | (qos << 1) | int(retain), body)


def clients() -> tuple[list[Delivery], list[tuple], gmqtt.Client]:
    lean_out: list = []
    general_out: list[tuple] = []
    client = gmqtt.Client("lean-test")
    client._connection_state.protocol_version = MQTTv50

    def on_message(_c: object, topic: str, payload: bytes, qos: int, props: dict) -> int:
        general_out.append((topic, payload, qos, props.get("content_type")))
        return 0

    client.on_message = on_message
    assert install_lean_publish(client, lambda *delivery: lean_out.append(delivery))
    return lean_out, general_out, client


def test_plain_qos0_publish_takes_the_lean_path_with_topic_and_payload_intact() -> None:
    lean, general, client = clients()
    body = b'{"ts": 1.0, "seq": 1}'
    client._package_handler(publish("l4mon/v1/s/vehicle/v-é/state".encode(), body))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/link/lte", b"", retain=True))
    assert lean == [(("l4mon/v1/s/vehicle/v-é/state", body, None),),
                    (("l4mon/v1/s/vehicle/v1/link/lte", b"", None),)]
    assert general == []


def _acks(client: gmqtt.Client) -> list[tuple]:
    """The commands the client sends on its connection (a PUBACK is (0x40, packet id, ...))."""
    acks: list[tuple] = []
    client._connection = SimpleNamespace(
        send_command_with_mid=lambda *args, **kwargs: acks.append(args))
    return acks


def test_content_types_take_the_lean_path_and_qos1_waits_for_processing() -> None:
    lean, general, client = clients()
    acks = _acks(client)
    content_type = b"\x03" + struct.pack("!H", 19) + b"application/msgpack"
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/state", b"\x80",
                                    props=content_type))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/event", b"\x81", qos=1,
                                    props=content_type))
    assert general == []
    assert lean[0] == (("l4mon/v1/s/vehicle/v1/state", b"\x80", "application/msgpack"),)
    (delivery, ack) = lean[1]
    assert delivery == ("l4mon/v1/s/vehicle/v1/event", b"\x81", "application/msgpack")
    assert acks == []  # nothing acknowledged before the hub processed it
    ack()
    assert [(a[0], a[1]) for a in acks] == [(0x40, 7)]


def test_with_the_identity_check_user_properties_come_along() -> None:
    got: list[tuple] = []
    client = gmqtt.Client("lean-identity")
    client.on_message = lambda *args: pytest.fail("took gmqtt's path")
    acks = _acks(client)
    assert install_lean_publish(client, lambda *_: pytest.fail("not checked"),
                                lambda *args: got.append(args))

    def user(name: bytes, value: bytes) -> bytes:
        return b"\x26" + struct.pack("!H", len(name)) + name + struct.pack("!H", len(value)) \
            + value

    props = user(b"l4mon-client", b"v1") + user(b"l4mon-client", b"v2")
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/state", b"{}", props=props))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/event", b"{}", qos=1))
    assert got[0] == (("l4mon/v1/s/vehicle/v1/state", b"{}", None),
                      [("l4mon-client", "v1"), ("l4mon-client", "v2")])
    delivery, users, ack = got[1]
    assert (delivery, tuple(users), acks) == (("l4mon/v1/s/vehicle/v1/event", b"{}", None), (),
                                              [])
    ack()
    assert [(a[0], a[1]) for a in acks] == [(0x40, 7)]


def test_topic_aliases_and_qos2_take_gmqtts_path() -> None:
    lean, general, client = clients()
    _acks(client)
    alias = b"\x23" + struct.pack("!H", 1)
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/state", b"{}", props=alias))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/event", b"{}", qos=2))
    assert lean == []
    assert [(g[0], g[2]) for g in general] == [("l4mon/v1/s/vehicle/v1/state", 0),
                                               ("l4mon/v1/s/vehicle/v1/event", 2)]


def test_a_plain_qos1_event_is_acknowledged_only_when_its_batch_is_processed() -> None:
    lean, general, client = clients()
    acks: list[tuple] = []
    client._connection = SimpleNamespace(
        send_command_with_mid=lambda *args, **kwargs: acks.append(args))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/event", b'{"kind":"x"}', qos=1))
    assert general == []
    ((delivery, ack),) = lean
    assert delivery == ("l4mon/v1/s/vehicle/v1/event", b'{"kind":"x"}', None)
    assert acks == []  # nothing acknowledged yet
    ack()
    assert [(a[0], a[1]) for a in acks] == [(0x40, 7)]  # PUBACK, packet id 7


def test_a_topic_that_is_not_utf8_is_left_to_gmqtt() -> None:
    lean, general, client = clients()
    client._package_handler(publish(b"l4mon/\xff/x", b"{}"))
    assert lean == []
    assert [g[0] for g in general] == [b"l4mon/\xff/x"]  # gmqtt passes the raw bytes on


def test_not_installed_for_mqtt_311() -> None:
    client = gmqtt.Client("lean-test-311")
    client._connection_state.protocol_version = 4
    assert install_lean_publish(client, lambda _d: None) is False


def test_the_buffer_runs_then_after_the_consumer_processed_the_batch() -> None:
    async def scenario() -> list[str]:
        buffer = BatchBuffer(capacity=3)
        seen: list[str] = []
        buffer.put(("t", b"1", None))
        buffer.put(("t", b"2", None), lambda: seen.append("ack 2"))
        batches = aiter(buffer)
        first = await anext(batches)
        seen.append(f"processing {len(first)}")
        buffer.put(("t", b"3", None), lambda: seen.append("ack 3"))
        second = await anext(batches)  # asking again: the first batch is processed
        seen.append(f"processing {len(second)}")
        for _ in range(3):
            buffer.put(("t", b"x", None))
        buffer.put(("t", b"x", None))  # telemetry over capacity: dropped
        # An event to acknowledge over capacity is kept: dropped, it would hold a broker
        # in-flight slot unacknowledged until a reconnect.
        buffer.put(("t", b"event", None), lambda: seen.append("ack event"))
        buffer.close()
        rest = await anext(batches)
        seen.append(f"processing {len(rest)}")
        try:
            await anext(batches)
        except StopAsyncIteration:
            seen.append("end")
        return seen

    assert asyncio.run(scenario()) == ["processing 2", "ack 2", "processing 1", "ack 3",
                                       "processing 4", "ack event", "end"]


# --- Any PUBLISH, both paths: the lean path yields exactly what gmqtt does --------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_property = st.one_of(
    st.tuples(st.just(0x01), st.integers(0, 1)),
    st.tuples(st.just(0x02), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(0x03), _text),
    st.tuples(st.just(0x08), _text.filter(bool)),
    st.tuples(st.just(0x09), st.binary(max_size=20)),
    st.tuples(st.just(0x0B), st.integers(1, 2**28 - 1)),
    st.tuples(st.just(0x26), st.tuples(_text, _text)),
)


def _encode(pid: int, value: object) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("!H", len(raw)) + raw

    if pid == 0x01:
        return bytes([pid, value])  # type: ignore[list-item]
    if pid == 0x02:
        return bytes([pid]) + struct.pack("!L", value)
    if pid in (0x03, 0x08):
        return bytes([pid]) + s(value)  # type: ignore[arg-type]
    if pid == 0x09:
        return bytes([pid]) + struct.pack("!H", len(value)) + value  # type: ignore[arg-type]
    if pid == 0x0B:
        return bytes([pid]) + _gmqtt._varint(value)  # type: ignore[arg-type]
    name, text = value  # type: ignore[misc]
    return bytes([pid]) + s(name) + s(text)


@settings(max_examples=300, deadline=None)
@given(topic=_text.filter(bool), payload=st.binary(max_size=64), qos=st.integers(0, 1),
       props=st.lists(_property, max_size=6), mid=st.integers(1, 65535),
       flags=st.sampled_from([0, 1, 8, 9]))
def test_any_publish_reads_the_same_on_both_paths(topic: str, payload: bytes, qos: int,
                                                   props: list, mid: int, flags: int) -> None:
    block = b"".join(_encode(pid, value) for pid, value in props)
    cmd, body = _gmqtt._publish(qos, block, payload, mid=mid, flags=flags if qos else flags & 1,
                                topic=topic.encode())
    expected = _gmqtt._gmqtt_parse(cmd, body)
    for identity in (False, True):
        got, took = _gmqtt._lean_parse(cmd, body, identity=identity)
        assert took
        assert got == (expected if identity else [(*e[:3], (), *e[4:]) for e in expected])


# --- The start-up self-check --------------------------------------------------------------------

def _run_self_check() -> MqttStatus:
    status = MqttStatus()
    asyncio.run(_gmqtt.self_check(MqttSettings(), status))
    return status


def test_self_check_passes_on_the_pinned_gmqtt() -> None:
    """The test to run after changing gmqtt's version: the lean path agrees with gmqtt's own
    parse on every synthetic packet, and gmqtt's own path acknowledges after processing."""
    assert _gmqtt.check_lean_path() is None
    status = _run_self_check()
    assert status.client == ("gmqtt", gmqtt.__version__)
    assert (status.lean_path, status.lean_path_reason) == (True, None)
    assert status.ack_after_processing == {"lean": True, "gmqtt": True}
    assert status.ack_reasons == {}


def test_the_synthetic_packets_cover_what_the_issue_names() -> None:
    shapes = [what for what, *_ in _gmqtt.synthetic_publishes()]
    for needed in ("QoS 0", "QoS 1", "QoS 0 with content type", "QoS 1 with content type",
                   "QoS 0 with content type and identity"):
        assert needed in shapes


def test_a_lean_path_that_misreads_is_switched_off_loudly(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """As if gmqtt had changed under the lean path: its content type comes out wrong."""
    real = _gmqtt._properties

    def misread(packet: bytes, at: int) -> _gmqtt.Props | None:
        props = real(packet, at)
        return None if props is None else ("text/plain", *props[1:])

    monkeypatch.setattr(_gmqtt, "_properties", misread)
    with caplog.at_level(logging.WARNING, logger="l4mon.ingest"):
        status = _run_self_check()
    assert status.lean_path is False
    assert "QoS 0 with content type" in status.lean_path_reason  # type: ignore[operator]
    assert "text/plain" in status.lean_path_reason  # type: ignore[operator]
    assert status.ack_after_processing == {"gmqtt": True}  # the path it runs on now
    assert "lean PUBLISH path OFF" in caplog.text


def test_unknown_internals_switch_the_lean_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gmqtt, "install_lean_publish", lambda *args: False)
    status = _run_self_check()
    assert status.lean_path is False
    assert "could not be installed" in status.lean_path_reason  # type: ignore[operator]


def test_a_lean_path_that_acknowledges_early_is_switched_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = _gmqtt.install_lean_publish

    def eager(client: object, deliver: object, checked: object = None) -> bool:
        def early(delivery: Delivery, ack: object = None) -> None:
            if ack is not None:
                ack()  # type: ignore[operator]
            deliver(delivery, ack)  # type: ignore[operator]
        return real(client, early, checked)  # type: ignore[arg-type]

    monkeypatch.setattr(_gmqtt, "install_lean_publish", eager)
    assert "QoS 1" in (_gmqtt.check_lean_path() or "")


def test_own_path_check_catches_a_gmqtt_that_acknowledges_on_receipt(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a gmqtt upgrade ignored optimistic_acknowledgement=False."""
    real = _gmqtt._scratch_client
    monkeypatch.setattr(_gmqtt, "_scratch_client", lambda sent, **options: real(
        sent, optimistic_acknowledgement=True))
    status = _run_self_check()
    assert status.ack_after_processing["gmqtt"] is False
    assert "PUBACK sent before on_message returned" in status.ack_reasons["gmqtt"]


def test_healthz_and_metrics_say_the_lean_path_is_off_and_why(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What an operator sees when the self-check failed: /healthz has the reason, /metrics 0."""
    monkeypatch.setattr(_gmqtt, "install_lean_publish", lambda *args: False)
    config = config_from_dict({
        "alerts": {"journal": str(tmp_path / "journal.sqlite")},
        "auth": {"tokens": [{"name": "t", "role": "viewer", "sha256": hash_token("tok")}]},
    })
    runtime = build_runtime(config, clock=ManualClock(1_700_000_000.0))
    runtime.mqtt = _run_self_check()

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.get(path, headers={"Authorization": "Bearer tok"})

    try:
        mqtt = asyncio.run(get("/healthz")).json()["mqtt"]
        metrics = asyncio.run(get("/metrics")).text
    finally:
        runtime.hub.alerts.journal.close()  # type: ignore[union-attr]
    assert mqtt["client"] == f"gmqtt {gmqtt.__version__}"
    assert mqtt["lean_path"] is False
    assert "failed the lean-path self-check" in mqtt["lean_path_reason"]
    assert mqtt["ack_after_processing"] == {"gmqtt": True}
    assert mqtt["ack_after_processing_reasons"] == {}
    assert "l4mon_mqtt_lean_path 0.0" in metrics
    assert 'l4mon_mqtt_ack_after_processing{path="gmqtt"} 1.0' in metrics
    assert 'path="lean"' not in metrics
