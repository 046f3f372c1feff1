"""PUBACK after processing, on every path a QoS 1 event can take, through a real Mosquitto.

What the broker thinks is observed the only way a subscriber can: a persistent session keeps
every QoS 1 message it has sent but not seen acknowledged, and sends it again when the same
client id comes back. So each path is run three times with one client id:

1. the hub receives an event and holds it (the batch is never processed) and goes away:
   no PUBACK may have left, so
2. on reconnecting the same event arrives again; this time it is processed, then the hub goes;
3. on reconnecting nothing old arrives, only a marker published now: the PUBACK went out.

A control shows that this observation tells the difference: gmqtt as shipped (optimistic
acknowledgement) loses the held event in step 2.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gmqtt
import msgspec
import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from l4mon.clock import ManualClock
from l4mon.ingest import _gmqtt
from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.types import Batch
from telemetry.decode import IDENTITY_MISMATCH
from telemetry.quarantine import Quarantine
from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker

pytestmark = pytest.mark.mqtt

EVENT = event_topic("s", "veh-1")
MSGPACK = "application/msgpack"
PROP = "l4mon-client"


@contextmanager
def _publisher(broker: Broker) -> Iterator[paho.Client]:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ack-paths-pub",
                         protocol=paho.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert connected.wait(10), "publisher could not connect"
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _publish(broker: Broker, messages: list[tuple[bytes, str | None, str | None]]) -> None:
    """QoS 1 events on EVENT: (payload, content type, identity property or None)."""
    with _publisher(broker) as client:
        for payload, content_type, identity in messages:
            props = Properties(PacketTypes.PUBLISH)
            if content_type is not None:
                props.ContentType = content_type
            if identity is not None:
                props.UserProperty = [(PROP, identity)]
            client.publish(EVENT, payload, qos=1, properties=props).wait_for_publish(10)


def _event(seq: int, content_type: str | None) -> bytes:
    event = VehicleEvent(ts=time.time(), kind="takeover_request", seq=seq)
    return msgspec.msgpack.encode(event) if content_type == MSGPACK \
        else msgspec.json.encode(event)


async def _connected(source: MqttSource) -> None:
    deadline = time.monotonic() + 10
    while not source.status.connected:
        assert time.monotonic() < deadline, "source did not connect"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # SUBSCRIBE goes right after CONNACK; let the broker apply it


async def _next(source: MqttSource) -> Batch:
    """The next batch; asking for it tells the source the previous one is processed."""
    return await asyncio.wait_for(anext(source), 10)


def _three_sessions(broker: Broker, settings: MqttSettings, content_type: str | None,
                    identity: bool) -> dict[str, Any]:
    quarantine = Quarantine()

    def source() -> MqttSource:
        return MqttSource(settings=settings, quarantine=quarantine, clock=ManualClock(0.0))

    held_payload = _event(1, content_type)
    marker = _event(2, content_type)
    who = "veh-1" if identity else None

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with source() as first:
            await _connected(first)
            seen["status"] = first.status
            published = [(held_payload, content_type, who)]
            if identity:  # refused: quarantined, and done with, while the event is held
                published.insert(0, (_event(0, content_type), content_type, "veh-9"))
            await asyncio.to_thread(_publish, broker, published)
            seen["held"] = await _next(first)  # never processed: the hub goes away now
        async with source() as second:
            seen["redelivered"] = await _next(second)
            processing = asyncio.create_task(_next(second))  # the held batch is processed
            await asyncio.sleep(0.2)  # the PUBACK is written; DISCONNECT follows it
            processing.cancel()
        async with source() as third:
            await _connected(third)
            await asyncio.to_thread(_publish, broker, [(marker, content_type, who)])
            seen["after"] = await _next(third)
        seen["quarantined"] = dict(quarantine.counts)
        return seen

    seen = asyncio.run(scenario())
    seen["held_payload"], seen["marker"] = held_payload, marker
    return seen


PATHS = [
    pytest.param("gmqtt", None, False, True, id="gmqtt-lean"),
    pytest.param("gmqtt", MSGPACK, False, True, id="gmqtt-lean-content-type"),
    pytest.param("gmqtt", MSGPACK, True, True, id="gmqtt-lean-identity"),
    pytest.param("gmqtt", MSGPACK, False, False, id="gmqtt-own-content-type"),
    pytest.param("gmqtt", None, True, False, id="gmqtt-own-identity"),
    pytest.param("aiomqtt", None, False, False, id="aiomqtt"),
    pytest.param("aiomqtt", MSGPACK, False, False, id="aiomqtt-content-type"),
    pytest.param("aiomqtt", MSGPACK, True, False, id="aiomqtt-identity"),
]


@pytest.mark.parametrize(("client", "content_type", "identity", "lean"), PATHS)
def test_a_qos1_event_is_acknowledged_only_once_processed(
        broker: Broker, monkeypatch: pytest.MonkeyPatch, client: str, content_type: str | None,
        identity: bool, lean: bool) -> None:
    if client == "gmqtt" and not lean:
        # gmqtt's own path, as the hub runs it when the lean path fails its self-check: make
        # the lean path misread content types, as if gmqtt had changed under it.
        real = _gmqtt._properties
        monkeypatch.setattr(_gmqtt, "_properties", lambda packet, at: None if (
            p := real(packet, at)) is None else ("text/plain", *p[1:]))
    settings = MqttSettings(url=broker.url, client=client,  # type: ignore[arg-type]
                            client_id=f"hub-ack-{client}-{lean}-{identity}",
                            require_identity=identity, identity_property=PROP)
    seen = _three_sessions(broker, settings, content_type, identity)

    status = seen["status"]
    assert status.lean_path is lean, status.lean_path_reason
    assert status.ack_after_processing and all(status.ack_after_processing.values()), \
        status.ack_reasons
    expected = [(EVENT, seen["held_payload"], content_type)]
    assert seen["held"] == expected
    assert seen["redelivered"] == expected  # 1: nothing acknowledged what was not processed
    assert seen["after"] == [(EVENT, seen["marker"], content_type)]  # 2: processed, acked
    if identity:  # the refused event was acknowledged at once: it never came back
        assert seen["quarantined"] == {IDENTITY_MISMATCH: 1}


def test_control_gmqtt_as_shipped_loses_an_event_it_was_still_holding(broker: Broker) -> None:
    """The same observation on gmqtt's own optimistic path: the PUBACK went out on receipt, so
    the event the subscriber had not processed is gone from the broker."""
    client_id = "hub-ack-control"
    held = _event(1, None)
    marker = _event(2, None)

    async def scenario() -> tuple[list[bytes], Batch]:
        got: list[bytes] = []
        subscribed = asyncio.Event()
        client = gmqtt.Client(client_id, clean_session=False, session_expiry_interval=3600)
        client.set_config({"reconnect_retries": -2})
        client.on_message = lambda _c, _t, payload, _q, _p: got.append(payload)
        client.on_subscribe = lambda *_: subscribed.set()
        await client.connect(broker.host, broker.port)
        # The hub's own subscriptions: overlapping ones would deliver the marker twice.
        client.subscribe([gmqtt.Subscription(t, qos=1) for t in MqttSettings().topics()])
        await asyncio.wait_for(subscribed.wait(), 10)
        await asyncio.to_thread(_publish, broker, [(held, None, None)])
        deadline = time.monotonic() + 10
        while not got:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await client.disconnect()  # "processing" never happened
        async with MqttSource(settings=MqttSettings(url=broker.url,
                                                    client_id=client_id)) as again:
            await _connected(again)
            await asyncio.to_thread(_publish, broker, [(marker, None, None)])
            return got, await _next(again)

    got, after = asyncio.run(scenario())
    assert got == [held]
    assert after == [(EVENT, marker, None)]  # the held event was not sent again: acked early
