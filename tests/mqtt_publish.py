"""A synchronous test publisher built on paho-mqtt: a different client from the hub's, so the
tests do not check gmqtt against itself."""

from __future__ import annotations

import threading
from types import TracebackType

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Publisher:
    def __init__(self, host: str, port: int, *, client_id: str = "l4mon-test-pub") -> None:
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv5)
        self._connected = threading.Event()
        self._client.on_connect = lambda *args: self._connected.set()
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError(f"test publisher could not connect to {host}:{port}")
        self._last: paho.MQTTMessageInfo | None = None

    def publish(self, topic: str, payload: bytes, *, qos: int = 0,
                content_type: str | None = None) -> None:
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = content_type
        self._last = self._client.publish(topic, payload, qos=qos, properties=props)

    def flush(self) -> None:
        if self._last is not None:
            self._last.wait_for_publish(timeout=10)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.flush()
        self._client.disconnect()
        self._client.loop_stop()
