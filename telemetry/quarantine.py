"""A bounded store of refused messages that an operator can read back.

Refused messages are evidence (a misconfigured vehicle, a firmware bug, an attack), so they are
kept verbatim, but only the newest ``capacity`` of them: a flood of garbage must not exhaust memory.
Counts by reason are never dropped.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

import msgspec

#: Longer payloads are kept truncated; the original length is recorded.
KEEP_BYTES = 4_096
KEEP_TOPIC_CHARS = 256


class Quarantined(msgspec.Struct, frozen=True):
    """One refused message as it arrived."""

    received_at: float
    topic: str
    reason: str
    detail: str
    payload: bytes
    payload_len: int


class Quarantine:
    """Newest-first ring of refused messages plus exact counts by reason."""

    __slots__ = ("_items", "counts")

    def __init__(self, *, capacity: int = 1_000) -> None:
        if capacity <= 0:
            raise ValueError("quarantine capacity must be positive")
        self._items: deque[Quarantined] = deque(maxlen=capacity)
        self.counts: Counter[str] = Counter()

    def add(self, *, received_at: float, topic: str, payload: bytes, reason: str,
            detail: str, payload_len: int | None = None) -> None:
        """``payload_len``: the size of a message refused unread (``payload`` is then empty)."""
        self.counts[reason] += 1
        self._items.append(Quarantined(
            received_at=received_at, topic=topic[:KEEP_TOPIC_CHARS], reason=reason,
            detail=detail[:500], payload=bytes(payload[:KEEP_BYTES]),
            payload_len=len(payload) if payload_len is None else payload_len,
        ))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __len__(self) -> int:
        return len(self._items)

    def newest(self, *, limit: int = 100, reason: str | None = None) -> Iterator[Quarantined]:
        """The most recent refused messages first, optionally of one reason."""
        given = 0
        for item in reversed(self._items):
            if given >= limit:
                return
            if reason is None or item.reason == reason:
                given += 1
                yield item
