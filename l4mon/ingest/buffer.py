"""A bounded hand-off between a transport's callbacks and the hub's one ingest task.

Producers append synchronously (no per-message await, no per-message queue hop); the consumer
takes everything buffered at once. When the hub falls behind by more than ``capacity`` messages,
new messages are dropped and counted, since QoS 0 telemetry cannot be pushed back to the sender,
and an unbounded buffer would only turn overload into an out-of-memory crash later.

A message may come with a ``then`` callback, run once the hub has processed the batch it was in
(the consumer asking for the next batch says so): the transport acknowledges a QoS 1 event
there, so an event the broker was told is delivered is already in the journal. Such a message
is never dropped, even over ``capacity``: dropped, it would stay unacknowledged and hold one of
the broker's in-flight slots for this session until a reconnect, and the urgent events are
exactly these. Their number is bounded anyway, by the in-flight window the broker allows an
MQTT session (Receive Maximum, at most 65,535), so admitting them cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from l4mon.types import Batch, Delivery

log = logging.getLogger("l4mon.ingest")


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
        self._then: list[Callable[[], None]] = []  # for the messages buffered now
        self._after: list[Callable[[], None]] = []  # for the batch being processed
        #: For batches whose processing needed the journal and did not get it: run by
        #: ``release`` once it is back, never before (l4mon/store/keeper.py).
        self._held: list[Callable[[], None]] = []

    def put(self, delivery: Delivery, then: Callable[[], None] | None = None) -> None:
        items = self._items
        if len(items) >= self.capacity and then is None:
            self.dropped += 1
            return
        items.append(delivery)
        if then is not None:
            self._then.append(then)
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

    @property
    def held(self) -> int:
        """Acknowledgements waiting for the journal."""
        return len(self._held)

    def hold(self) -> None:
        """The batch being processed raised what the journal could not take yet: its
        acknowledgements wait for ``release``. Not acknowledged, a QoS 1 message stays the
        broker's to deliver again (to this session after a restart) if the hub dies first."""
        self._held += self._after
        self._after = []

    def release(self) -> None:
        """The journal holds everything decided: the acknowledgements held go out, in order."""
        held, self._held = self._held, []
        _run(held)

    def close(self) -> None:
        """Wake the consumer; it receives what is left, then the iteration ends."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> BatchBuffer:
        return self

    async def __anext__(self) -> Batch:
        if self._after:  # the consumer is back: the batch it had is processed
            done, self._after = self._after, []
            _run(done)
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        batch, self._items = self._items, []
        self._after, self._then = self._then, []
        self.delivered += len(batch)
        return batch


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # e.g. the connection that would acknowledge is gone
            log.debug("after-processing callback failed", exc_info=True)

