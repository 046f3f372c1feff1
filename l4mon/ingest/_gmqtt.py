"""gmqtt behind the MQTT seam: pure asyncio, MQTT 5, the fastest client we measured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import gmqtt

from l4mon.ingest.mqtt import Checked, MqttSettings, parse_url, tls_context
from l4mon.types import Delivery

# gmqtt logs every reconnect attempt and dropped socket itself; our supervisor says it once.
logging.getLogger("gmqtt").setLevel(logging.ERROR)


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
    try:
        client.subscribe([gmqtt.Subscription(t, qos=1) for t in settings.topics()])
        connected()
        await lost.wait()
    finally:
        if client.is_connected:
            await client.disconnect()
