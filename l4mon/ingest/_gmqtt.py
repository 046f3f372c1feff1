"""gmqtt behind the MQTT seam: pure asyncio, MQTT 5, the fastest client we measured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from l4mon.ingest.mqtt import Checked, MqttSettings, parse_url, tls_context
from l4mon.types import Delivery

# gmqtt logs every reconnect attempt and dropped socket itself; our supervisor says it once.
logging.getLogger("gmqtt").setLevel(logging.ERROR)
log = logging.getLogger("l4mon.ingest")

_PUBLISH_QOS_MASK = 0xF6  # packet type and QoS bits of the fixed header (not DUP, RETAIN)
_PUBLISH_QOS0 = 0x30
_PUBLISH_QOS1 = 0x32

#: Takes a delivery and, for a QoS 1 message, what to run once the hub has processed it.
Deliver = Callable[..., None]


def install_lean_publish(client: Any, deliver: Deliver) -> bool:
    """Route PUBLISH packets without properties past gmqtt's general path, straight to
    ``deliver((topic, payload, None))``: QoS 0 (nearly all telemetry), and QoS 1 (events) with
    ``deliver(delivery, ack)``, ``ack`` sending the PUBACK; the buffer runs it once the hub has
    processed the message, so the broker only forgets an event the journal already holds
    (gmqtt's own path acknowledges before its callback even runs). Everything else (content
    types, topic aliases, QoS 2) takes gmqtt's path.

    gmqtt's path costs ~5.5 us a message in Python: format strings built per packet for
    struct, a properties dict, two debug-log calls with eagerly formatted arguments, and an
    ``inspect.iscoroutinefunction`` on the callback, every time. This reads the topic length,
    the topic and the empty properties byte directly. It relies on gmqtt's package handler
    (``_package_handler._handle_packet(cmd, packet)``), so it checks that those exist and,
    where they do not (another gmqtt version), leaves gmqtt alone and says so. MQTT v5 only:
    the properties byte is not there in 3.1.1. Returns whether it was installed.
    """
    handler = getattr(client, "_package_handler", None)
    general = getattr(handler, "_handle_packet", None)
    puback = getattr(handler, "_send_puback", None)
    state = getattr(client, "_connection_state", None)
    if general is None or puback is None \
            or getattr(state, "protocol_version", None) != MQTTv50:
        log.warning("gmqtt %s: lean PUBLISH path not installed (unknown internals or not "
                    "MQTT v5); using gmqtt's own", getattr(gmqtt, "__version__", "?"))
        return False

    def handle_packet(cmd: int, packet: bytes) -> None:
        kind = cmd & _PUBLISH_QOS_MASK
        if kind == _PUBLISH_QOS0 and len(packet) > 2:
            end = 2 + ((packet[0] << 8) | packet[1])
            if end < len(packet) and packet[end] == 0 and end > 2:  # no properties, a topic
                try:
                    topic = packet[2:end].decode("utf-8")
                except UnicodeDecodeError:
                    pass  # gmqtt's path logs and handles it
                else:
                    deliver((topic, packet[end + 1:], None))
                    return
        elif kind == _PUBLISH_QOS1 and len(packet) > 4:
            end = 2 + ((packet[0] << 8) | packet[1])
            if end + 2 < len(packet) and packet[end + 2] == 0 and end > 2:
                try:
                    topic = packet[2:end].decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    mid = (packet[end] << 8) | packet[end + 1]
                    deliver((topic, packet[end + 3:], None), partial(puback, mid))
                    return
        general(cmd, packet)

    handler._handle_packet = handle_packet
    return True


async def run_session(settings: MqttSettings, deliver: Callable[[Delivery], None],
                      connected: Callable[[], None], checked: Checked | None = None) -> None:
    host, port, _ = parse_url(settings.url)
    client = gmqtt.Client(settings.client_id, clean_session=False,
                          session_expiry_interval=settings.session_expiry_s)
    # The supervisor owns reconnecting. gmqtt reconnects while ``failed_connections <=
    # reconnect_retries``, so 0 still allows one retry, ~6 s after a loss: that stale client
    # then kicks the supervisor's new one off (same client id), and each kick breeds another
    # (bench/faults.py, broker restart). -2 (not -1, which is "unlimited") allows none.
    client.set_config({"reconnect_retries": -2})
    if settings.username:
        client.set_auth_credentials(settings.username, settings.password)
    lost = asyncio.Event()

    def on_message(_client: Any, topic: str, payload: bytes, _qos: int, props: dict) -> int:
        content_type = props.get("content_type")
        deliver((topic, payload, content_type[0] if content_type else None))
        return 0  # PUBACK "success"

    def on_message_checked(_client: Any, topic: str, payload: bytes, _qos: int,
                           props: dict) -> int:
        content_type = props.get("content_type")
        checked((topic, payload, content_type[0] if content_type else None),  # type: ignore[misc]
                props.get("user_property") or ())
        return 0  # refused or not, the message was received: PUBACK "success"

    def on_disconnect(_client: Any, _packet: Any, _exc: Any = None) -> None:
        lost.set()

    # Chosen once per session, so the identity check costs nothing while it is off.
    client.on_message = on_message if checked is None else on_message_checked
    client.on_disconnect = on_disconnect
    await client.connect(host, port, ssl=tls_context(settings) or False,
                         keepalive=settings.keepalive_s)
    if checked is None:  # the identity check needs each message's user properties
        install_lean_publish(client, deliver)
    try:
        client.subscribe([gmqtt.Subscription(t, qos=1) for t in settings.topics()])
        connected()
        await lost.wait()
    finally:
        if client.is_connected:
            await client.disconnect()
