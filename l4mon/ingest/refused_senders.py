"""Who sent what the transport refused: the record the ``sender_refused`` alert rule reads.

Its own module because both the transport's guard (refusals.py), which writes it, and the
connection's status (mqtt_status.py), which holds it, need it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final

from telemetry.topics import parse_topic

#: The subject of a refusal whose topic names no vehicle or RSU (not a v1 topic, or none read).
UNKNOWN_SENDER: Final = "(unknown)"


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
