"""aiomqtt behind the MQTT seam: the design card's client, kept for comparison and fallback.

paho-mqtt (under aiomqtt) acknowledges a QoS 1 message as soon as aiomqtt has queued it, before
the hub has even seen it. paho's public manual acknowledgement (``manual_ack_set``, ``ack``)
moves that PUBACK to after processing; aiomqtt has no API for it, so it is reached through
aiomqtt's ``_client`` (the paho client), checked at start-up and on every connection. Where it
is missing, messages are still delivered and /healthz says the PUBACK comes early.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from l4mon.ingest.delivery import Checked, Deliver
from l4mon.ingest.mqtt_settings import MqttSettings, parse_url, tls_context
from l4mon.ingest.mqtt_status import MqttStatus

log = logging.getLogger("l4mon.ingest")

AIOMQTT = "aiomqtt"  # the ack path, as /healthz and /metrics name it
_NO_MANUAL_ACK = "paho-mqtt has no manual acknowledgement: it acknowledges on receipt"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiomqtt")
    except PackageNotFoundError:
        return "?"


def manual_ack(client: Any) -> Callable[[int, int], Any] | None:
    """The paho client's ``ack(mid, qos)`` with manual acknowledgement switched on, or None
    where aiomqtt or paho no longer offer it."""
    inner = getattr(client, "_client", None)
    switch = getattr(inner, "manual_ack_set", None)
    ack = getattr(inner, "ack", None)
    if not callable(switch) or not callable(ack):
        return None
    switch(True)
    return ack  # type: ignore[no-any-return]


async def self_check(settings: MqttSettings, status: MqttStatus) -> None:
    """Record that there is no lean path here, and whether paho can acknowledge manually."""
    status.client = ("aiomqtt", _version())
    status.set_lean_path(False, "the aiomqtt client has no lean path (gmqtt only)")
    if callable(getattr(paho.Client, "manual_ack_set", None)) \
            and callable(getattr(paho.Client, "ack", None)):
        status.set_ack(AIOMQTT, True)
    else:
        log.warning("aiomqtt: QoS 1 events are acknowledged before they are processed: %s",
                    _NO_MANUAL_ACK)
        status.set_ack(AIOMQTT, False, _NO_MANUAL_ACK)


async def run_session(settings: MqttSettings, deliver: Deliver,
                      connected: Callable[[], None], checked: Checked | None,
                      status: MqttStatus) -> None:
    host, port, _ = parse_url(settings.url)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry_s
    client = aiomqtt.Client(
        host, port, identifier=settings.client_id, protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False, properties=props, keepalive=settings.keepalive_s,
        username=settings.username, password=settings.password,
        tls_context=tls_context(settings),
    )
    ack = manual_ack(client)  # before connecting: queued events come right after the CONNACK
    if ack is None and status.ack_after_processing.get(AIOMQTT, True):
        log.warning("aiomqtt: QoS 1 events are acknowledged before they are processed: "
                    "aiomqtt's paho client not found")
        status.set_ack(AIOMQTT, False, "aiomqtt's paho client (_client) not found: paho "
                                       "acknowledges on receipt")
    async with client:
        for topic in settings.topics():
            await client.subscribe(topic, qos=1)
        connected()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = bytes(payload) if isinstance(payload, bytearray) else b""
            ctype = getattr(message.properties, "ContentType", None) if message.properties \
                else None
            then = partial(ack, message.mid, message.qos) \
                if ack is not None and message.qos else None
            if checked is None:
                deliver((str(message.topic), payload, ctype), then)
            else:
                checked((str(message.topic), payload, ctype),
                        getattr(message.properties, "UserProperty", None) or (), then)
