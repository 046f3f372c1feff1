"""A broker that ignores the hub's Maximum Packet Size, made of a real one: a loopback TCP
proxy in front of Mosquitto that removes that property from each CONNECT it forwards, so the
broker never learns the limit and sends whatever it has. Everything else passes verbatim.

This is how a test reaches the hub's reader-side bound (l4mon/ingest/_bounded_read.py), which
is there for brokers that ignore the property (and MQTT 3.1.1 sessions, which cannot carry it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from testing.broker import HOST, Broker, free_port

#: CONNECT properties and the size of their values (0: a length-prefixed string or binary, 00:
#: a user property, two strings).
_FIXED = {0x11: 4, 0x21: 2, 0x27: 4, 0x22: 2, 0x19: 1, 0x17: 1}
_MAX_PACKET_SIZE = 0x27


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def strip_max_packet_size(connect: bytes) -> bytes:
    """A whole MQTT 5 CONNECT packet without its Maximum Packet Size property."""
    length, body_at = _varint(connect, 1)
    body = connect[body_at:body_at + length]
    name_end = 2 + int.from_bytes(body[0:2], "big")
    if body[name_end] != 5:  # not MQTT 5: no properties to strip
        return connect
    props_at = name_end + 4  # level, flags, keepalive
    props_len, first = _varint(body, props_at)
    props, rest = body[first:first + props_len], body[first + props_len:]
    kept = bytearray()
    i = 0
    while i < len(props):
        pid = props[i]
        if pid in _FIXED:
            end = i + 1 + _FIXED[pid]
        elif pid == 0x26:
            end = i + 1
            for _ in range(2):
                end += 2 + int.from_bytes(props[end:end + 2], "big")
        else:  # 0x15 authentication method, 0x16 authentication data
            end = i + 3 + int.from_bytes(props[i + 1:i + 3], "big")
        if pid != _MAX_PACKET_SIZE:
            kept += props[i:end]
        i = end
    body = body[:props_at] + _encode_varint(len(kept)) + bytes(kept) + rest
    return connect[:1] + _encode_varint(len(body)) + body


class IgnoringProxy:
    """``with IgnoringProxy(broker) as proxy:`` clients connect to ``proxy.url``."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.port = free_port()
        self.stripped = 0  # CONNECTs whose Maximum Packet Size was removed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        head = await reader.readexactly(2)
        length_bytes = head[1:]
        while length_bytes[-1] & 0x80:
            length_bytes += await reader.readexactly(1)
        length, _ = _varint(head[:1] + length_bytes, 1)
        connect = head[:1] + length_bytes + await reader.readexactly(length)
        stripped = strip_max_packet_size(connect) if head[0] == 0x10 else connect
        self.stripped += stripped != connect
        up_writer.write(stripped)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def __enter__(self) -> IgnoringProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, HOST, self.port), self._loop).result(10)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
