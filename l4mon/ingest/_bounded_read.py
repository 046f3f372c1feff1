"""MQTT packets off the wire with a bound, in time linear in their size.

gmqtt's read loop appends every 64 KiB read to one ``bytes`` buffer and parses it from the
start, so a packet of n bytes costs O(n²/64 KiB) copying and is held whole before anything
looks at its size: one 64 MB message from one vehicle kept the hub from every other message
for a minute, a 250 MB one for good. ``PacketReader`` takes its place (``install``): it reads
each packet's Remaining Length first and a packet over the bound is never held. A PUBLISH's
topic and packet id are kept (at most 64 KiB, the longest topic MQTT allows) so that its
sender can be named and its QoS 1 PUBACK sent; every other byte of it is dropped as it
streams in. Whole packets within the bound are handed to gmqtt as its own loop would.

This replaces a private part of gmqtt (its protocol's read-loop task), so ``check_reader``
compares it with gmqtt's own ``_read_packet`` on the same streams cut in every way, and
``install`` checks, per connection, that the task it replaces is where it expects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from gmqtt.mqtt.package import Package
from gmqtt.mqtt.protocol import MQTTProtocol

log = logging.getLogger("l4mon.ingest")

#: What one read takes off the socket: gmqtt's own read size.
CHUNK = 65_536
#: What the live read loop takes at a time, and parses before it yields to the event loop:
#: ~150 messages, ~2 ms. Reading whole CHUNKs back to back from a backlog held the loop for
#: 8-12 ms a read under load (measured), and an alert or a command's answer waited behind it.
READ_BYTES = 16_384
#: A Remaining Length is at most four bytes; a fifth continuation byte is a broken stream.
_MAX_LENGTH_BYTES = 4
_PUBLISH = 0x30


@dataclass(frozen=True, slots=True)
class Refused:
    """A packet over the bound, read no further than its topic and packet id."""

    #: The fixed header byte: packet type, and for a PUBLISH its DUP, QoS and RETAIN bits.
    command: int
    #: Its whole size as declared (fixed header included), which was never read.
    size: int
    #: A PUBLISH's topic (None: not a PUBLISH, an alias with no topic, or not UTF-8).
    topic: str | None
    #: A QoS 1 or 2 PUBLISH's packet id, which its acknowledgement needs.
    packet_id: int | None

    @property
    def qos(self) -> int:
        return (self.command >> 1) & 0x03 if self.is_publish else 0

    @property
    def is_publish(self) -> bool:
        return self.command & 0xF0 == _PUBLISH


class PacketReader:
    """Splits a byte stream into MQTT packets: ``emit(command, body)`` for each one of at most
    ``limit`` bytes (fixed header included, as MQTT 5's Maximum Packet Size counts), and
    ``refuse(Refused)`` for each larger one once its last byte has gone by.

    Holds at most one partial packet within the bound plus one read, or the head of a refused
    PUBLISH (its topic: at most 64 KiB). ``feed`` returns False on a stream that cannot be an
    MQTT one (a Remaining Length over four bytes): the connection must be dropped.
    """

    __slots__ = ("_buf", "_emit", "_pending", "_refuse", "_skip", "limit", "peak_held")

    def __init__(self, *, limit: int, emit: Callable[[int, bytes], None],
                 refuse: Callable[[Refused], None]) -> None:
        if limit < 2:
            raise ValueError("a packet bound under 2 bytes admits no MQTT packet")
        self.limit = limit
        self._emit = emit
        self._refuse = refuse
        self._buf = bytearray()
        #: Bytes of a refused packet still to come, and what to report when they have.
        self._skip = 0
        self._pending: Refused | None = None
        #: The most this reader ever held at once, in bytes (what the tests bound).
        self.peak_held = 0

    def feed(self, data: bytes) -> bool:
        if self._skip:
            taken = min(self._skip, len(data))
            self._skip -= taken
            if self._skip:
                return True
            pending, self._pending = self._pending, None
            assert pending is not None
            self._refuse(pending)
            data = data[taken:]
            if not data:
                return True
        buf = self._buf
        buf += data
        self.peak_held = max(self.peak_held, len(buf))
        at, ok = self._parse(buf)
        del buf[:at]
        return ok

    def _parse(self, buf: bytearray) -> tuple[int, bool]:
        """Emit or refuse every packet ``buf`` completes; (bytes consumed, stream sound)."""
        end_of_data = len(buf)
        at = 0
        with memoryview(buf) as view:
            while end_of_data - at >= 2:
                length = 0
                shift = 0
                i = at + 1
                while True:
                    if i >= end_of_data:
                        return at, True  # the Remaining Length is not all here yet
                    byte = buf[i]
                    i += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift >= 7 * _MAX_LENGTH_BYTES:
                        return at, False
                end = i + length
                if end - at > self.limit:
                    head = self._head(buf, at, i, end, end_of_data)
                    if head is None:
                        return at, True  # its topic is not all here yet: wait for it
                    if end > end_of_data:  # the rest streams in later: dropped as it comes
                        self._skip = end - end_of_data
                        self._pending = head
                        return end_of_data, True
                    self._refuse(head)
                    at = end
                    continue
                if end > end_of_data:
                    return at, True
                self._emit(buf[at], bytes(view[i:end]))
                at = end
        return at, True

    @staticmethod
    def _head(buf: bytearray, at: int, body: int, end: int, end_of_data: int
              ) -> Refused | None:
        """A refused packet's topic and packet id once they are here; None until then."""
        command = buf[at]
        size = end - at
        if command & 0xF0 != _PUBLISH:
            return Refused(command, size, None, None)
        qos = (command >> 1) & 0x03
        if end_of_data - body < 2:
            return None
        topic_end = body + 2 + ((buf[body] << 8) | buf[body + 1])
        head_end = min(topic_end + (2 if qos else 0), end)
        if head_end > end_of_data:
            return None
        topic: str | None = None
        if topic_end <= end:  # a topic length past the packet's end names nothing
            with contextlib.suppress(UnicodeDecodeError):
                topic = bytes(buf[body + 2:topic_end]).decode("utf-8") or None
        packet_id = (buf[topic_end] << 8) | buf[topic_end + 1] \
            if qos and topic_end + 2 <= end else None
        return Refused(command, size, topic, packet_id)


async def read_loop(protocol: Any, reader: PacketReader,
                    closed_by_broker: Callable[[], None] | None = None) -> None:
    """gmqtt's protocol read loop, with ``reader`` in place of its own buffer and parser.
    ``closed_by_broker`` is told when the broker closed the connection (an end of stream the
    hub did not ask for; not a network error, which ends the loop by cancelling it)."""
    await protocol._connected.wait()
    while protocol._connected.is_set():
        try:
            data = await protocol.read(READ_BYTES)
        except ConnectionResetError:  # gmqtt's read: the peer closed. So does its loop
            if closed_by_broker is not None:
                closed_by_broker()
            break
        # gmqtt's keepalive drops a connection that delivered no whole packet for two
        # keepalive periods; bytes of a long packet streaming in are the broker talking.
        # (gmqtt's own field, on gmqtt's own clock.)
        protocol._connection._last_data_in = time.monotonic()
        if not reader.feed(data):
            log.error("broker stream broken (a Remaining Length over 4 bytes): dropping "
                      "the connection")
            protocol._transport.close()
            break
        if protocol._transport.is_closing():
            break
        # A read from a stream with data buffered returns without suspending: yield, so a
        # backlog is parsed a read at a time with everything else served in between.
        await asyncio.sleep(0)


def install(client: Any, *, limit: int, refuse: Callable[[Refused], None],
            unavailable: Callable[[str], None],
            closed_by_broker: Callable[[], None] | None = None) -> bool:
    """Read every connection ``client`` makes with a ``PacketReader`` bounded at ``limit``.

    gmqtt starts its read loop as a task when the socket is made, and the broker sends nothing
    before the CONNECT that follows, so the task is swapped before any byte is read. Where
    gmqtt's internals are not as expected, that connection keeps gmqtt's loop and
    ``unavailable(reason)`` says so. Returns whether the client's hook could be set."""
    create = getattr(client, "_create_connection", None)
    if create is None:
        unavailable("gmqtt's Client._create_connection not found")
        return False

    async def create_connection(*args: Any, **kwargs: Any) -> Any:
        connection = await create(*args, **kwargs)
        protocol = getattr(connection, "_protocol", None)
        task = getattr(protocol, "_read_loop_future", None)
        if not isinstance(task, asyncio.Future) or task.done() \
                or not callable(getattr(protocol, "read", None)):
            unavailable("gmqtt's protocol read loop not found where expected")
            return connection
        task.cancel()

        def emit(command: int, body: bytes) -> None:
            protocol._connection.put_package(Package(command, body))

        reader = PacketReader(limit=limit, emit=emit, refuse=refuse)
        protocol._read_loop_future = asyncio.ensure_future(
            read_loop(protocol, reader, closed_by_broker))
        return connection

    client._create_connection = create_connection
    return True


# --- The start-up check ------------------------------------------------------------------------

def _packet(command: int, body: bytes) -> bytes:
    length = bytearray()
    value = len(body)
    while True:
        value, byte = divmod(value, 128)
        length.append(byte | (0x80 if value else 0))
        if not value:
            return bytes([command]) + bytes(length) + body


def _publish_body(topic: bytes, payload: bytes, packet_id: int | None = None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if packet_id is not None:
        body += packet_id.to_bytes(2, "big")
    return body + b"\x00" + payload


def _stream() -> list[tuple[int, bytes]]:
    """Packets of every shape the hub's stream carries, lengths of one to three bytes."""
    topic = "l4mon/v1/s/vehicle/vé-1/state".encode()
    return [
        (0x20, b"\x00\x00\x00"),  # CONNACK
        (0x90, b"\x00\x01\x00\x01\x01"),  # SUBACK
        (0x30, _publish_body(topic, b'{"seq":1}')),
        (0x32, _publish_body(topic, b"x" * 200, 7)),  # a two-byte length
        (0xD0, b""),  # PINGRESP: an empty body
        (0x33, _publish_body(topic, b"y" * 16_400, 0xFFFE)),  # three bytes
        (0x31, _publish_body(topic, b"")),
        (0xE0, b"\x8e\x00"),  # DISCONNECT, session taken over
    ]


def _cuts(data: bytes) -> list[list[bytes]]:
    """``data`` cut into reads of many sizes, down to one byte at a time."""
    out = []
    for size in (1, 3, 7, 127, 1000, 4096, CHUNK, len(data)):
        out.append([data[i:i + size] for i in range(0, len(data), size)])
    return out


def _gmqtt_reads(reads: list[bytes]) -> list[tuple[int, bytes]]:
    """What gmqtt's own loop hands on for these reads (its ``_read_packet``, its buffer)."""
    got: list[tuple[int, bytes]] = []
    fake = SimpleNamespace(_connection=SimpleNamespace(
        put_package=lambda pkg: got.append((pkg.cmd, bytes(pkg.data)))))
    buf = b""
    for data in reads:
        buf += data
        parsed = MQTTProtocol._read_packet(fake, buf)  # type: ignore[arg-type]
        if parsed == -1:
            raise RuntimeError("gmqtt's parser refused the self-check stream")
        buf = buf[parsed:]
    return got


def _read(limit: int, reads: list[bytes]
          ) -> tuple[list[tuple[int, bytes]], list[Refused], PacketReader, bool]:
    """What a ``PacketReader`` makes of these reads: packets, refusals, itself, stream sound."""
    emitted: list[tuple[int, bytes]] = []
    refused: list[Refused] = []
    reader = PacketReader(limit=limit, emit=lambda c, b: emitted.append((c, b)),
                          refuse=refused.append)
    sound = all([reader.feed(r) for r in reads])  # every read fed, sound or not
    return emitted, refused, reader, sound


def check_reader(limit: int) -> str | None:
    """None when ``PacketReader`` hands on exactly what gmqtt's own loop does for streams of
    every packet shape cut every way, and refuses an oversized PUBLISH between two packets
    without holding it; else what differed."""
    packets = _stream()
    data = b"".join(_packet(c, b) for c, b in packets)
    for reads in _cuts(data):
        ours, refused, _, sound = _read(1 << 28, reads)
        if not sound or refused:
            return f"reads of {len(reads[0])} bytes: the reader refused a sound stream"
        theirs = _gmqtt_reads(reads)
        if ours != theirs or theirs != packets:
            return (f"reads of {len(reads[0])} bytes: the reader gave {len(ours)} packets, "
                    f"gmqtt {len(theirs)}, sent {len(packets)}, or they differ")
    topic = b"l4mon/v1/s/vehicle/big/state"
    big = _packet(0x32, _publish_body(topic, b"z" * (limit + 10), 0x0102))
    small = _packet(0x30, _publish_body(topic, b"{}"))
    data = small + big + small
    want = Refused(0x32, len(big), topic.decode(), 0x0102)
    for reads in _cuts(data):
        if len(reads[0]) > CHUNK:
            continue  # a real read is never larger
        emitted, refused, reader, _ = _read(limit, reads)
        if refused != [want] or len(emitted) != 2:
            return (f"reads of {len(reads[0])} bytes: an oversized PUBLISH gave "
                    f"{refused!r} and {len(emitted)} of the 2 packets around it")
        if reader.peak_held > limit + CHUNK:
            return f"an oversized PUBLISH was held: {reader.peak_held} bytes"
    return None
