"""Publishing a generated fleet to a real broker at real time (``l4mon simulate``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import gmqtt

from l4mon.clock import Clock
from l4mon.ingest.mqtt import parse_url
from scenarios.simfleet import SimFleet

logging.getLogger("gmqtt").setLevel(logging.ERROR)


async def publish_fleet(fleet: SimFleet, *, url: str, clock: Clock, duration_s: float,
                        stop: asyncio.Event, period_s: float = 0.05,
                        client_id: str = "l4mon-simulate") -> int:
    """Publish what ``fleet`` produces until ``duration_s`` passes or ``stop`` is set.

    Events go at QoS 1 (the protocol asks for it), everything else at QoS 0.
    """
    host, port, tls = parse_url(url)
    client = gmqtt.Client(client_id)
    await client.connect(host, port, ssl=tls)
    sent = 0
    end = clock.now() + duration_s
    try:
        while not stop.is_set() and clock.now() < end:
            for topic, payload in fleet.advance(clock.now()):
                client.publish(topic, payload, qos=1 if topic.endswith("/event") else 0)
                sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period_s)
    finally:
        await client.disconnect()
    return sent
