"""Publishing a generated fleet to a real broker at real time (``l4mon simulate``).

Two ways to connect, as real fleets do: one connection for the whole fleet (a load
generator), or one per vehicle (``per_vehicle``), each carrying the vehicle's MQTT last will
(``offline`` on its service topic, retained), so a vehicle whose connection drops without a
word is said to the hub by the broker. When the run ends (its duration, or ``stop``), every
vehicle announces that it leaves service before disconnecting cleanly; a process killed
outright announces nothing, and its vehicles' wills are all the hub hears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

import gmqtt
import msgspec

from l4mon.clock import Clock
from l4mon.ingest.mqtt import parse_url
from scenarios.sim import SimFleet
from telemetry.commands import command_topic, parse_command_topic
from telemetry.topics import parse_topic, service_topic
from telemetry.wire import ServiceStatus

logging.getLogger("gmqtt").setLevel(logging.ERROR)

#: Why a simulated vehicle leaves service when the run ends.
END_REASON = "end of simulation"
#: A vehicle's MQTT keepalive: the broker publishes its will 1.5 keepalives after it last
#: heard from it, so a short one tells the hub sooner that the connection, not just the
#: radio, is gone (its silence is already a takeover after a second or so).
VEHICLE_KEEPALIVE_S = 5


def _qos(topic: str) -> int:
    """Events, service statuses and command answers at QoS 1 (the protocol asks for it), the
    rest at 0."""
    return 1 if topic.endswith(("/event", "/service", "/command_ack")) else 0


def _source(topic: str) -> str | None:
    """The vehicle a message is from (None: an RSU's)."""
    answer = parse_command_topic(topic)
    if answer is not None:
        return answer.vehicle
    route = parse_topic(topic)
    return route.source if route is not None and route.kind != "rsu" else None


def _obey(fleet: SimFleet) -> Callable[..., int]:
    """gmqtt's on_message for a simulated vehicle's client: a command goes to its vehicle,
    which answers at its next tick (scenarios/sim/obey.py)."""

    def on_message(_client: Any, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
        route = parse_command_topic(topic)
        if route is not None and route.kind == "command" and route.vehicle in fleet.vehicle_ids:
            fleet.command(route.vehicle, payload)
        return 0

    return on_message


def _will(site: str, vehicle: str, now: float) -> gmqtt.Message:
    payload = msgspec.json.encode(ServiceStatus(ts=now, status="offline",
                                                reason="connection lost without a word"))
    return gmqtt.Message(service_topic(site, vehicle), payload, qos=1, retain=True)


async def publish_fleet(fleet: SimFleet, *, url: str, clock: Clock, duration_s: float,
                        stop: asyncio.Event, period_s: float = 0.05,
                        client_id: str = "l4mon-simulate", per_vehicle: bool = False,
                        only: Collection[str] | None = None) -> int:
    """Publish what ``fleet`` produces until ``duration_s`` passes or ``stop`` is set; then
    every vehicle leaves service. ``only`` publishes just those vehicles (and no RSU), so
    several processes can each be a vehicle of one fleet. Each vehicle obeys the commands on
    its command topic and answers them (docs/protocol.md, "Commands"). Returns the messages
    sent."""
    host, port, tls = parse_url(url)
    vehicles = [v for v in fleet.vehicle_ids if only is None or v in only]
    if only is not None and set(only) - set(vehicles):
        raise ValueError(f"no simulated vehicle {sorted(set(only) - set(vehicles))}")
    site = fleet.site.name
    clients: dict[str | None, gmqtt.Client] = {}
    if per_vehicle:
        for vid in vehicles:
            client = gmqtt.Client(f"{client_id}-{vid}",
                                  will_message=_will(site, vid, clock.now()))
            client.on_message = _obey(fleet)
            await client.connect(host, port, ssl=tls, keepalive=VEHICLE_KEEPALIVE_S)
            client.subscribe(command_topic(site, vid), qos=1)
            clients[vid] = client
    if only is None and (not per_vehicle or fleet.rsu_ids):
        clients[None] = gmqtt.Client(client_id)  # the fleet's, or the roadside units'
        clients[None].on_message = _obey(fleet)
        await clients[None].connect(host, port, ssl=tls)
        if not per_vehicle:
            clients[None].subscribe(command_topic(site, "+"), qos=1)

    def send(messages: list[tuple[str, bytes]]) -> int:
        sent = 0
        for topic, payload in messages:
            source = _source(topic)
            if only is not None and source not in only:
                continue
            client = clients[source if per_vehicle else None]
            client.publish(topic, payload, qos=_qos(topic), retain=topic.endswith("/service"))
            sent += 1
        return sent

    sent = 0
    end = clock.now() + duration_s
    try:
        while not stop.is_set() and clock.now() < end:
            sent += send(fleet.advance(clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period_s)
        for vid in vehicles:
            fleet.end_service(vid, END_REASON)
        at = clock.now()
        while any(fleet.in_service(v) for v in vehicles):  # each says so at its next tick
            at += period_s
            sent += send(fleet.advance(at))
        await asyncio.sleep(period_s)  # QoS 1 on its way before the DISCONNECT
    finally:
        for client in clients.values():
            await client.disconnect()
    return sent
