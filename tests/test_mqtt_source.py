"""The MQTT seam in-process against a real broker: persistent sessions, shared subscriptions."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from l4mon.ingest.mqtt import MqttSettings, MqttSource
from l4mon.types import Batch
from telemetry.topics import event_topic, link_topic
from telemetry.wire import LinkSample, VehicleEvent
from testing.broker import Broker
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt


async def _collect(source: MqttSource, into: Batch, stop: asyncio.Event) -> None:
    async for batch in source:
        into.extend(batch)
        if stop.is_set():
            return


async def _connected(*sources: MqttSource) -> None:
    deadline = time.monotonic() + 10
    while not all(s.status.connected for s in sources):
        assert time.monotonic() < deadline, "source did not connect"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # SUBSCRIBE sent right after CONNACK; let the broker apply it


async def _until(predicate: object, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("client", ["gmqtt", "aiomqtt"])
def test_qos1_events_wait_in_the_session_while_the_hub_is_away(broker: Broker,
                                                               client: str) -> None:
    """Persistent session: an event published while the hub is disconnected arrives later."""
    settings = MqttSettings(url=broker.url, client=client, client_id=f"hub-persist-{client}")
    event = msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request", seq=7))

    async def scenario() -> Batch:
        async with MqttSource(settings=settings) as first:
            await _connected(first)  # creates the session and its subscriptions
        with Publisher(broker.host, broker.port) as pub:  # the hub is away now
            pub.publish(event_topic("s", "veh-1"), event, qos=1)
        got: Batch = []
        async with MqttSource(settings=settings) as second:
            stop = asyncio.Event()
            task = asyncio.create_task(_collect(second, got, stop))
            await _until(lambda: len(got) >= 1)
            stop.set()
            task.cancel()
        return got

    got = asyncio.run(scenario())
    assert [(topic, payload) for topic, payload, _ in got] == [(event_topic("s", "veh-1"), event)]


def test_shared_subscription_splits_a_fleet_between_two_hubs(broker: Broker) -> None:
    """With a shared group, each message goes to exactly one of the hubs."""
    def settings(n: int) -> MqttSettings:
        return MqttSettings(url=broker.url, client_id=f"hub-{n}", shared_group="hubs")

    async def scenario() -> tuple[Batch, Batch]:
        a: Batch = []
        b: Batch = []
        async with MqttSource(settings=settings(1)) as one, \
                MqttSource(settings=settings(2)) as two:
            await _connected(one, two)
            stop = asyncio.Event()
            tasks = [asyncio.create_task(_collect(one, a, stop)),
                     asyncio.create_task(_collect(two, b, stop))]
            with Publisher(broker.host, broker.port) as pub:
                for v in range(20):
                    for seq in range(10):
                        pub.publish(link_topic("s", f"veh-{v}", "l5g"), msgspec.json.encode(
                            LinkSample(ts=time.time(), seq=seq, rat="nr", rtt_ms=10.0)))
            await _until(lambda: len(a) + len(b) >= 200)
            await asyncio.sleep(0.3)  # nothing more may arrive
            stop.set()
            for task in tasks:
                task.cancel()
        return a, b

    a, b = asyncio.run(scenario())
    assert len(a) + len(b) == 200
    assert a and b  # both hubs took a share
    assert not {p for _, p, _ in a} & {p for _, p, _ in b}  # nobody got the same message
