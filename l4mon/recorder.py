"""``serve --record DIR``: everything the hub ingests, as a drive log, without slowing ingest.

The hub's loop only appends each batch to a queue (O(1)); a writer thread decodes the batches
into drive-log rows and writes Parquet files partitioned by UTC date and hour, so a day of a
fleet stays a set of manageable files. On a clean shutdown the queue is drained and the
manifest written: nothing received is lost. If the writer falls behind by more than
``max_backlog`` messages the newest batches are dropped and counted instead of exhausting
memory (``l4mon_recorder_dropped_total``).

Refused messages are not recorded: they are not telemetry, and the quarantine keeps them.
Commands the hub sent and the vehicles' answers are (rows of kind ``command`` and
``command_ack``), as they went on the wire: a replay carries them, never re-sends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path

import msgspec

from l4mon.types import Batch
from telemetry.commands import (
    ANSWER,
    decode_answer,
    decode_command,
    is_command_family,
    parse_command_topic,
)
from telemetry.decode import Decoder, Rejected
from telemetry.drivelog import DriveLogWriter, Manifest

log = logging.getLogger("l4mon.recorder")


class Recorder:
    def __init__(self, path: str | Path, *, manifest: Manifest | None = None,
                 rows_per_file: int = 200_000, flush_every_s: float = 60.0,
                 max_backlog: int = 2_000_000) -> None:
        self.path = Path(path)
        self._writer = DriveLogWriter(self.path, manifest=manifest or Manifest(
            source={"kind": "recorder"}), rows_per_file=rows_per_file)
        self._decoder = Decoder(max_age_s=1e12, max_ahead_s=1e12)  # the hub judged time already
        #: (when, batch, whether its commands and answers are recorded)
        self._queue: deque[tuple[float, Batch, bool]] = deque()
        #: The hub has a command connection (l4mon/commands/connection.py): commands and
        #: answers are recorded from it (``add(..., commands=True)``) and not from telemetry.
        self.commands_elsewhere = False
        # The backlog is the difference of two counters, each written by one thread only (the
        # hub's loop queues, the writer thread takes): no lock, and no lost update between them.
        self._queued = 0
        self._taken = 0
        self.max_backlog = max_backlog
        self.flush_every_s = flush_every_s
        self.recorded = 0
        self.dropped = 0
        self._wake = threading.Event()
        self._stop = False
        # Started by whoever owns the live process (l4mon/process.py), not by the constructor:
        # building a recorder has no side effect until the process starts its sinks.
        self._thread = threading.Thread(target=self._run, name="l4mon-recorder", daemon=True)

    def start(self) -> None:
        """Start the writer thread (once); batches added before wait in the queue."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def add(self, batch: Batch, now: float, *, commands: bool = False) -> None:
        """Called on the hub's loop after each batch: never blocks. ``commands``: the batch
        is the hub's command traffic (a command it sent, its command connection's answers);
        with ``commands_elsewhere`` only such batches' commands and answers are recorded, not
        the copies the telemetry subscription also hears (each would be there twice)."""
        if self.backlog + len(batch) > self.max_backlog:
            self.dropped += len(batch)
            return
        self._queue.append((now, batch, commands or not self.commands_elsewhere))
        self._queued += len(batch)
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Messages queued and not yet taken by the writer."""
        return self._queued - self._taken

    def close(self) -> Manifest:
        """Drain the queue, write the last file and the manifest."""
        self._stop = True
        self._wake.set()
        self.start()  # never started: the writer still drains what was queued
        self._thread.join()
        manifest = self._writer.close()
        log.info("recorded %d messages to %s (%d dropped)", self.recorded, self.path,
                 self.dropped)
        return manifest

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            while self._queue:
                now, batch, with_commands = self._queue.popleft()
                self._taken += len(batch)
                self._write(now, batch, with_commands)
            if time.monotonic() - last_flush >= self.flush_every_s:
                self._writer.flush()
                last_flush = time.monotonic()
            if self._stop and not self._queue:
                self._writer.flush()
                return

    def _write(self, now: float, batch: Batch, with_commands: bool = True) -> None:
        partition = time.strftime("date=%Y-%m-%d/hour=%H", time.gmtime(now))
        if partition != self._writer.subdir:
            self._writer.flush()  # an hour's rows stay in that hour's folder
            self._writer.subdir = partition
        for topic, payload, content_type in batch:
            if is_command_family(topic):
                if with_commands:
                    self._command(now, topic, bytes(payload))
                continue
            try:
                route, msg, _ = self._decoder.decode(topic, payload, now, content_type)
            except Rejected:
                continue
            self._writer.add(now, route, msg, topic=topic, payload=bytes(payload),
                             content_type=content_type)
            self.recorded += 1

    def _command(self, now: float, topic: str, payload: bytes) -> None:
        """A command the hub sent (``Runtime`` adds it once the broker has it) or a vehicle's
        answer: recorded as it went, so a replay and the report have the round trips. What
        is not a valid one is not recorded (the hub quarantined it)."""
        route = parse_command_topic(topic)
        if route is None:
            return
        try:
            if route.kind == ANSWER:
                answer = decode_answer(payload)
                what, command_id, ts = answer.status, answer.id, answer.ts
            else:
                command = decode_command(payload)
                what, command_id, ts = command.kind, command.id, command.ts
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            return
        self._writer.add_command(now, topic, payload, kind=route.kind, site=route.site,
                                 vehicle=route.vehicle, ts=ts, what=what,
                                 command_id=command_id)
        self.recorded += 1
