"""A fast MQTT v5 load publisher for a fleet, meant to run in its own process.

A Python MQTT client cannot publish faster than a Python client can receive, so the blaster
speaks raw MQTT over a socket: the PUBLISH packets of one or more fleet "rounds" (every stream
of every vehicle once) are encoded once into a bytearray, and for each later chunk only the
fixed-width ``seq``/``ts`` digits (and QoS 1 packet ids) are overwritten in place before one
``sendall``. Numbers are right-aligned with spaces, which JSON allows, so packet lengths never
change. Measured: ~0.14 core at 245k msg/s (the broker, not the blaster, is the limit).

Two loads:

* **plain** (the default): every round is the same apart from ``seq``/``ts``; cells never
  change, RTT is constant, no events. What the throughput benches compare against.
* **varied** (``varied=Variation()``): what a soak needs to exercise handovers, alerts and the
  journal. A cycle of distinct rounds (:class:`VariedCycle`) is pre-encoded in which vehicles
  drive back and forth around their spot on the site's route (some through its intersections),
  RTT jitters and radio levels drift. Rarer things are pre-encoded alternatives of fixed-width
  fields swapped in at cycle boundaries, so they need not repeat with the cycle: a link's
  serving cell changes every two minutes or so, a small share of links has an RTT spike above the
  degraded threshold (raising ``rtt_over_budget``, resolved once it has passed), a vehicle in
  a minimal risk manoeuvre. A second connection publishes vehicle events (QoS 1, at a bounded
  ``events_per_min``) and RSU status. Per chunk the cost is the plain mode's; the swaps are a
  few hundred slice writes per cycle. Measured at 30,000 msg/s (1,000 vehicles, paced): both
  loads ~0.03 core; the varied one takes ~1.7 s to build its 64 MiB cycle (96 MiB at most:
  2,000-3,000 vehicles get a shorter cycle).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import math
import multiprocessing
import os
import random
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Protocol

import msgspec

from telemetry.site import DEMO_SITE_PATH, Site, load_site
from telemetry.topics import event_topic, rsu_topic
from telemetry.wire import RsuStatus, VehicleEvent

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
    #: CPU seconds the blaster spent while sending (its set-up excluded).
    cpu_s: float = 0.0
    #: Varied mode: events published (QoS 1) and acknowledged, RSU status messages, and the
    #: pre-encoded cycle (bytes, rounds).
    events: int = 0
    events_acked: int = 0
    rsu_status: int = 0
    buffer_bytes: int = 0
    cycle_rounds: int = 0


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


def _variable_header(topic: str, qos: int, pid: int | None = None) -> bytes:
    """Topic, packet id (a placeholder unless ``pid``) at QoS 1, an empty property block."""
    t = topic.encode()
    ident = (_PID_MARK if pid is None else struct.pack("!H", pid)) if qos else b""
    return struct.pack("!H", len(t)) + t + ident + b"\x00"


def _publish(topic: str, payload: bytes, qos: int, pid: int | None = None) -> bytes:
    """One MQTT v5 PUBLISH with an empty property block (and a packet-id placeholder, or
    ``pid``)."""
    var = _variable_header(topic, qos, pid)
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

    @property
    def buffer_bytes(self) -> int:
        return len(self.buf)

    def prepare(self, round_no: int, ts: float, first_packet: int) -> tuple[int, int, int]:
        """Stamp the whole chunk for its next send: (first packet, packets, rounds)."""
        self.fill(round_no, ts, first_packet)
        return 0, self.packets, self.rounds

    def offset(self, packet: int) -> int:
        return self.starts[packet]

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


# -- the varied load ----------------------------------------------------------------------------

#: The varied cycle's pre-encoded rounds: 100 (10 s at 10 Hz) unless that would take more than
#: MAX_CYCLE_BYTES (about 1,400 vehicles); never fewer than MIN_CYCLE_ROUNDS (a spike, an MRM
#: and a vehicle's drive back and forth must fit in one cycle).
DEFAULT_CYCLE_ROUNDS = 100
MIN_CYCLE_ROUNDS = 40
MAX_CYCLE_BYTES = 96 * 2**20
#: ``"ts":<ts>,"seq":<seq>``: the two stamped fields are adjacent, so one write stamps both.
_STAMP_SEP = b',"seq":'
_STAMP_BYTES = TS_WIDTH + len(_STAMP_SEP) + SEQ_WIDTH
_MODE_AUTONOMOUS = b'"autonomous"'
_MODE_MRM = b'"mrm"'.ljust(len(_MODE_AUTONOMOUS))  # blanks after the value: valid JSON
_RTT_WIDTH = 8
#: Every this many vehicles one is parked around an intersection of the site (so that some
#: handovers happen inside a junction's zone), the rest spread along the route.
_AT_JUNCTION_EVERY = 10
_OTHER_EVENTS = ("door_open", "passenger_call", "obstacle")


@dataclass(frozen=True, slots=True)
class Variation:
    """What the varied load changes, and how often.

    Times are seconds of the fleet's own rounds at ``round_hz`` (a round is every stream of
    every vehicle once): at another publish rate they stretch accordingly. An RTT spike of
    ``spike_rounds`` at 10 Hz raises ``rtt_over_budget`` about 6 s after it starts and the
    alert resolves about 20 s later, so ``spike_every_s`` should stay above ~30 s for the
    alerts to resolve between spikes (the default is 60 s).
    """

    #: Rounds pre-encoded per cycle; None: DEFAULT_CYCLE_ROUNDS within MAX_CYCLE_BYTES.
    cycle_rounds: int | None = None
    round_hz: float = 10.0
    #: Mean time between serving-cell changes of one link (each link 0.5-1.5x this, at least
    #: three cycles). 120 s: a little more often than on the demo site's loop, where a
    #: shuttle's modems each hand over twice per 5-minute lap.
    handover_every_s: float = 120.0
    #: Share of vehicles with RTT spikes on one of their links, one every ``spike_every_s``.
    spike_share: float = 0.02
    spike_every_s: float = 60.0
    spike_rounds: int = 20
    spike_rtt_ms: float = 300.0
    #: Vehicle events (QoS 1) over the whole fleet; an MRM episode is two (started, finished).
    events_per_min: float = 12.0
    #: Rounds a vehicle reports ``mode: "mrm"`` in an MRM episode.
    mrm_rounds: int = 30
    #: Status messages per second from each RSU of the site.
    rsu_hz: float = 1.0
    #: How fast vehicles drive back and forth around their spot, m/s.
    speed_mps: float = 6.0
    seed: int = 1
    #: Site TOML whose route and intersections place the fleet; "" = the bundled demo site.
    site_path: str = ""

    def __post_init__(self) -> None:
        if self.cycle_rounds is not None and self.cycle_rounds < MIN_CYCLE_ROUNDS:
            raise ValueError(f"cycle_rounds must be >= {MIN_CYCLE_ROUNDS}")
        if min(self.round_hz, self.handover_every_s, self.spike_every_s, self.spike_rtt_ms,
               self.speed_mps) <= 0:
            raise ValueError("round_hz, handover_every_s, spike_every_s, spike_rtt_ms and "
                             "speed_mps must be > 0")
        if not 0.0 <= self.spike_share <= 1.0:
            raise ValueError("spike_share must be within [0, 1]")
        if not 1 <= self.spike_rounds <= MIN_CYCLE_ROUNDS // 2 or \
                not 1 <= self.mrm_rounds <= MIN_CYCLE_ROUNDS:
            raise ValueError(f"spike_rounds must be 1-{MIN_CYCLE_ROUNDS // 2}, mrm_rounds "
                             f"1-{MIN_CYCLE_ROUNDS}")
        if self.events_per_min < 0 or self.rsu_hz < 0:
            raise ValueError("events_per_min and rsu_hz must be >= 0")


class _Route:
    """The site's first route as a closed polyline in metres, walked by distance."""

    def __init__(self, site: Site) -> None:
        if not site.routes:
            raise ValueError(f"site {site.name} has no route to place the fleet on")
        self.frame = site.frame()
        points = [self.frame.to_xy(lat, lon) for lat, lon in site.routes[0].waypoints]
        if points[0] != points[-1]:
            points.append(points[0])
        self.points = points
        self.starts = [0.0]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            self.starts.append(self.starts[-1] + math.hypot(x1 - x0, y1 - y0))
        self.length = self.starts[-1]

    def at(self, s: float) -> tuple[float, float, float]:
        """(lat, lon, compass bearing of the route there) at distance ``s`` along it."""
        s %= self.length
        i = min(bisect.bisect_right(self.starts, s) - 1, len(self.points) - 2)
        (x0, y0), (x1, y1) = self.points[i], self.points[i + 1]
        span = self.starts[i + 1] - self.starts[i]
        f = (s - self.starts[i]) / span if span else 0.0
        lat, lon = self.frame.to_latlon(x0 + f * (x1 - x0), y0 + f * (y1 - y0))
        return lat, lon, math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0

    def nearest(self, lat: float, lon: float) -> float:
        """Distance along the route of its point nearest to (lat, lon)."""
        px, py = self.frame.to_xy(lat, lon)
        best, where = math.inf, 0.0
        for i, ((x0, y0), (x1, y1)) in enumerate(itertools.pairwise(self.points)):
            dx, dy = x1 - x0, y1 - y0
            span2 = dx * dx + dy * dy
            f = 0.0 if not span2 else max(0.0, min(1.0, ((px - x0) * dx + (py - y0) * dy)
                                                   / span2))
            d = math.hypot(x0 + f * dx - px, y0 + f * dy - py)
            if d < best:
                best, where = d, self.starts[i] + f * math.sqrt(span2)
        return where


def _tri(x: float) -> float:
    """A triangle wave: 1 at 0 and 1, -1 at 0.5 (continuous across the cycle's wrap)."""
    return 4.0 * abs(x - 0.5) - 1.0


class _Link:
    """One vehicle link's schedule in the varied cycle."""

    __slots__ = ("cells", "current", "packet", "period", "phase", "switch_round")

    def __init__(self, packet: int, cells: tuple[bytes, bytes], period: int, phase: int,
                 switch_round: int) -> None:
        self.packet = packet  # its packet's index within a round
        self.cells = cells  # the two cells it is served by in turn (quoted JSON strings)
        self.current = 0
        self.period = period  # cycles between serving-cell changes
        self.phase = phase
        self.switch_round = switch_round  # the round of the cycle at which it changes

    def changes_in(self, cycle: int) -> bool:
        return cycle >= 0 and (cycle + self.phase) % self.period == 0


class _Spike:
    """One link's RTT spikes: ``rtts`` in rounds ``first``... of a cycle, every ``every``
    cycles, postponed while the link changes cell."""

    __slots__ = ("due", "every", "first", "link", "rtts")

    def __init__(self, link: _Link, every: int, due: int, first: int, rtts: list[bytes]) -> None:
        self.link = link
        self.every = every
        self.due = due  # the first cycle it may come in
        self.first = first
        self.rtts = rtts


class VariedCycle:
    """The varied load's pre-encoded cycle of ``rounds`` distinct fleet rounds.

    Every packet of a stream has the same layout in every round (fixed-width numbers), so a
    field is found at ``round * round_bytes + offset``: stamping and swapping need no per-packet
    tables. Not thread-safe; the blaster's loop owns it:

    * :meth:`prepare` (at each span; it calls :meth:`begin_cycle` at a cycle's first round)
      stamps ``seq``/``ts``/packet ids of the next rounds; :meth:`offset` finds packets.
    * :meth:`side_messages` returns the events and RSU status messages due (its own
      connection sends them).
    """

    def __init__(self, vehicles: int, site: str = "bench", qos: int = 0,
                 variation: Variation | None = None) -> None:
        if vehicles < 1:
            raise ValueError("need vehicles >= 1")
        var = variation or Variation()
        self.variation = var
        self.vehicles = vehicles
        self.site = site
        self.qos = qos
        geo = load_site(var.site_path or DEMO_SITE_PATH)
        route = _Route(geo)
        rng = random.Random(var.seed)
        self.names = [f"v{v:05d}" for v in range(vehicles)]
        stream_topics = topics(vehicles, site)
        headers = [_variable_header(t, qos) for t in stream_topics]
        junctions = [route.nearest(*ix.centre) for ix in geo.intersections]
        rsus = [(r.id, route.nearest(r.lat, r.lon)) for r in geo.rsus] or [("rsu-none", 0.0)]
        self.rsus = [(r.id, r.intersection) for r in geo.rsus]

        # Per vehicle: where it drives, its radio and its two links' cells.
        spots: list[float] = []
        for v in range(vehicles):
            if junctions and v % _AT_JUNCTION_EVERY == 0:
                k = v // _AT_JUNCTION_EVERY
                spots.append(junctions[k % len(junctions)] + (k // len(junctions) % 5 - 2) * 4.0)
            else:
                spots.append((v + 0.5) / vehicles * route.length)
        nearest_rsu = [min(rsus, key=lambda r, s=s: abs(r[1] - s))[0].encode()
                       for s in spots]
        amplitude = 0.0  # set once the cycle length is known

        def state_payload(v: int, r: int, rounds: int, rx: int) -> bytes:
            x = r / rounds
            back = x < 0.5  # the triangle falls in the first half: driving backwards
            lat, lon, bearing = route.at(spots[v] + amplitude * _tri(x))
            heading = (bearing + 180.0) % 360.0 if back else bearing
            return (b'{"ts":' + _TS_MARK + _STAMP_SEP + _SEQ_MARK
                    + b',"lat":%12.7f,"lon":%12.7f,"speed_mps":%6.2f,"heading_deg":%6.1f,'
                    b'"mode":%s,"v2i_rx":{"%s":%9d}}'
                    % (lat, lon, var.speed_mps, heading, _MODE_AUTONOMOUS, nearest_rsu[v], rx))

        radio = [(rng.uniform(0, 2 * math.pi), -88.0 - (v % 7) * 1.5) for v in range(vehicles)]

        def link_payload(v: int, k: int, r: int, rounds: int, cell: bytes,
                         pick: random.Random) -> bytes:
            phase, centre = radio[v]
            wave = math.sin(2 * math.pi * r / rounds + phase + k)
            base = 10.0 + v % 13 if k == 0 else 28.0 + v % 19
            # Mostly small jitter, now and then a bump: never 3x the baseline, which the
            # handover detector would read as a stall around a change of cell.
            rtt = base * (1.0 + 0.4 * pick.random() + (0.8 if pick.random() < 0.05 else 0.0))
            return (b'{"ts":' + _TS_MARK + _STAMP_SEP + _SEQ_MARK
                    + b',"rat":"%s","cell_id":%s,"rsrp_dbm":%7.1f,"rsrq_db":%6.1f,'
                    b'"sinr_db":%6.1f,"rtt_ms":%8.2f,"ul_kbps":%9.1f,"dl_kbps":%9.1f}'
                    % (b"nr" if k == 0 else b"lte", cell,
                       centre + 6.0 * wave + pick.uniform(-1.0, 1.0),
                       -9.0 - 3.0 * wave, 14.0 + 6.0 * wave + pick.uniform(-1.5, 1.5), rtt,
                       6000.0 + 1500.0 * pick.random(), 40000.0 + 15000.0 * pick.random()))

        def cells(v: int, k: int) -> tuple[bytes, bytes]:
            per, prefix = (10, "nr") if k == 0 else (25, "lte")
            home = v // per
            return (f'"{prefix}-{home:05d}"'.encode(), f'"{prefix}-{home + 1:05d}"'.encode())

        def packet(p: int, payload: bytes) -> bytes:
            rest = headers[p] + payload
            return bytes([0x30 | (qos << 1)]) + _varint(len(rest)) + rest

        def one_round(r: int, rounds: int, rx: list[int], pick: random.Random) -> list[bytes]:
            out = []
            for v in range(vehicles):
                out.append(packet(3 * v, state_payload(v, r, rounds, rx[v])))
                for k in (0, 1):
                    out.append(packet(3 * v + 1 + k, link_payload(v, k, r, rounds,
                                                                  cells(v, k)[0], pick)))
            return out

        # The layout (and so the length) of a round is the same whatever the values: round 0
        # sizes the buffer, and every later round is checked against it.
        first = one_round(0, DEFAULT_CYCLE_ROUNDS, [0] * vehicles, random.Random(0))
        sizes = [len(p) for p in first]
        self.round_bytes = sum(sizes)
        self.streams = len(first)
        rounds = var.cycle_rounds or max(MIN_CYCLE_ROUNDS, min(
            DEFAULT_CYCLE_ROUNDS, MAX_CYCLE_BYTES // self.round_bytes))
        self.rounds = rounds
        amplitude = var.speed_mps * rounds / var.round_hz / 4.0  # back and forth per cycle
        self.buf = bytearray(rounds * self.round_bytes)
        rx = [rng.randrange(1000) for _ in range(vehicles)]
        for r in range(rounds):
            built = one_round(r, rounds, rx, rng)
            if [len(p) for p in built] != sizes:
                raise ValueError("a value overflowed its fixed-width field")
            self.buf[r * self.round_bytes:(r + 1) * self.round_bytes] = b"".join(built)
            # V2I messages received: ~95 % of one RSU broadcast per round (back at the wrap,
            # which the hub takes as a counter re-base).
            rx = [n + (rng.random() < 0.95) for n in rx]

        # Offsets within a round: packets, the stamp, packet ids, swappable fields.
        self.packet_rel: list[int] = []
        self.stamp_rel: list[int] = []
        self.pid_rel: list[int] = []
        self.field_rel: dict[str, list[int]] = {"cell": [], "rtt": [], "mode": []}
        pos = 0
        for pkt in first:
            self.packet_rel.append(pos)
            self.stamp_rel.append(pos + pkt.index(_TS_MARK))
            if qos:
                self.pid_rel.append(pos + pkt.index(_PID_MARK))
            for name, key in (("cell", b'"cell_id":'), ("rtt", b'"rtt_ms":'),
                              ("mode", b'"mode":')):
                at = pkt.find(key)
                self.field_rel[name].append(-1 if at < 0 else pos + at + len(key))
            pos += len(pkt)

        # Schedules: cell changes for every link, RTT spikes for a share of the vehicles.
        cycle_s = rounds / var.round_hz
        mean = var.handover_every_s / cycle_s
        self.links = [
            _Link(3 * v + 1 + k, cells(v, k),
                  period := max(3, round(mean * rng.uniform(0.5, 1.5))),
                  rng.randrange(period), rng.randrange(rounds))
            for v in range(vehicles) for k in (0, 1)]
        self.spikes: list[_Spike] = []
        if var.spike_share > 0:
            stride = max(1, round(1 / var.spike_share))
            every = max(3, round(var.spike_every_s / cycle_s))
            for v in range(stride // 2, vehicles, stride):
                rtts = [b"%*.2f" % (_RTT_WIDTH, var.spike_rtt_ms * rng.uniform(0.85, 1.15))
                        for _ in range(var.spike_rounds)]
                self.spikes.append(_Spike(self.links[2 * v + (v // stride) % 2], every,
                                          rng.randrange(every),
                                          rng.randrange(rounds - var.spike_rounds + 1), rtts))
        #: Writes to undo at the next cycle: (field, packet, first round, values).
        self._restore: list[tuple[str, int, int, list[bytes]]] = []
        #: Cell changes whose first rounds come in the next cycle: (link, up to round).
        self._carry: list[tuple[_Link, int]] = []
        self.cycle = -1
        #: Rounds :meth:`prepare` stamps at once (the blaster sets it from its pacing).
        self.span = 1
        #: What the swaps did so far: cell changes, RTT spikes, MRM episodes.
        self.handovers = self.spike_count = self.mrm_count = 0

        # Events and RSU status (side_messages).
        self._rng = random.Random(var.seed + 1)
        self._outbox: deque[tuple[int, int, str]] = deque()  # (due round, vehicle, kind)
        self._event_seq: dict[int, int] = {}
        self._mrm_pending: int | None = None
        self._mrm_busy_until = -1  # round number before which no new MRM starts
        self._next_event: float | None = None
        self._happenings = 0
        # An MRM episode is two events and the other happenings one each: a happening every
        # this many seconds keeps the events at events_per_min.
        self._event_every = (math.inf if not var.events_per_min
                             else 60.0 * 4 / 3 / var.events_per_min)
        self._rsu_seq = [0] * len(self.rsus)
        self._rsu_next: list[float] | None = None
        self.boot_id = f"blaster-{os.getpid()}-{var.seed}"

    @property
    def buffer_bytes(self) -> int:
        return len(self.buf)

    @property
    def packets(self) -> int:
        return self.rounds * self.streams

    def offset(self, packet: int) -> int:
        """Where packet number ``packet`` of the cycle starts (``packets`` gives the end)."""
        r, p = divmod(packet, self.streams)
        return r * self.round_bytes + self.packet_rel[p]

    def _write(self, field: str, packet: int, first: int, values: list[bytes]) -> list[bytes]:
        """Write ``values`` into one packet's ``field`` in rounds ``first``...; return what
        was there before."""
        buf, rb = self.buf, self.round_bytes
        at = self.field_rel[field][packet] + first * rb
        width = len(values[0])
        before = []
        for value in values:
            before.append(bytes(buf[at:at + width]))
            buf[at:at + width] = value
            at += rb
        return before

    def begin_cycle(self, cycle: int) -> None:
        """Swap in what changes in ``cycle``: undo the last cycle's spikes and MRM, finish its
        cell changes, then this cycle's cell changes, spikes and a pending MRM."""
        var, rounds = self.variation, self.rounds
        for field, packet, first, values in self._restore:
            self._write(field, packet, first, values)
        self._restore.clear()
        for link, until in self._carry:
            self._write("cell", link.packet, 0, [link.cells[link.current]] * until)
        self._carry.clear()
        for link in self.links:
            if link.changes_in(cycle):
                link.current ^= 1
                at = link.switch_round
                self._write("cell", link.packet, at, [link.cells[link.current]] * (rounds - at))
                if at:
                    self._carry.append((link, at))
                self.handovers += 1
        for spike in self.spikes:
            link = spike.link
            # Never around a change of cell: a stall there is a long interruption (a
            # handover failure inside a junction), which is not what a spike is for. A link
            # changes at most every third cycle, so a spike waits two cycles at most.
            if cycle < spike.due or link.changes_in(cycle) or link.changes_in(cycle - 1):
                continue
            spike.due = cycle + spike.every
            before = self._write("rtt", link.packet, spike.first, spike.rtts)
            self._restore.append(("rtt", link.packet, spike.first, before))
            self.spike_count += 1
        vehicle = self._mrm_pending
        if vehicle is not None:
            self._mrm_pending = None
            start = cycle * rounds
            before = self._write("mode", 3 * vehicle, 0, [_MODE_MRM] * var.mrm_rounds)
            self._restore.append(("mode", 3 * vehicle, 0, before))
            self._outbox.append((start, vehicle, "mrm_started"))
            self._outbox.append((start + var.mrm_rounds, vehicle, "mrm_finished"))
            self._mrm_busy_until = start + rounds
            self.mrm_count += 1
        self.cycle = cycle

    def prepare(self, round_no: int, ts: float, first_packet: int) -> tuple[int, int, int]:
        """Stamp the next ``span`` rounds (fewer at the cycle's end) for sending as rounds
        ``round_no``...: (first packet, packets, rounds)."""
        r = round_no % self.rounds
        if r == 0 and round_no // self.rounds != self.cycle:
            self.begin_cycle(round_no // self.rounds)
        n = min(self.span, self.rounds - r)
        buf, rb, rel = self.buf, self.round_bytes, self.stamp_rel
        for i in range(n):
            stamp = b"%*.3f" % (TS_WIDTH, ts + i * 1e-3) + _STAMP_SEP + \
                b"%*d" % (SEQ_WIDTH, round_no + i)
            base = (r + i) * rb
            for o in rel:
                buf[base + o:base + o + _STAMP_BYTES] = stamp
        if self.qos:
            k = first_packet
            pids = _PIDS
            for i in range(n):
                base = (r + i) * rb
                for o in self.pid_rel:
                    buf[base + o:base + o + 2] = pids[k % 65535 + 1]
                    k += 1
        return r * self.streams, n * self.streams, n

    def _event(self, vehicle: int, kind: str, ts: float) -> tuple[str, bytes]:
        seq = self._event_seq.get(vehicle, 0)
        self._event_seq[vehicle] = seq + 1
        return event_topic(self.site, self.names[vehicle]), msgspec.json.encode(VehicleEvent(
            ts=ts, kind=kind, seq=seq, detail=f"blaster: {kind.replace('_', ' ')}"))

    def side_messages(self, wall: float, round_no: int) -> list[tuple[str, bytes, int]]:
        """Events (QoS 1) and RSU status (QoS 0) due at wall-clock ``wall`` with ``round_no``
        rounds sent: (topic, payload, qos). A stalled caller gets no burst afterwards."""
        var = self.variation
        out: list[tuple[str, bytes, int]] = []
        while self._outbox and self._outbox[0][0] <= round_no:
            _, vehicle, kind = self._outbox.popleft()
            out.append((*self._event(vehicle, kind, wall), 1))
        if self._next_event is None:
            self._next_event = wall + self._event_every / 2
        if wall >= self._next_event:
            self._next_event = max(self._next_event + self._event_every, wall)
            out.extend(self._happening(wall, round_no))
        if var.rsu_hz and self.rsus:
            period = 1.0 / var.rsu_hz
            if self._rsu_next is None:  # RSUs report at staggered phases
                self._rsu_next = [wall + period * i / len(self.rsus)
                                  for i in range(len(self.rsus))]
            for i, (rsu, intersection) in enumerate(self.rsus):
                if wall < self._rsu_next[i]:
                    continue
                self._rsu_next[i] = max(self._rsu_next[i] + period, wall)
                self._rsu_seq[i] += 1
                pick = self._rng
                out.append((rsu_topic(self.site, rsu), msgspec.json.encode(RsuStatus(
                    ts=wall, seq=self._rsu_seq[i], intersection=intersection,
                    boot_id=self.boot_id,
                    # One V2I broadcast per fleet round: the vehicles' v2i_rx counts them.
                    tx_msgs=round_no, rx_msgs=round_no // 20,
                    backhaul_rtt_ms=round(3.0 + 4.0 * pick.random(), 2),
                    cpu_pct=round(15.0 + 20.0 * pick.random(), 1))), 0))
        return out

    def _happening(self, wall: float, round_no: int) -> list[tuple[str, bytes, int]]:
        """The next vehicle happening, in turn: a takeover request, another event, an MRM."""
        k = self._happenings
        self._happenings += 1
        vehicle = (k * 7919 + 3) % self.vehicles
        kind = ("takeover_request", "other", "mrm")[k % 3]
        if kind == "mrm" and self._mrm_pending is None and round_no >= self._mrm_busy_until:
            self._mrm_pending = vehicle  # starts with the next cycle (begin_cycle)
            self._mrm_busy_until = round_no + 2 * self.rounds
            return []
        if kind != "takeover_request":
            kind = _OTHER_EVENTS[(k // 3) % len(_OTHER_EVENTS)]
        return [(*self._event(vehicle, kind, wall), 1)]


def parse_publishes(data: bytes | bytearray | memoryview) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, qos) of each PUBLISH in ``data`` as the blaster encodes them (MQTT v5,
    no properties): to check what it sends without a broker."""
    data = bytes(data)
    i = 0
    while i < len(data):
        first = data[i]
        if first >> 4 != 3:
            raise ValueError(f"not a PUBLISH at byte {i}")
        length, j = _decode_varint(data, i + 1)
        end = j + length
        size = struct.unpack_from("!H", data, j)[0]
        topic = data[j + 2:j + 2 + size].decode()
        j += 2 + size
        qos = (first >> 1) & 3
        if qos:
            j += 2
        props, j = _decode_varint(data, j)
        yield topic, data[j + props:end], qos
        i = end


class _Source(Protocol):
    """What the send loop needs of a pre-encoded load (plain chunk or varied cycle)."""

    buf: bytearray

    def prepare(self, round_no: int, ts: float, first_packet: int) -> tuple[int, int, int]: ...

    def offset(self, packet: int) -> int: ...


class _Side:
    """The varied load's second connection: vehicle events at QoS 1 (counted when
    acknowledged) and RSU status, so they never wait behind the telemetry stream's bytes."""

    def __init__(self, host: str, port: int, client_id: str, timeout_s: float) -> None:
        self.sock, _ = _connect(host, port, client_id, timeout_s)
        self.acks = _AckCounter(self.sock)
        self.pid = 0
        self.events = 0
        self.rsu = 0

    def send(self, messages: list[tuple[str, bytes, int]]) -> None:
        for topic, payload, qos in messages:
            pid = None
            if qos:
                self.pid = self.pid % 65535 + 1
                pid = self.pid
                self.events += 1
            else:
                self.rsu += 1
            self.sock.sendall(_publish(topic, payload, qos, pid))
        self.acks.drain()

    def close(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            self.acks.wait_room(self.events, self.events, self.events,
                                time.monotonic() + 3.0)
            self.sock.sendall(b"\xe0\x00")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()



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
    varied: Variation | None = None,
) -> BlastResult:
    """Publish the fleet's streams for ``duration_s`` (or ``max_messages``), then disconnect.

    ``rate`` is messages per second over the whole fleet; ``None`` or ``0`` means as fast as
    the broker accepts. Every stream sends once per round, so ``seq`` is the round number.
    ``varied`` switches to the varied load (module docstring); its events and RSU status go
    over a second connection and are not counted in ``sent``.
    """
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    if vehicles < 1 or duration_s <= 0:
        raise ValueError("need vehicles >= 1 and duration_s > 0")
    source: _Source
    if varied is None:
        one_round_bytes = len(b"".join(_publish(t, _payload(t, 0), qos)
                                       for t in topics(1, site)))
        rounds = max(1, _CHUNK_BYTES // (one_round_bytes * vehicles))
        source = chunk = _Chunk(vehicles, site, qos, rounds)
    else:
        source = cycle = VariedCycle(vehicles, site, qos, varied)
        # Paced: one round at a time, stamped just before it goes out; fast: ~_CHUNK_BYTES.
        cycle.span = 1 if rate else max(1, _CHUNK_BYTES // cycle.round_bytes)
    paced = bool(rate)
    # Paced: ~5 ms of traffic per write keeps the rate smooth; fast: whole chunks (spans).
    step = max(1, int(rate * 0.005)) if rate else chunk.packets if varied is None else 2**62
    limit = max_messages if max_messages is not None else 2**62

    sock, receive_max = _connect(host, port, client_id, connect_timeout_s)
    window = min(receive_max, 65535) - 1
    if qos:
        step = min(step, max(1, window // 4))
    sock.settimeout(max(5.0, duration_s))
    reader = _AckCounter(sock) if qos else None
    side = None
    if varied is not None and (varied.events_per_min or varied.rsu_hz):
        side = _Side(host, port, f"{client_id}-side", connect_timeout_s)
    view = memoryview(source.buf)
    started = time.monotonic()
    cpu_started = time.process_time()
    deadline = started + duration_s
    sent = 0
    round_no = 0
    try:
        while sent < limit and time.monotonic() < deadline:
            first, count, rounds = source.prepare(round_no, time.time(), sent)
            round_no += rounds
            i = 0
            while i < count and sent < limit and time.monotonic() < deadline:
                n = min(step, count - i, limit - sent)
                if reader is not None and not reader.wait_room(sent, n, window, deadline):
                    break
                if paced:
                    ahead = started + sent / rate - time.monotonic()  # type: ignore[operator]
                    if ahead > 0:
                        time.sleep(ahead)
                sock.sendall(view[source.offset(first + i):source.offset(first + i + n)])
                sent += n
                i += n
            if side is not None:
                side.send(cycle.side_messages(time.time(), round_no))
        elapsed = time.monotonic() - started
        cpu_s = time.process_time() - cpu_started
        if reader is not None:  # let the last PUBACKs arrive so `acked` is meaningful
            reader.wait_room(sent, sent, sent, time.monotonic() + 5.0)
        sock.sendall(b"\xe0\x00")  # DISCONNECT, normal
    finally:
        view.release()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if side is not None:
            side.close()
    extra = {} if varied is None else dict(
        events=side.events if side else 0, events_acked=side.acks.acked if side else 0,
        rsu_status=side.rsu if side else 0, cycle_rounds=cycle.rounds)
    return BlastResult(sent, elapsed, reader.acked if reader else 0, started, cpu_s=cpu_s,
                       buffer_bytes=len(source.buf), **extra)  # type: ignore[arg-type]


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
    varied: Variation | None = None,
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
        varied=varied,
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
    ap.add_argument("--varied", action="store_true", help="the varied load (module docstring)")
    ap.add_argument("--events-per-min", type=float, default=Variation().events_per_min)
    ap.add_argument("--cycle-rounds", type=int, default=None)
    a = ap.parse_args()
    r = blast(
        host=a.host,
        port=a.port,
        vehicles=a.vehicles,
        rate=a.rate,
        duration_s=min(a.seconds, 600.0),
        qos=a.qos,
        varied=Variation(cycle_rounds=a.cycle_rounds, events_per_min=a.events_per_min)
        if a.varied else None,
    )
    print(
        f"sent {r.sent} in {r.elapsed_s:.2f}s = {r.sent / r.elapsed_s:,.0f} msg/s, acked {r.acked}"
        f"; blaster CPU {r.cpu_s / r.elapsed_s:.3f} core; buffer {r.buffer_bytes / 2**20:.1f} MiB"
    )
    if a.varied:
        print(f"cycle of {r.cycle_rounds} rounds; events {r.events} (acked {r.events_acked}), "
              f"RSU status {r.rsu_status}")


if __name__ == "__main__":
    main()
