"""A fast MQTT v5 load publisher for a fleet, meant to run in its own process.

A Python MQTT client cannot publish faster than a Python client can receive, so the blaster
speaks raw MQTT over a socket: the PUBLISH packets of one or more fleet "rounds" (every stream
of every vehicle once) are encoded once into a bytearray, and for each later chunk only the
fixed-width ``seq``/``ts`` digits (and QoS 1 packet ids) are overwritten in place before one
``sendall``. Numbers are right-aligned with spaces, which JSON allows, so packet lengths never
change. Measured: ~0.14 core at 245k msg/s (the broker, not the blaster, is the limit).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

SEQ_WIDTH = 12
TS_WIDTH = 14
_SEQ_MARK = b"@" * SEQ_WIDTH
_TS_MARK = b"#" * TS_WIDTH
_PID_MARK = b"\xfe\xfe"
_PIDS = [i.to_bytes(2, "big") for i in range(65536)]
_RL = {4: b"\x02", 5: b"\x03"}  # PUBACK remaining length by total size
_CHUNK_BYTES = 256 * 1024  # fast mode: at least this much per sendall


@dataclass(frozen=True, slots=True)
class BlastResult:
    """What the blaster sent; ``started`` is ``time.monotonic()`` (shared by all processes)."""

    sent: int
    elapsed_s: float
    acked: int = 0
    started: float = 0.0


def topics(vehicles: int, site: str = "bench") -> list[str]:
    """The fleet's stream topics, three per vehicle, in send order."""
    out = []
    for v in range(vehicles):
        base = f"l4mon/v1/{site}/vehicle/v{v:05d}"
        out += [f"{base}/state", f"{base}/link/l5g", f"{base}/link/lte"]
    return out


def _payload(topic: str, v: int) -> bytes:
    """A realistic JSON body (telemetry.wire schema) with placeholders for ts and seq."""
    head = b'{"ts":' + _TS_MARK + b',"seq":' + _SEQ_MARK
    if topic.endswith("/state"):
        body = (
            f',"lat":{48.1 + v * 1e-4:.7f},"lon":{11.5 + v * 1e-4:.7f},'
            f'"speed_mps":{(v % 30) + 0.37:.2f},"heading_deg":{(v * 7) % 360 + 0.5:.1f},'
            f'"mode":"autonomous","v2i_rx":{{"rsu-{v % 97:03d}":{v * 13},'
            f'"rsu-{v % 89 + 100:03d}":{v}}}}}'
        )
    else:
        rat = "nr" if topic.endswith("l5g") else "lte"
        body = (
            f',"rat":"{rat}","cell_id":"262-01-{v % 9000 + 1000}-{v % 256}",'
            f'"rsrp_dbm":{-80 - v % 40:.1f},"rsrq_db":{-8 - v % 10:.1f},"sinr_db":{v % 25:.1f},'
            f'"rtt_ms":{20 + v % 30:.2f},"ul_kbps":{5000 + v % 999:.1f},'
            f'"dl_kbps":{40000 + v % 9999:.1f}}}'
        )
    return head + body.encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: str, payload: bytes, qos: int) -> bytes:
    """One MQTT v5 PUBLISH with an empty property block (and a packet-id placeholder)."""
    t = topic.encode()
    var = struct.pack("!H", len(t)) + t + (_PID_MARK if qos else b"") + b"\x00"
    return bytes([0x30 | (qos << 1)]) + _varint(len(var) + len(payload)) + var + payload


class _Chunk:
    """``rounds`` fleet rounds pre-encoded back to back, with the offsets to patch."""

    def __init__(self, vehicles: int, site: str, qos: int, rounds: int) -> None:
        streams = [(t, i // 3) for i, t in enumerate(topics(vehicles, site))]
        one_round = [_publish(t, _payload(t, v), qos) for t, v in streams]
        self.streams = len(one_round)
        self.rounds = rounds
        self.buf = bytearray(b"".join(one_round * rounds))
        self.starts: list[int] = []  # packet boundaries, plus the end
        self.seq_offs: list[list[int]] = [[] for _ in range(rounds)]
        self.ts_offs: list[list[int]] = [[] for _ in range(rounds)]
        self.pid_offs: list[int] = []
        pos = 0
        for r in range(rounds):
            for pkt in one_round:
                self.starts.append(pos)
                self.seq_offs[r].append(pos + pkt.index(_SEQ_MARK))
                self.ts_offs[r].append(pos + pkt.index(_TS_MARK))
                if qos:
                    self.pid_offs.append(pos + pkt.index(_PID_MARK))
                pos += len(pkt)
        self.starts.append(pos)

    @property
    def packets(self) -> int:
        return self.streams * self.rounds

    def fill(self, first_round: int, ts: float, first_packet: int) -> None:
        """Stamp seq = round number and ts for every stream; packet ids cycle 1..65535."""
        buf = self.buf
        for r in range(self.rounds):
            seq = b"%*d" % (SEQ_WIDTH, first_round + r)
            stamp = b"%*.3f" % (TS_WIDTH, ts + r * 1e-3)
            for off in self.seq_offs[r]:
                buf[off : off + SEQ_WIDTH] = seq
            for off in self.ts_offs[r]:
                buf[off : off + TS_WIDTH] = stamp
        k = first_packet
        pids = _PIDS
        for off in self.pid_offs:
            buf[off : off + 2] = pids[k % 65535 + 1]
            k += 1


def _split_packet(pending: bytearray) -> tuple[int, bytes] | None:
    """Remove and return the first complete packet (type byte, body) from ``pending``."""
    mult, length, i = 1, 0, 1
    while i < len(pending):
        length += (pending[i] & 0x7F) * mult
        mult <<= 7
        if not pending[i] & 0x80:
            end = i + 1 + length
            if len(pending) < end:
                return None
            first, body = pending[0], bytes(pending[i + 1 : end])
            del pending[:end]
            return first, body
        i += 1
    return None


def _read_packet(sock: socket.socket, pending: bytearray) -> tuple[int, bytes]:
    """Read one whole MQTT packet (blocking, uses the socket timeout)."""
    while True:
        packet = _split_packet(pending)
        if packet is not None:
            return packet
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("broker closed the connection")
        pending += data


def _connack_receive_maximum(body: bytes) -> int:
    """Check the CONNACK reason code and return the broker's Receive Maximum (default 65535)."""
    if len(body) < 2 or body[1] != 0:
        raise ConnectionError(f"CONNACK refused: {body!r}")
    props, i = _decode_varint(body, 2)
    end, result = i + props, 65535
    sizes = {1: 1, 0x17: 1, 0x19: 1, 0x24: 1, 0x25: 1, 0x28: 1, 0x29: 1, 0x2A: 1}
    sizes |= {0x13: 2, 0x21: 2, 0x22: 2, 0x23: 2, 0x02: 4, 0x11: 4, 0x18: 4, 0x27: 4}
    while i < end:
        pid = body[i]
        i += 1
        if pid == 0x21:
            result = struct.unpack_from("!H", body, i)[0]
        if pid in sizes:
            i += sizes[pid]
        elif pid == 0x0B:
            _, i = _decode_varint(body, i)
        elif pid == 0x26:  # user property: two strings
            for _ in range(2):
                i += 2 + struct.unpack_from("!H", body, i)[0]
        else:  # string or binary data
            i += 2 + struct.unpack_from("!H", body, i)[0]
    return result


def _decode_varint(data: bytes, i: int) -> tuple[int, int]:
    value, mult = 0, 1
    while True:
        b = data[i]
        i += 1
        value += (b & 0x7F) * mult
        mult <<= 7
        if not b & 0x80:
            return value, i


def _connect(host: str, port: int, client_id: str, timeout_s: float) -> tuple[socket.socket, int]:
    """Open a socket, send an MQTT v5 CONNECT (clean start) and return it with Receive Maximum."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x05\x02" + struct.pack("!H", 60) + b"\x00"
    payload = struct.pack("!H", len(cid)) + cid
    sock.sendall(b"\x10" + _varint(len(var) + len(payload)) + var + payload)
    first, body = _read_packet(sock, bytearray())
    if first >> 4 != 2:
        raise ConnectionError(f"expected CONNACK, got packet type {first >> 4}")
    return sock, _connack_receive_maximum(body)


class _AckCounter:
    """Counts PUBACKs so the QoS 1 sender stays within the broker's Receive Maximum.

    Single-threaded on purpose: a reader thread costs more in GIL hand-offs than it saves.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.acked = 0
        self._pending = bytearray()
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def _feed(self, data: bytes) -> None:
        if not data:
            raise ConnectionError("broker closed the connection")
        pending = self._pending
        pending += data
        # Fast path: PUBACKs are 40 02 id id, or 40 03 id id rc (e.g. 0x10 "no matching
        # subscribers"); when the buffer is all one of those, count them in C, not per packet.
        for size in (4, 5):
            n, rest = divmod(len(pending), size)
            if not rest and pending[0::size] == b"\x40" * n and pending[1::size] == _RL[size] * n:
                pending.clear()
                self.acked += n
                return
        while (packet := _split_packet(pending)) is not None:
            first, body = packet
            if first >> 4 == 4:
                self.acked += 1
            elif first >> 4 == 14:
                raise ConnectionError(f"broker sent DISCONNECT {body!r}")

    def drain(self, wait_s: float = 0.0) -> None:
        """Consume the PUBACKs that arrived, waiting up to ``wait_s`` for the first."""
        if self._poll.poll(int(wait_s * 1000)):
            self._feed(self.sock.recv(65536))

    def wait_room(self, sent: int, need: int, window: int, deadline: float) -> bool:
        """Block until ``need`` more packets fit in the window; False on deadline."""
        self.drain()
        while sent - self.acked + need > window:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.drain(min(left, 1.0))
            if sent - self.acked + need > window:
                time.sleep(0.0005)  # let acks batch up instead of spinning on single packets
        return True


def blast(
    *,
    host: str,
    port: int,
    vehicles: int,
    rate: float | None,
    duration_s: float,
    qos: int = 0,
    max_messages: int | None = None,
    site: str = "bench",
    client_id: str = "l4mon-blaster",
    connect_timeout_s: float = 5.0,
) -> BlastResult:
    """Publish the fleet's streams for ``duration_s`` (or ``max_messages``), then disconnect.

    ``rate`` is messages per second over the whole fleet; ``None`` or ``0`` means as fast as
    the broker accepts. Every stream sends once per round, so ``seq`` is the round number.
    """
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    if vehicles < 1 or duration_s <= 0:
        raise ValueError("need vehicles >= 1 and duration_s > 0")
    one_round_bytes = len(b"".join(_publish(t, _payload(t, 0), qos) for t in topics(1, site)))
    rounds = max(1, _CHUNK_BYTES // (one_round_bytes * vehicles))
    chunk = _Chunk(vehicles, site, qos, rounds)
    paced = bool(rate)
    # Paced: ~5 ms of traffic per write keeps the rate smooth; fast: whole chunks.
    step = max(1, int(rate * 0.005)) if rate else chunk.packets
    limit = max_messages if max_messages is not None else 2**62

    sock, receive_max = _connect(host, port, client_id, connect_timeout_s)
    window = min(receive_max, 65535) - 1
    if qos:
        step = min(step, max(1, window // 4))
    sock.settimeout(max(5.0, duration_s))
    reader = _AckCounter(sock) if qos else None
    view = memoryview(chunk.buf)
    started = time.monotonic()
    deadline = started + duration_s
    sent = 0
    round_no = 0
    try:
        while sent < limit and time.monotonic() < deadline:
            chunk.fill(round_no, time.time(), sent)
            round_no += chunk.rounds
            i = 0
            while i < chunk.packets and sent < limit and time.monotonic() < deadline:
                n = min(step, chunk.packets - i, limit - sent)
                if reader is not None and not reader.wait_room(sent, n, window, deadline):
                    break
                if paced:
                    ahead = started + sent / rate - time.monotonic()  # type: ignore[operator]
                    if ahead > 0:
                        time.sleep(ahead)
                sock.sendall(view[chunk.starts[i] : chunk.starts[i + n]])
                sent += n
                i += n
        elapsed = time.monotonic() - started
        if reader is not None:  # let the last PUBACKs arrive so `acked` is meaningful
            reader.wait_room(sent, sent, sent, time.monotonic() + 5.0)
        sock.sendall(b"\xe0\x00")  # DISCONNECT, normal
    finally:
        view.release()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    return BlastResult(sent, elapsed, reader.acked if reader else 0, started)


def _child(conn: Connection, cpu: int | None, kwargs: dict[str, object]) -> None:
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        conn.send(blast(**kwargs))  # type: ignore[arg-type]
    except BaseException as exc:  # any failure is reported to the parent
        conn.send(RuntimeError(f"blaster failed: {exc!r}"))
    finally:
        conn.close()


class BlasterHandle:
    """A running blaster child process."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self._conn = conn

    def join(self, timeout: float) -> BlastResult:
        """Wait for the result; on timeout the child is killed and TimeoutError raised."""
        try:
            if not self._conn.poll(timeout):
                raise TimeoutError(f"blaster did not finish within {timeout:.1f}s")
            result = self._conn.recv()
        except EOFError:
            self.process.join(2.0)
            raise RuntimeError(
                f"blaster child died without a result (exit code {self.process.exitcode})"
            ) from None
        finally:
            self.terminate()
        if isinstance(result, BaseException):
            raise result
        return result

    def terminate(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL); idempotent."""
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self._conn.close()


def start_blaster(
    *,
    host: str,
    port: int,
    vehicles: int,
    rate: float | None,
    duration_s: float,
    qos: int = 0,
    max_messages: int | None = None,
    site: str = "bench",
    client_id: str = "l4mon-blaster",
    cpu: int | None = None,
) -> BlasterHandle:
    """Run :func:`blast` in a spawned child process (optionally pinned to ``cpu``)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    kwargs: dict[str, object] = dict(
        host=host,
        port=port,
        vehicles=vehicles,
        rate=rate,
        duration_s=duration_s,
        qos=qos,
        max_messages=max_messages,
        site=site,
        client_id=client_id,
    )
    proc = ctx.Process(target=_child, args=(child, cpu, kwargs), name="l4mon-blaster", daemon=True)
    proc.start()
    child.close()
    return BlasterHandle(proc, parent)


def main() -> None:
    """CLI for manual load tests: ``python -m testing.blaster --port 1883 --rate 1000``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=0.0, help="msgs/s, 0 = as fast as possible")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--qos", type=int, default=0, choices=(0, 1))
    a = ap.parse_args()
    r = blast(
        host=a.host,
        port=a.port,
        vehicles=a.vehicles,
        rate=a.rate,
        duration_s=min(a.seconds, 600.0),
        qos=a.qos,
    )
    print(
        f"sent {r.sent} in {r.elapsed_s:.2f}s = {r.sent / r.elapsed_s:,.0f} msg/s, acked {r.acked}"
    )


if __name__ == "__main__":
    main()
