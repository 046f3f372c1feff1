"""aiomqtt behind the MQTT seam: the design card's client, kept for comparison and fallback."""

from __future__ import annotations

from collections.abc import Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from l4mon.ingest.mqtt import Checked, MqttSettings, parse_url, tls_context
from l4mon.types import Delivery


async def run_session(settings: MqttSettings, deliver: Callable[[Delivery], None],
                      connected: Callable[[], None], checked: Checked | None = None) -> None:
    host, port, _ = parse_url(settings.url)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry_s
    async with aiomqtt.Client(
        host, port, identifier=settings.client_id, protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False, properties=props, keepalive=settings.keepalive_s,
        username=settings.username, password=settings.password,
        tls_context=tls_context(settings),
    ) as client:
        for topic in settings.topics():
            await client.subscribe(topic, qos=1)
        connected()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = bytes(payload) if isinstance(payload, bytearray) else b""
            ctype = getattr(message.properties, "ContentType", None) if message.properties \
                else None
            if checked is None:
                deliver((str(message.topic), payload, ctype))
            else:
                checked((str(message.topic), payload, ctype),
                        getattr(message.properties, "UserProperty", None) or ())
