"""Urgent work first (issue 27): a large batch of telemetry does not hold the hub's one event
loop for longer than a slice of ``INGEST_CHUNK`` messages, and the loop-lag probe sees a stall.

What is asserted is the mechanism (how much work runs between two turns of another task, what
the probe records of a stall it is shown), not a speed, so a loaded machine cannot fail it.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import msgspec

from l4mon.clock import ManualClock
from l4mon.hub import Hub
from l4mon.ingest.buffer import BatchBuffer
from l4mon.loop_lag import LoopLag
from l4mon.runtime import INGEST_CHUNK, Runtime
from l4mon.store.journal import open_journal
from l4mon.types import Batch
from telemetry.topics import link_topic
from telemetry.wire import LinkSample

NOW = 1_700_000_000.0


def _telemetry(messages: int, vehicles: int = 50) -> Batch:
    """``messages`` link samples, spread over ``vehicles``, all valid and fresh."""
    batch: Batch = []
    for n in range(messages):
        vehicle, seq = f"veh-{n % vehicles:03d}", n // vehicles
        batch.append((link_topic("s", vehicle, "l5g"), msgspec.json.encode(LinkSample(
            ts=NOW - 5 + seq * 0.01, seq=seq, rat="nr", cell_id="c1", rsrp_dbm=-80.0,
            rtt_ms=20.0)), None))
    return batch


async def _ingest_watched(runtime: Runtime, batch: Batch) -> list[int]:
    """Ingest ``batch`` through ``Runtime.consume`` while another task notes, at each of its
    turns, how many messages the hub had received: the work done between two turns."""
    buffer = BatchBuffer()
    buffer.extend(batch)
    buffer.close()
    seen: list[int] = []
    consumer = asyncio.create_task(runtime.consume(buffer))
    while not consumer.done():
        seen.append(runtime.hub.received)
        await asyncio.sleep(0)
    await consumer
    seen.append(runtime.hub.received)
    return seen


def test_a_large_batch_is_ingested_a_slice_at_a_time_with_the_loop_served_between() -> None:
    messages = INGEST_CHUNK * 5 + 123  # a backlog: the loop was busy while it piled up
    runtime = Runtime(hub=Hub(store=open_journal(":memory:")), clock=ManualClock(NOW))
    seen = asyncio.run(_ingest_watched(runtime, _telemetry(messages)))
    assert runtime.hub.received == messages
    assert runtime.hub.accepted == messages  # sliced, nothing lost or refused on the way
    steps = [after - before for before, after in itertools.pairwise(seen)]
    assert max(steps) <= INGEST_CHUNK, steps
    # Every slice boundary was a turn for the other task, not just the batch's end.
    assert {INGEST_CHUNK * k for k in range(1, 6)} <= set(seen), seen


def test_slicing_decides_what_one_batch_decides() -> None:
    """Live slices a backlog; replay ingests it whole: the state is the same."""
    batch = _telemetry(INGEST_CHUNK * 3 + 7)
    whole = Hub(store=open_journal(":memory:"))
    whole.ingest(batch, NOW)
    sliced = Runtime(hub=Hub(store=open_journal(":memory:")), clock=ManualClock(NOW))
    asyncio.run(_ingest_watched(sliced, batch))
    for hub in (whole, sliced.hub):
        hub.tick(NOW)
    assert sorted(sliced.hub.fleet.vehicles) == sorted(whole.fleet.vehicles)
    for vid, track in whole.fleet.vehicles.items():
        other = sliced.hub.fleet.vehicles[vid]
        assert other.connectivity == track.connectivity
        assert other.links["l5g"].seq.received == track.links["l5g"].seq.received


def test_the_loop_lag_probe_records_a_stall_of_the_loop() -> None:
    async def stall_once(lag: LoopLag) -> None:
        probe = asyncio.create_task(lag.run())
        await asyncio.sleep(0.05)  # the probe wakes on time a few times
        until = time.perf_counter() + 0.06
        while time.perf_counter() < until:  # work that never yields: the probe wakes late
            pass
        await asyncio.sleep(0.05)
        probe.cancel()

    lag = LoopLag(interval_s=0.005)
    asyncio.run(stall_once(lag))
    assert lag.wakes >= 3
    assert lag.worst_s >= 0.05
    assert lag.quantile(1.0) == lag.worst_s
    assert lag.quantile(0.5) < lag.worst_s  # the stall is one wake, not the typical one
