"""An in-process source: a generator of messages (the demo's simulated fleet) read on a timer.

The demo needs no broker, but its messages still enter the hub as raw bytes through the same
``Hub.ingest`` as MQTT traffic, so the demo exercises the real decode and state path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

from l4mon.clock import Clock
from l4mon.ingest.buffer import BatchBuffer
from l4mon.types import Batch, Spawn

#: Called with the current time, returns what was published since the previous call.
Generator = Callable[[float], list[tuple[str, bytes]]]


class FeedSource:
    """``async with FeedSource(generate=fleet.advance, clock=clock) as s: async for batch in s``"""

    def __init__(self, *, generate: Generator, clock: Clock, period_s: float = 0.05,
                 capacity: int = 200_000) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.generate = generate
        self.clock = clock
        self.period_s = period_s
        self.buffer = BatchBuffer(capacity=capacity)
        self._task: asyncio.Task[None] | None = None

    async def open(self, spawn: Spawn = asyncio.create_task) -> None:
        """Start generating; the owner's ``spawn`` runs the pump (its failure is the owner's)."""
        self._task = spawn(self._pump(), name="l4mon-feed")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.buffer.close()

    async def __aenter__(self) -> FeedSource:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _pump(self) -> None:
        while True:
            messages = self.generate(self.clock.now())
            self.buffer.extend([(topic, payload, None) for topic, payload in messages])
            await asyncio.sleep(self.period_s)

    def __aiter__(self) -> FeedSource:
        return self

    async def __anext__(self) -> Batch:
        return await self.buffer.__anext__()
