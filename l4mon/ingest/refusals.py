"""What the transport refuses before a message reaches the buffer, and who sent it.

Three things are decided at the MQTT seam rather than by the decoder, because by the time a
message would reach the decoder the harm is done or the fact is lost:

- a packet over the hub's bound (``oversize``): never read whole (l4mon/ingest/_bounded_read.py);
- a retained message on an event topic (``retained_event``): a retained event is the past
  replayed to whoever subscribes, not a vehicle asking now (a retained ``takeover_request``
  would raise a takeover at every hub start). Retained state, link, service and RSU messages
  are the broker's last known value by design and go on to the decoder, which judges their
  timestamps as it judges any message's;
- the broker ending the hub's session because another client connected with its client id
  (MQTT 5 DISCONNECT reason 0x8E, "Session taken over"): that client may now receive what was
  meant for the hub. Mosquitto 2.0.11 (Debian 12's) sends no reason, it just closes the old
  connection, as any MQTT 3.1.1 broker does; so the times the broker closed the hub's
  connection without being asked are kept too, and ``SILENT_CLOSES`` of them within a minute
  (a client fighting for the id, reconnecting as the hub does) count as a session taken.

A refused message is quarantined with its reason and counted, and its QoS 1 PUBACK goes at once
(the broker would only send it again, to be refused again). Its sender (the vehicle or RSU its
topic names; with the deployment's ACL, the topic is the sender's own) is noted in
``RefusedSenders``, which the ``sender_refused`` alert rule reads (l4mon/alerts/facts.py).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from telemetry.decode import OVERSIZE, RETAINED_EVENT
from telemetry.quarantine import Quarantine
from telemetry.topics import parse_topic

if TYPE_CHECKING:
    from l4mon.clock import Clock
    from l4mon.ingest._bounded_read import Refused
    from l4mon.ingest.mqtt_status import MqttStatus

log = logging.getLogger("l4mon.ingest")

#: A PUBLISH's topic, payload and properties fit in this much beyond the payload bound: the
#: longest v1 topic is 216 bytes, the identity and content-type properties under 200; the rest
#: is room for properties a broker may add.
PACKET_ROOM: Final = 4_096
#: The broker closing the hub's connection this many times within a minute, unasked and
#: without a reason, is taken as another client contesting its client id: one close is any
#: broker restart; a client fighting for the id closes the hub's connection every second or so.
SILENT_CLOSES: Final = 3
#: The subject of a refusal whose topic names no vehicle or RSU (not a v1 topic, or none read).
UNKNOWN_SENDER: Final = "(unknown)"


def packet_bound(max_payload_bytes: int) -> int:
    """The largest MQTT packet the hub reads (and announces as its Maximum Packet Size)."""
    return max_payload_bytes + PACKET_ROOM


@dataclass
class SenderRecord:
    """One sender's refusals: when (the newest ``RECENT_KEPT``), why last, in total."""

    sender: str
    family: str  # "vehicle", "rsu", or "unknown"
    site: str | None
    times: deque[float] = field(default_factory=lambda: deque(maxlen=RefusedSenders.RECENT_KEPT))
    total: int = 0
    last_reason: str = ""
    last_detail: str = ""
    last_topic: str = ""

    def recent(self, now: float, window_s: float) -> int:
        """How many of the kept refusals fall within ``window_s`` before ``now`` (newest
        last, so the count stops at the first older one)."""
        count = 0
        for at in reversed(self.times):
            if at < now - window_s:
                break
            if at <= now:
                count += 1
        return count


class RefusedSenders:
    """Who sent what the transport refused, most recent last; at most ``capacity`` senders (the
    one refused longest ago is forgotten first), so made-up topics cannot grow it."""

    #: Refusal times kept per sender: enough to say "100 or more" in a minute.
    RECENT_KEPT: Final = 100

    def __init__(self, *, capacity: int = 100) -> None:
        self.capacity = capacity
        self.records: OrderedDict[str, SenderRecord] = OrderedDict()

    def note(self, *, at: float, topic: str | None, reason: str, detail: str) -> SenderRecord:
        route = parse_topic(topic) if topic else None
        if route is None:
            sender, family, site = UNKNOWN_SENDER, "unknown", None
        else:
            family = "rsu" if route.kind == "rsu" else "vehicle"
            sender, site = route.source, route.site
        record = self.records.pop(sender, None)
        if record is None:
            record = SenderRecord(sender=sender, family=family, site=site)
            while len(self.records) >= self.capacity:
                self.records.popitem(last=False)
        self.records[sender] = record
        record.times.append(at)
        record.total += 1
        record.last_reason, record.last_detail = reason, detail
        record.last_topic = (topic or "")[:256]
        return record

    def active(self, now: float, window_s: float) -> list[SenderRecord]:
        """The senders refused within ``window_s`` before ``now``."""
        return [r for r in self.records.values() if r.times and r.times[-1] >= now - window_s]


class TransportGuard:
    """Quarantines, counts and notes what the MQTT seam refuses; the hub's clock times it."""

    def __init__(self, *, quarantine: Quarantine, clock: Clock, status: MqttStatus,
                 max_payload_bytes: int) -> None:
        self.quarantine = quarantine
        self.clock = clock
        self.status = status
        #: The packet bound: announced to the broker and enforced on every read.
        self.max_packet = packet_bound(max_payload_bytes)
        status.max_packet_bytes = self.max_packet

    def oversized(self, refused: Refused) -> None:
        """A packet over the bound went by unread (its PUBACK is the caller's)."""
        self.status.refused_oversize += 1
        what = "PUBLISH" if refused.is_publish else f"packet type {refused.command >> 4}"
        detail = (f"{what} of {refused.size:,} bytes over the hub's {self.max_packet:,}-byte "
                  "bound: refused unread, its bytes discarded as they came")
        self._refuse(refused.topic, b"", OVERSIZE, detail, size=refused.size)

    def retained_event(self, topic: str, payload: bytes) -> None:
        """A retained message on an event topic (its PUBACK is the caller's)."""
        self.status.refused_retained += 1
        self._refuse(topic, payload, RETAINED_EVENT,
                     "retained message on an event topic: the past, replayed by the broker, "
                     "not an event (clear it: publish an empty retained message there)")

    def session_taken_over(self) -> None:
        """The broker handed the hub's session to another client with the same client id."""
        self.status.session_takeovers += 1
        self.status.session_taken_over_at = self.clock.now()

    def closed_by_broker(self) -> None:
        """The broker closed the hub's connection without a word: what Mosquitto 2.0.11 (and
        any MQTT 3.1.1 broker) does when another client takes the hub's client id, but also
        what a broker shutting down does. Counted; several within a minute is a contest."""
        self.status.broker_closes.append(self.clock.now())
        self.status.broker_closes_total += 1

    def _refuse(self, topic: str | None, payload: bytes, reason: str, detail: str, *,
                size: int | None = None) -> None:
        now = self.clock.now()
        self.quarantine.add(received_at=now, topic=topic or "", payload=payload, reason=reason,
                            detail=detail, payload_len=size)
        record = self.status.senders.note(at=now, topic=topic, reason=reason, detail=detail)
        if record.total & (record.total - 1) == 0:  # 1st, 2nd, 4th...: a flood logs little
            log.warning("refused %s from %s %s (%d so far): %s", reason, record.family,
                        record.sender, record.total, detail)


def is_event_topic(topic: str) -> bool:
    """Whether a topic is a vehicle's event stream (the one kind a retained copy must not be)."""
    if not topic.endswith("/event"):
        return False
    route = parse_topic(topic)
    return route is not None and route.kind == "event"
