"""aiomqtt behind the MQTT seam: the design card's client, kept for comparison and fallback.

paho-mqtt (under aiomqtt) acknowledges a QoS 1 message as soon as aiomqtt has queued it, before
the hub has even seen it. paho's public manual acknowledgement (``manual_ack_set``, ``ack``)
moves that PUBACK to after processing; aiomqtt has no API for it, so the paho client is reached
through aiomqtt's private ``_client`` — in ``paho_client_of`` only, which checks what it finds,
at start-up (``self_check``) and on every connection. Where it is missing, messages are still
delivered and /healthz says the PUBACK comes early.

Bounds: the hub's MQTT 5 Maximum Packet Size is announced as with gmqtt, so a broker that
honours it never sends a larger packet; but paho reads every packet whole, so against one that
does not, this backend has no reader-side bound (the status says so: use gmqtt there).
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
from paho.mqtt.subscribeoptions import SubscribeOptions

from l4mon.ingest.delivery import Checked, Deliver
from l4mon.ingest.mqtt_settings import MqttSettings, parse_url, tls_context
from l4mon.ingest.mqtt_status import MqttStatus
from l4mon.ingest.publisher import MqttPublisher
from l4mon.ingest.refusals import TransportGuard, is_event_topic

log = logging.getLogger("l4mon.ingest")

AIOMQTT = "aiomqtt"  # the ack path, as /healthz and /metrics name it
_NO_MANUAL_ACK = "paho-mqtt has no manual acknowledgement: it acknowledges on receipt"
_NO_BOUNDED_READ = ("paho-mqtt reads every packet whole: only the Maximum Packet Size "
                    "announced to the broker bounds what it sends")
_NO_PAHO_CLIENT = "aiomqtt's paho client (_client) not found: paho acknowledges on receipt"
#: MQTT 5 DISCONNECT reason: another client connected with this client id.
_SESSION_TAKEN_OVER = 0x8E


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiomqtt")
    except PackageNotFoundError:
        return "?"


def paho_client_of(client: aiomqtt.Client) -> paho.Client | None:
    """The paho client under ``client``: the one private attribute of a library this backend
    reaches (aiomqtt's ``_client``), because delaying the QoS 1 PUBACK until the hub has
    processed a message (and seeing a session taken over) needs paho's own client, which
    aiomqtt does not expose. Checked, not trusted: None unless it is a paho ``Client``, and
    the callers then say so (``self_check`` at start-up, ``run_session`` per connection)."""
    inner = getattr(client, "_client", None)
    return inner if isinstance(inner, paho.Client) else None


def manual_ack(client: aiomqtt.Client) -> Callable[[int, int], Any] | None:
    """The paho client's ``ack(mid, qos)`` with manual acknowledgement switched on, or None
    where aiomqtt or paho no longer offer it."""
    inner = paho_client_of(client)
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
    status.set_bounded_read(False, _NO_BOUNDED_READ)
    if paho_client_of(aiomqtt.Client(parse_url(settings.url)[0])) is None:
        log.warning("aiomqtt %s: QoS 1 events are acknowledged before they are processed: %s",
                    _version(), _NO_PAHO_CLIENT)
        status.set_ack(AIOMQTT, False, _NO_PAHO_CLIENT)
    elif callable(getattr(paho.Client, "manual_ack_set", None)) \
            and callable(getattr(paho.Client, "ack", None)):
        status.set_ack(AIOMQTT, True)
    else:
        log.warning("aiomqtt: QoS 1 events are acknowledged before they are processed: %s",
                    _NO_MANUAL_ACK)
        status.set_ack(AIOMQTT, False, _NO_MANUAL_ACK)


async def _publish_qos1(client: aiomqtt.Client, topic: str, payload: bytes) -> int:
    """aiomqtt's QoS 1 publish returns once the broker's PUBACK came; it does not hand on the
    PUBACK's reason code, so a refusal (MQTT 5 reason >= 0x80) reads as accepted here: the
    vehicle's silence then makes the command "not confirmed" (gmqtt, the default, tells)."""
    await client.publish(topic, payload, qos=1)
    return 0


async def run_session(settings: MqttSettings, deliver: Deliver,
                      connected: Callable[[], None], checked: Checked | None,
                      status: MqttStatus, guard: TransportGuard,
                      publisher: MqttPublisher | None = None) -> None:
    host, port, _ = parse_url(settings.url)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry_s
    props.MaximumPacketSize = guard.max_packet
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
        status.set_ack(AIOMQTT, False, _NO_PAHO_CLIENT)
    _watch_takeover(client, guard)
    async with client:
        for topic in settings.topics():
            await client.subscribe(topic, options=SubscribeOptions(
                qos=1, noLocal=not topic.startswith("$share/")))
        if publisher is not None:
            publisher.attach(partial(_publish_qos1, client))
        connected()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = bytes(payload) if isinstance(payload, bytearray) else b""
            ctype = getattr(message.properties, "ContentType", None) if message.properties \
                else None
            then = partial(ack, message.mid, message.qos) \
                if ack is not None and message.qos else None
            if message.retain and is_event_topic(str(message.topic)):
                guard.retained_event(str(message.topic), payload)
                if then is not None:
                    then()
                continue
            if checked is None:
                deliver((str(message.topic), payload, ctype), then)
            else:
                checked((str(message.topic), payload, ctype),
                        getattr(message.properties, "UserProperty", None) or (), then)


def _watch_takeover(client: aiomqtt.Client, guard: TransportGuard) -> None:
    """Tell the guard when the broker ends the session because another client took its client
    id; paho's ``on_disconnect`` (aiomqtt's own) still runs after."""
    inner = paho_client_of(client)
    original = getattr(inner, "on_disconnect", None)
    if inner is None or not callable(original):
        return

    def on_disconnect(paho_client: Any, userdata: Any, flags: Any, reason_code: Any,
                      properties: Any = None) -> None:
        if getattr(reason_code, "value", reason_code) == _SESSION_TAKEN_OVER:
            guard.session_taken_over()
        original(paho_client, userdata, flags, reason_code, properties)

    inner.on_disconnect = on_disconnect
