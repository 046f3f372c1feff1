"""The ingest buffer under overload: telemetry is dropped and counted, events to be
acknowledged are kept (an unacknowledged drop would hold a broker in-flight slot)."""

from __future__ import annotations

import asyncio

from l4mon.ingest.buffer import BatchBuffer


def _delivery(n: int) -> tuple[str, bytes, float]:
    return (f"l4mon/v1/s/vehicle/v{n}/link/l5g", b"{}", float(n))


def test_over_capacity_telemetry_is_dropped_but_acknowledgeable_events_are_kept() -> None:
    async def scenario() -> tuple[int, int, list[str], int]:
        buffer = BatchBuffer(capacity=3)
        acked: list[str] = []
        for n in range(3):
            buffer.put(_delivery(n))  # type: ignore[arg-type]
        buffer.put(_delivery(3))  # type: ignore[arg-type]  # QoS 0 over capacity: dropped
        buffer.put(_delivery(4), lambda: acked.append("event-4"))  # type: ignore[arg-type]
        batch = await buffer.__anext__()
        before = list(acked)  # not yet: the batch is still being processed
        buffer.put(_delivery(5))  # type: ignore[arg-type]
        await buffer.__anext__()  # the consumer is back: the first batch is done
        assert before == []
        return len(batch), buffer.dropped, acked, buffer.depth

    taken, dropped, acked, depth = asyncio.run(scenario())
    assert taken == 4  # three telemetry messages and the event
    assert dropped == 1
    assert acked == ["event-4"]
    assert depth == 0


def test_a_held_batch_is_acknowledged_only_on_release() -> None:
    """A batch whose processing needed the journal and did not get it: its acknowledgements
    wait for release (the journal back), while later batches are acknowledged as usual."""
    async def scenario() -> list[str]:
        buffer = BatchBuffer(capacity=10)
        acked: list[str] = []
        buffer.put(_delivery(1), lambda: acked.append("held"))  # type: ignore[arg-type]
        await buffer.__anext__()
        buffer.hold()  # its alert could not be journaled
        buffer.put(_delivery(2), lambda: acked.append("later"))  # type: ignore[arg-type]
        await buffer.__anext__()  # the first batch is done: nothing acknowledged for it
        assert acked == [] and buffer.held == 1
        buffer.put(_delivery(3))  # type: ignore[arg-type]
        await buffer.__anext__()
        assert acked == ["later"]
        buffer.release()
        assert buffer.held == 0
        return acked

    assert asyncio.run(scenario()) == ["later", "held"]
