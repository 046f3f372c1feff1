"""One owner for the live process (``serve``, ``demo``): every task in one ``TaskGroup``.

    async with LiveProcess(runtime, source, app=app, http=(host, port), journal=journal) as live:
        await live.wait(stop)

Entering decides a hub pair's role first (l4mon/leadership.py), then starts the sinks — the
HTTP server (until it listens), the console stream, the recorder — and only then the source
(whose own connection or generator task is in the same group) and the loops that feed the hub
(consume, ticks, the pair's leadership), so nothing ingested is ever invisible. Leaving stops
them in the opposite order: the source and the loops first (no new input), then the console
stream and the HTTP server, and last the recorder (drained: nothing received is lost) and the
journal. A part that fails stops the whole process, and its error is what the caller sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn

from l4mon.console_socket import console_protocol
from l4mon.runtime import Runtime, Source, tune_gc

if TYPE_CHECKING:
    from l4mon.ingest.mqtt import MqttSource
    from l4mon.store.journal import Journal

log = logging.getLogger("l4mon")

#: Beyond the sockets' linger, what a stopping HTTP server gives requests still running
#: before cancelling them: no client, reading or not, holds a SIGTERM'd hub longer.
SHUTDOWN_SLACK_S = 2.0


class LiveProcess:
    """Collaborators are given at construction; nothing runs until ``async with``."""

    def __init__(self, runtime: Runtime, source: Source, *, app: Any | None = None,
                 http: tuple[str, int] | None = None, journal: Journal | None = None,
                 commands: MqttSource | None = None) -> None:
        self.runtime = runtime
        self.source = source
        #: The command connection (l4mon/commands/connection.py): its own source, ingested
        #: by the same path, started after and stopped with the telemetry's.
        self.commands = commands
        self.app = app
        self.http = http
        self.journal = journal
        self._group: asyncio.TaskGroup | None = None
        self._server: uvicorn.Server | None = None
        self._feeding: list[asyncio.Task[None]] = []  # consume and ticks: stopped first
        self._sinks: list[asyncio.Task[None]] = []  # the console stream
        self._source_open = False

    async def __aenter__(self) -> LiveProcess:
        tune_gc()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            await self._start(self._group)
        except BaseException as error:
            await self._leave(type(error), error, error.__traceback__)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._leave(exc_type, exc, tb)

    async def wait(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set. A part that fails cancels this wait (the task group does),
        and leaving the ``async with`` then raises that part's error."""
        await stop.wait()

    async def _start(self, group: asyncio.TaskGroup) -> None:
        runtime = self.runtime
        if runtime.ha is not None:
            # Leader or standby is decided before anything is served or ingested, so no
            # console is told, and no event judged, by a hub that does not know its role yet.
            runtime.ha.step()
        if self.http is not None and self.app is not None:
            console = runtime.hub.config.console
            # X-Forwarded-For is believed from the configured proxies only: uvicorn's own
            # default trusts 127.0.0.1, where anyone on the host could then pose as any address.
            proxies = list(runtime.hub.config.http.trusted_proxies)
            self._server = server = uvicorn.Server(uvicorn.Config(
                self.app, host=self.http[0], port=self.http[1], log_level="warning",
                access_log=False, lifespan="off", loop="none",
                ws=console_protocol(console, runtime.clock.now, runtime.broadcaster.sockets),
                ws_max_size=console.max_message_bytes,
                ws_per_message_deflate=console.compress,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                # Every socket is closed within its linger (l4mon/console_socket.py); this
                # bounds whatever else a client could hold a stopping hub with.
                timeout_graceful_shutdown=console.close_linger_s + SHUTDOWN_SLACK_S))
            serving = group.create_task(server.serve(), name="l4mon-http")
            while not server.started:
                if serving.done():
                    serving.result()  # surfaces "address in use" and the like
                    raise RuntimeError("HTTP server stopped during start-up")
                await asyncio.sleep(0.02)
        self._sinks.append(group.create_task(runtime.broadcaster.run(), name="l4mon-broadcast"))
        self._sinks.append(group.create_task(runtime.loop_lag.run(), name="l4mon-loop-lag"))
        if runtime.ha is not None:  # follows the journal / tries the lock; stopped first
            self._feeding.append(group.create_task(runtime.ha.run(), name="l4mon-ha"))
        if runtime.recorder is not None:
            runtime.recorder.start()
        await self.source.open(group.create_task)  # its own work is the group's too
        self._source_open = True
        self._feeding.append(group.create_task(runtime.consume(self.source), name="l4mon-ingest"))
        if self.commands is not None:
            await self.commands.open(group.create_task)
            self._feeding.append(group.create_task(
                runtime.consume(self.commands, self.commands.buffer), name="l4mon-commands"))
        self._feeding.append(group.create_task(runtime.tick_forever(), name="l4mon-tick"))
        self._feeding.append(group.create_task(runtime.keep_journal(), name="l4mon-journal"))
        runtime.ready.set()

    async def _leave(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                     tb: TracebackType | None) -> None:
        """Stop in order, then let the task group end; closing the sinks happens whatever
        went wrong before."""
        group, self._group = self._group, None
        try:
            try:
                for task in self._feeding:
                    task.cancel()
                if self._source_open:
                    self._source_open = False
                    await self.source.close()
                    if self.commands is not None:
                        await self.commands.close()
                for task in self._sinks:
                    task.cancel()
                if self._server is not None:
                    self._server.should_exit = True
            finally:
                if group is not None:
                    await group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as errors:
            raise _the_error(errors) from None
        finally:
            await self._close_sinks()

    async def _close_sinks(self) -> None:
        recorder = self.runtime.recorder
        if recorder is not None:
            await asyncio.to_thread(recorder.close)  # drains: nothing received is lost
        if self.journal is not None:
            with contextlib.suppress(Exception):
                self.journal.close()


def _the_error(errors: BaseExceptionGroup) -> BaseException:
    """The one error a caller can act on (``address in use``, a bad broker URL) rather than a
    group of one; a real group stays a group."""
    leaves = list(_leaves(errors))
    return leaves[0] if len(leaves) == 1 else errors


def _leaves(error: BaseException) -> Any:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
