"""A bounded hand-off between a transport's callbacks and the hub's one ingest task.

Producers append synchronously (no per-message await, no per-message queue hop); the consumer
takes everything buffered at once. When the hub falls behind by more than ``capacity`` messages,
new messages are dropped and counted, since QoS 0 telemetry cannot be pushed back to the sender,
and an unbounded buffer would only turn overload into an out-of-memory crash later.
"""

from __future__ import annotations

import asyncio

from l4mon.types import Batch, Delivery


class BatchBuffer:
    """Single consumer. ``put`` is safe to call from the event loop thread only."""

    def __init__(self, *, capacity: int = 200_000) -> None:
        if capacity <= 0:
            raise ValueError("buffer capacity must be positive")
        self.capacity = capacity
        self._items: Batch = []
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    def put(self, delivery: Delivery) -> None:
        items = self._items
        if len(items) >= self.capacity:
            self.dropped += 1
            return
        items.append(delivery)
        if len(items) == 1:
            self._ready.set()

    def extend(self, deliveries: Batch) -> None:
        room = self.capacity - len(self._items)
        if room < len(deliveries):
            self.dropped += len(deliveries) - max(room, 0)
            deliveries = deliveries[:max(room, 0)]
        if deliveries:
            self._items.extend(deliveries)
            self._ready.set()

    @property
    def depth(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Wake the consumer; it receives what is left, then the iteration ends."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> BatchBuffer:
        return self

    async def __anext__(self) -> Batch:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        batch, self._items = self._items, []
        self.delivered += len(batch)
        return batch
