"""The hub's lean QoS 0 PUBLISH path on a real gmqtt client, against gmqtt's own path.

Packets are fed to the client's package handler as gmqtt's protocol would (fixed header byte,
body); the same packets through an untouched client give what gmqtt itself makes of them.
Through a real broker the path is exercised by the MQTT ingest tests.
"""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace

import gmqtt
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.package import Package

from l4mon.ingest._gmqtt import install_lean_publish
from l4mon.ingest.buffer import BatchBuffer
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


def test_everything_else_takes_gmqtts_path() -> None:
    lean, general, client = clients()
    acks: list[tuple] = []  # gmqtt acknowledges the QoS 1 message on its connection
    client._connection = SimpleNamespace(
        send_command_with_mid=lambda *args, **kwargs: acks.append(args))
    content_type = b"\x03" + struct.pack("!H", 19) + b"application/msgpack"
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/state", b"\x80",
                                    props=content_type))
    client._package_handler(publish(b"l4mon/v1/s/vehicle/v1/event", b"\x80", qos=1,
                                    props=content_type))
    assert lean == []
    assert general == [("l4mon/v1/s/vehicle/v1/state", b"\x80", 0, ["application/msgpack"]),
                       ("l4mon/v1/s/vehicle/v1/event", b"\x80", 1, ["application/msgpack"])]
    assert [a[1] for a in acks] == [7]  # gmqtt acknowledges at once (packet id 7)


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
        buffer.put(("t", b"dropped", None), lambda: seen.append("never"))  # over capacity
        buffer.close()
        rest = await anext(batches)
        seen.append(f"processing {len(rest)}")
        try:
            await anext(batches)
        except StopAsyncIteration:
            seen.append("end")
        return seen

    assert asyncio.run(scenario()) == ["processing 2", "ack 2", "processing 1", "ack 3",
                                       "processing 3", "end"]
