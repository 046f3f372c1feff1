"""The publisher identity check, through a real Mosquitto: paho publishes with MQTT v5 user
properties as a broker plugin would stamp them; the hub's MQTT source keeps or refuses."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import msgspec
import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from l4mon.clock import ManualClock
from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.types import Batch
from telemetry.decode import IDENTITY_MISMATCH
from telemetry.quarantine import Quarantine
from telemetry.topics import event_topic, link_topic, rsu_topic, state_topic
from telemetry.wire import LinkSample, RsuStatus, VehicleEvent, VehicleState
from testing.broker import Broker

pytestmark = pytest.mark.mqtt

T0 = 1_700_000_000.0
PROP = "l4mon-client"


def _publish_all(broker: Broker, messages: list[tuple[str, bytes, list[tuple[str, str]]]]) -> None:
    """Publish at QoS 1 (so order and delivery are certain) with the given user properties."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="identity-pub",
                         protocol=paho.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert connected.wait(10), "publisher could not connect"
        for topic, payload, user_properties in messages:
            props = Properties(PacketTypes.PUBLISH)
            if user_properties:
                props.UserProperty = user_properties
            client.publish(topic, payload, qos=1, properties=props).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _state(seq: int) -> bytes:
    return msgspec.json.encode(VehicleState(ts=time.time(), seq=seq, lat=36.0, lon=136.0,
                                            speed_mps=1.0, heading_deg=0.0, mode="autonomous"))


def _run(broker: Broker, settings: MqttSettings, quarantine: Quarantine,
         messages: list[tuple[str, bytes, list[tuple[str, str]]]], expect: int) -> Batch:
    """Publish ``messages`` and return what reached the source's buffer, once ``expect``
    messages have either arrived there or been quarantined."""
    async def scenario() -> Batch:
        got: Batch = []
        async with MqttSource(settings=settings, quarantine=quarantine,
                              clock=ManualClock(T0)) as source:
            deadline = time.monotonic() + 10
            while not source.status.connected:
                assert time.monotonic() < deadline, "source did not connect"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # let the broker apply the subscription
            await asyncio.to_thread(_publish_all, broker, messages)
            while len(got) + len(quarantine) < expect:
                assert time.monotonic() < deadline + 10, (got, list(quarantine.newest()))
                with contextlib.suppress(TimeoutError):
                    got += await asyncio.wait_for(source.__anext__(), 0.1)
        return got

    return asyncio.run(scenario())


@pytest.mark.parametrize("client", ["gmqtt", "aiomqtt"])
def test_a_message_must_come_from_the_vehicle_its_topic_names(broker: Broker,
                                                              client: str) -> None:
    """With require_identity: matching sender delivered; another vehicle's, none, or two
    senders quarantined as identity_mismatch with the raw bytes; RSUs checked alike."""
    settings = MqttSettings(url=broker.url, client=client, client_id=f"hub-id-{client}",
                            require_identity=True)
    spoof = msgspec.json.encode(LinkSample(ts=time.time(), seq=1, rat="nr", rtt_ms=5.0))
    event = msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request", seq=1))
    rsu = msgspec.json.encode(RsuStatus(ts=time.time(), seq=1, intersection="ix-1"))
    messages = [
        (state_topic("s", "veh-1"), _state(1), [(PROP, "veh-1")]),
        (link_topic("s", "veh-2", "l5g"), spoof, [(PROP, "veh-1")]),  # veh-1 posing as veh-2
        (event_topic("s", "veh-1"), event, []),  # nobody stamped it
        (state_topic("s", "veh-1"), _state(2), [(PROP, "veh-9"), (PROP, "veh-1")]),
        (rsu_topic("s", "rsu-1"), rsu, [("other", "x"), (PROP, "rsu-1")]),
        (state_topic("s", "veh-1"), _state(3), [(PROP, "veh-1")]),
    ]
    quarantine = Quarantine()
    got = _run(broker, settings, quarantine, messages, expect=len(messages))
    assert [(topic, payload) for topic, payload, _ in got] == [
        (state_topic("s", "veh-1"), messages[0][1]), (rsu_topic("s", "rsu-1"), rsu),
        (state_topic("s", "veh-1"), messages[5][1])]
    assert quarantine.counts == {IDENTITY_MISMATCH: 3}
    refused = list(reversed(list(quarantine.newest())))  # in publish order
    assert [q.topic for q in refused] == [link_topic("s", "veh-2", "l5g"),
                                          event_topic("s", "veh-1"), state_topic("s", "veh-1")]
    assert refused[0].payload == spoof and refused[0].received_at == T0
    assert "'veh-1'" in refused[0].detail and "veh-2" in refused[0].detail
    assert "no 'l4mon-client'" in refused[1].detail
    assert "ambiguous" in refused[2].detail


def test_off_by_default_nothing_is_checked(broker: Broker) -> None:
    """Without require_identity, a message is delivered whatever its properties say."""
    settings = MqttSettings(url=broker.url, client_id="hub-id-off")
    messages = [(state_topic("s", "veh-2"), _state(1), [(PROP, "veh-1")]),
                (state_topic("s", "veh-2"), _state(2), [])]
    quarantine = Quarantine()
    got = _run(broker, settings, quarantine, messages, expect=2)
    assert len(got) == 2 and len(quarantine) == 0


def test_require_identity_needs_somewhere_to_put_refusals() -> None:
    """Refusing silently is not an option: the source will not start without a quarantine."""
    with pytest.raises(ValueError, match="require_identity"):
        MqttSource(settings=MqttSettings(require_identity=True))
