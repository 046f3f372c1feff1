"""The MQTT source: the one narrow seam between the hub and an MQTT client library.

``MqttSource`` owns the connection for as long as its ``async with`` block lasts: it connects,
subscribes with a persistent session (so the broker keeps QoS 1 events while the hub is away),
and when the broker goes away it reconnects with capped exponential backoff, saying so in the
log and in ``status``. Which client library does the wire work is a setting; both are measured
in ``bench/ingest.py`` and the faster one is the default (see docs/benchmarks.md).

Whichever it is, a QoS 1 event is acknowledged to the broker only once the hub has processed it
(the buffer runs its ``then``), so the broker forgets no event the journal does not hold yet.
Before the first connection the backend checks what that and its fast path rely on
(``SelfCheck``) and ``status`` says the outcome: /healthz and /metrics show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.delivery import Checked, Deliver
from l4mon.ingest.identity import IdentityCheck
from l4mon.ingest.mqtt_settings import ClientName, MqttSettings, parse_url, tls_context
from l4mon.ingest.mqtt_status import MqttStatus
from l4mon.ingest.publisher import MqttPublisher
from l4mon.ingest.refusals import TransportGuard
from l4mon.types import Batch, Spawn
from telemetry.quarantine import Quarantine

if TYPE_CHECKING:
    from l4mon.clock import Clock

log = logging.getLogger("l4mon.mqtt")

#: Where they are defined, imported here too: what the rest of l4mon reads from this module.
__all__ = ["Checked", "ClientName", "Deliver", "MqttSettings", "MqttSource", "MqttStatus",
           "parse_url", "tls_context"]

#: A backend runs one connection: connect, subscribe, deliver, and return (or raise) when the
#: connection is gone. The supervisor here decides whether and when to try again. With a
#: ``Checked`` callable, every message goes through it instead of straight to ``deliver``. It
#: records in the status which paths it took and whether each acknowledges after processing.
#: What it refuses itself (oversized packets, retained events) and a session taken over go to
#: the ``TransportGuard``.
#: With a publisher, it attaches a sender to it while connected (commands, l4mon/commands/).
Session = Callable[[MqttSettings, Deliver, Callable[[], None], Checked | None, MqttStatus,
                    TransportGuard, MqttPublisher], Awaitable[None]]
#: Run once before the first connection: checks what the backend relies on (for gmqtt, the
#: lean PUBLISH path against gmqtt's own parse) and records the outcome in the status.
SelfCheck = Callable[[MqttSettings, MqttStatus], Awaitable[None]]


def _backend(name: ClientName) -> tuple[SelfCheck, Session]:
    if name == "gmqtt":
        from l4mon.ingest._gmqtt import run_session, self_check
    else:
        from l4mon.ingest._aiomqtt import run_session, self_check
    return self_check, run_session


class MqttSource:
    """``async with MqttSource(settings=...) as source: async for batch in source: ...``

    With ``settings.require_identity`` it needs the hub's ``quarantine`` and ``clock``: messages
    whose sender does not match their topic are kept there and never reach the buffer. What the
    transport refuses itself (l4mon/ingest/refusals.py) goes there too; without them, to a
    quarantine of its own, timed by the wall clock. ``max_payload_bytes`` is the hub's payload
    bound (``[ingest]``): packets are bounded at it plus room for topic and properties.
    """

    def __init__(self, *, settings: MqttSettings, quarantine: Quarantine | None = None,
                 clock: Clock | None = None, max_payload_bytes: int = 16_384) -> None:
        self.settings = settings
        self.status = MqttStatus()
        self.buffer = BatchBuffer(capacity=settings.buffer_capacity)
        self.identity: IdentityCheck | None = None
        if settings.require_identity:
            if quarantine is None or clock is None:
                raise ValueError("mqtt.require_identity needs the hub's quarantine and clock")
            self.identity = IdentityCheck(deliver=self.buffer.put, quarantine=quarantine,
                                          clock=clock, property_name=settings.identity_property)
        if clock is None:
            from l4mon.clock import LiveClock
            clock = LiveClock()
        self.guard = TransportGuard(
            quarantine=quarantine if quarantine is not None else Quarantine(), clock=clock,
            status=self.status, max_payload_bytes=max_payload_bytes)
        #: QoS 1 publishes on this source's connection: the hub's commands, on the command
        #: connection's source (or the telemetry one's, without it).
        self.publisher = MqttPublisher()
        self._self_check, self._session = _backend(settings.client)
        self._task: asyncio.Task[None] | None = None

    async def open(self, spawn: Spawn = asyncio.create_task) -> None:
        """Check the backend, then keep a connection up; the owner's ``spawn`` runs the
        supervisor (l4mon/process.py: in the live process's task group)."""
        if self._task is not None:
            raise RuntimeError("MqttSource is not re-entrant")
        # Before the first connection: what the backend relies on is checked, and /healthz
        # says so, before any event depends on it.
        await self._self_check(self.settings, self.status)
        self._task = spawn(self._supervise(), name="l4mon-mqtt")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.buffer.close()

    async def __aenter__(self) -> MqttSource:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __aiter__(self) -> MqttSource:
        return self

    async def __anext__(self) -> Batch:
        return await self.buffer.__anext__()

    def _on_connected(self) -> None:
        status = self.status
        status.connected = True
        status.connects += 1
        status.failed_attempts = 0
        log.info("connected to %s (connection %d)", self.settings.url, status.connects)

    async def _supervise(self) -> None:
        status = self.status
        delay = self.settings.backoff_initial_s
        while True:
            try:
                await self._session(self.settings, self.buffer.put, self._on_connected,
                                    self.identity, status, self.guard, self.publisher)
                error = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any transport failure means: try again later
                error = f"{type(exc).__name__}: {exc}"
            if status.connected:
                status.connected = False
                status.disconnects += 1
                delay = self.settings.backoff_initial_s
                log.warning("lost broker %s (%s); reconnecting", self.settings.url, error)
            else:
                status.failed_attempts += 1
                log.warning("cannot reach broker %s (%s); retry %d in %.1f s",
                            self.settings.url, error, status.failed_attempts, delay)
            status.last_error = error
            # Jitter keeps a fleet of hubs from reconnecting in lockstep after a broker restart.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.backoff_max_s)
