"""The live hub as its API and console see it: the hub, its clock, tokens, console stream and
recent history, and the two loops that drive it.

    source (MQTT or the demo feed) ──Batch──▶ consume ──▶ Hub ◀── tick_forever (clock)
                                                           │
                                             HTTP API / console stream (same loop)

Everything runs on one event loop, so the hub's state is never touched concurrently and the
API reads it without locks. Who starts and stops all of it, in order: l4mon/process.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from l4mon import views
from l4mon.auth import TokenStore
from l4mon.clock import Clock
from l4mon.commands.service import wire
from l4mon.console_stream import Broadcaster
from l4mon.history import History
from l4mon.hub import Hub
from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.mqtt_status import MqttStatus
from l4mon.loop_lag import LoopLag
from l4mon.records.alert import Alert, Transition
from l4mon.store.journal import JournalError
from l4mon.types import Batch, Spawn

if TYPE_CHECKING:
    from l4mon.commands.service import CommandService
    from l4mon.demo import DemoFleet
    from l4mon.leadership import Leadership
    from l4mon.recorder import Recorder
    from l4mon.records.command import CommandRecord
    from telemetry.site import Site

log = logging.getLogger("l4mon")

#: Vehicles handled between two yields to the event loop in ticks and state frames: ~2 ms of
#: work at a time, so an urgent message never waits behind a whole fleet's evaluation.
TICK_CHUNK = 100
#: Messages ingested between two yields to the event loop: ~2 ms of hub work (4.5 µs a
#: message, bench/hub_cost.py), so a command's answer, an HTTP request or a console's alert
#: frame waits at most that long behind a large batch of telemetry.
INGEST_CHUNK = 400
#: A journal that does not take writes is tried again after this, doubling up to the max.
JOURNAL_RETRY_MIN_S = 1.0
JOURNAL_RETRY_MAX_S = 30.0


class Source(Protocol):
    """Where batches come from (MQTT, the demo's feed). ``open`` starts its own work with the
    owner's ``spawn``; ``close`` stops it and ends the iteration."""

    async def open(self, spawn: Spawn) -> None: ...

    async def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Batch]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveParts:
    """What a live process adds around the hub, each absent (None) where it has none: a test
    or a replay's runtime names only what it has, and the runtime takes one value, not ten."""

    site: Site | None = None
    demo: DemoFleet | None = None
    #: The transport's buffer and connection state, and the recorder: what /healthz and
    #: /metrics report.
    buffer: BatchBuffer | None = None
    mqtt: MqttStatus | None = None
    recorder: Recorder | None = None
    #: The hub pair's leadership (l4mon/leadership.py); None for a single hub, which always
    #: decides. ``peers``: the pair's URLs, for consoles.
    ha: Leadership | None = None
    peers: tuple[str, ...] = ()
    #: Commands to vehicles (l4mon/commands/); None where the hub cannot publish.
    commands: CommandService | None = None


class Runtime:
    """The live hub: what the API reads, and the loops ``LiveProcess`` runs."""

    def __init__(self, *, hub: Hub, clock: Clock, tokens: TokenStore | None = None,
                 parts: LiveParts | None = None) -> None:
        parts = parts or LiveParts()
        self.hub = hub
        self.clock = clock
        self.tokens = tokens if tokens is not None else TokenStore()
        self.site = parts.site
        self.demo = parts.demo
        self.buffer = parts.buffer
        #: Buffers of further connections (the commands'), whose held acknowledgements go
        #: out with the telemetry's once the journal has what they raised.
        self.more_buffers: list[BatchBuffer] = []
        self.mqtt = parts.mqtt
        self.recorder = parts.recorder
        self.ha = ha = parts.ha
        self.peers = parts.peers
        self.started_at = clock.now()
        self.history = History(max_vehicles=hub.config.fleet.max_vehicles)  # charts: last 10 min
        self.ready = asyncio.Event()
        #: How late the loop wakes a sleeper (l4mon/loop_lag.py): the wait urgent work sees.
        self.loop_lag = LoopLag()
        self.broadcaster = Broadcaster(state_frame=self.state_frame_chunked, clock=clock.now,
                                       bounds=hub.config.console)
        hub.alerts.listeners.append(self.broadcaster.alert)
        self.broadcaster.seq = hub.store.last_seq()
        if ha is not None:
            ha.on_role.append(lambda: self.broadcaster.publish("ha", {"ha": self.ha_view()}))
            ha.on_role.append(self._role_changed)
            ha.on_duty.append(self.duty_changed)
        self.commands = commands = parts.commands
        if commands is not None:
            commands.listeners.append(self._command_changed)
            commands.sent_listeners.append(self._command_sent)
            hub.command_messages = self._command_message

    def _command_changed(self, command: CommandRecord) -> None:
        self.broadcaster.publish("command", {"command": command.to_dict()})

    def _command_sent(self, command: CommandRecord, at: float) -> None:
        """The recording gets each send here, once the broker has it, as it went on the wire,
        at the publish's start: the hub does not hear its own commands back (no-local), or,
        with a command connection, the telemetry's copies are not recorded."""
        if self.recorder is not None:
            self.recorder.add([(*wire(command), None)], at, commands=True)

    def _command_message(self, topic: str, payload: bytes, now: float) -> None:
        """A vehicle's answer: taken where commands are decided (a single hub, a pair's
        leader); a standby leaves them to the leader, which journals them, and keeps them
        for a promotion (the leader may die before it journaled them)."""
        if self.commands is None:
            self.hub.command_messages_ignored += 1
        elif self.leading:
            self.commands.take(topic, payload, now)
        else:
            self.hub.command_messages_ignored += 1
            self.commands.keep(topic, payload, now)

    def _role_changed(self) -> None:
        """A pair's standby that now leads takes over the old leader's commands in flight
        from the journal (l4mon/commands/service.py ``promote``)."""
        if self.commands is not None and self.leading:
            self.commands.promote(self.clock.now())

    @property
    def leading(self) -> bool:
        """Whether this hub takes operators' actions: a single hub, or a pair's leader."""
        return self.ha is None or self.ha.leading

    def ha_view(self) -> dict[str, Any]:
        """Which hub of a pair this is and who leads: the console's header and its move to
        the leader (``peers``)."""
        if self.ha is None:
            return {"role": "single", "leader_since": self.started_at, "self": None,
                    "leader": None, "peers": list(self.peers)}
        view = self.ha.view()
        return {"role": view["role"], "leader_since": view["leader_since"],
                "self": view["self"], "leader": view["leader"], "peers": list(self.peers)}

    def state_frame(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": now,
                "vehicles": views.vehicles(self.hub.fleet, now, unseen=self.hub.feed.unseen(),
                                           lookahead=self.hub.lookahead),
                "feed": self.hub.feed.view()}

    async def state_frame_chunked(self) -> dict[str, Any]:
        """The same frame as ``state_frame``, built a chunk of vehicles at a time."""
        now = self.clock.now()
        fleet = self.hub.fleet.vehicles
        ids = sorted(fleet)
        unseen = self.hub.feed.unseen()
        lookahead = self.hub.lookahead
        briefs: list[dict[str, Any]] = []
        for start in range(0, len(ids), TICK_CHUNK):
            briefs += [views.vehicle_brief(fleet[v], now, unseen, lookahead)
                       for v in ids[start:start + TICK_CHUNK] if v in fleet]
            await asyncio.sleep(0)
        return {"now": now, "vehicles": briefs, "feed": self.hub.feed.view()}

    def snapshot(self) -> dict[str, Any]:
        alerts = self.hub.alerts
        return {**self.state_frame(),
                "alerts": [a.to_dict() for a in alerts.open_alerts()],
                "incident_groups": {
                    g.name: {"title": g.title, "by": g.by,
                             "runbook": None if g.runbook is None else g.runbook.to_dict()}
                    for g in alerts.incidents.groups},
                # Sent once, not on every alert frame: the console looks a card's up by rule.
                "runbooks": alerts.runbooks,
                "duty": self.duty_view(), "ha": self.ha_view()}

    def duty_view(self) -> dict[str, Any]:
        alerts = self.hub.alerts
        # A vehicle out of service needs no operator: it is not "uncovered".
        return alerts.duty.view(v for v, track in self.hub.fleet.vehicles.items()
                                if track.serving)

    def duty_changed(self) -> dict[str, Any]:
        view = self.duty_view()
        self.broadcaster.publish("duty", {"duty": view})
        return view

    def missed(self, last_seq: int, *, limit: int = 10_000) -> list[tuple[Transition, Alert]]:
        """Alert transitions after ``last_seq``, for a console that reconnects; JournalError
        when the journal cannot be read."""
        store = self.hub.store
        out = []
        for transition in store.transitions_since(last_seq, limit=limit):
            alert = store.alert(transition.alert_id)
            if alert is not None:
                out.append((transition, alert))
        return out

    async def consume(self, source: AsyncIterator[Batch],
                      answers: BatchBuffer | None = None) -> None:
        """Ingest what ``source`` delivers. With ``answers``, the source is the command
        connection (l4mon/commands/connection.py) and that its buffer: its answers are the
        ones taken (the telemetry's copies are left alone, and recorded, as before), and its
        acknowledgements wait, like the telemetry's, while the journal does not take writes."""
        hub, clock, recorder, buffer = self.hub, self.clock, self.recorder, self.buffer
        ingest = hub.ingest
        if answers is not None:
            hub.answers_elsewhere = True
            self.more_buffers.append(answers)
            ingest, buffer = hub.ingest_answers, answers
            if recorder is not None:
                recorder.commands_elsewhere = True
        keeper = hub.alerts.keeper
        chunk = INGEST_CHUNK
        async for batch in source:
            # A large batch (the loop was busy while it piled up) is taken a slice at a time,
            # yielding between slices: what waits behind it is served within ~2 ms. Each
            # slice is ingested at its own time, as a batch of its own would be.
            for start in range(0, len(batch), chunk):
                part = batch if len(batch) <= chunk else batch[start:start + chunk]
                now = clock.now()
                before = keeper.unsettled
                ingest(part, now)
                if keeper.unsettled != before and buffer is not None:
                    buffer.hold()  # what it raised is not journaled yet: no acknowledgement
                if recorder is not None:
                    recorder.add(part, now, commands=answers is not None)
                if start + chunk < len(batch):
                    await asyncio.sleep(0)

    async def keep_journal(self) -> None:
        """While the journal does not take writes: retry with backoff (1 s, doubling to 30 s),
        reconnecting a server's journal, and write what was kept; once it is all in, the held
        QoS 1 acknowledgements go out and consoles get a fresh snapshot (the alerts' journal
        ids for the provisional ones). A hub pair's leadership reconnects a fenced hub itself
        (l4mon/leadership.py); this then only releases the acknowledgements."""
        engine = self.hub.alerts
        if engine is None:
            return
        keeper = engine.keeper
        delay = JOURNAL_RETRY_MIN_S
        while True:
            await asyncio.sleep(delay)
            if keeper.ok:
                delay = JOURNAL_RETRY_MIN_S
                if self._held() and self._decided():
                    self._release()
                    self.broadcaster.publish("snapshot", self.snapshot())
                continue
            if self.ha is not None and not self.ha.leading:
                continue  # fenced: the leadership rejoins; a standby writes nothing
            try:
                engine.journal.reconnect()
                keeper.flush(self.clock.now())
            except JournalError as error:
                keeper.last_error = str(error)
            if keeper.ok:
                delay = JOURNAL_RETRY_MIN_S
                self._release()
                self.broadcaster.publish("snapshot", self.snapshot())
            else:
                delay = min(delay * 2, JOURNAL_RETRY_MAX_S)

    def _buffers(self) -> list[BatchBuffer]:
        return ([self.buffer] if self.buffer is not None else []) + self.more_buffers

    def _held(self) -> bool:
        return any(b.held for b in self._buffers())

    def _release(self) -> None:
        for buffer in self._buffers():
            if buffer.held:
                buffer.release()

    def _decided(self) -> bool:
        """Whether what the held messages raised is in the journal: this hub decides and its
        journal caught up, or it is a pair's standby and another hub leads (and journals)."""
        ha = self.ha
        if ha is None or ha.leading:
            return True
        return ha.role == "standby" and ha.leader is not None and ha.leader.get("url") != ha.url

    async def tick_forever(self) -> None:
        """Tick every ``eval_interval_s``, a chunk of vehicles at a time (see Hub.tick_vehicles)."""
        hub, clock = self.hub, self.clock
        interval = hub.config.ingest.eval_interval_s
        while True:
            await asyncio.sleep(interval)
            ids = list(hub.fleet.vehicles)
            mqtt = self.mqtt
            hub.feed.set_transport(None if mqtt is None else mqtt.connected, clock.now())
            due = hub.tick_start(clock.now())
            for start in range(0, len(ids), TICK_CHUNK):
                hub.tick_vehicles(clock.now(), ids[start:start + TICK_CHUNK], due)
                self.history.record(clock.now(), hub.fleet, ids[start:start + TICK_CHUNK])
                await asyncio.sleep(0)  # let urgent messages in between chunks
            hub.tick_finish(clock.now())
            if self.commands is not None and self.leading:
                self.commands.expire(clock.now())


def tune_gc() -> None:
    """Collect the young generation less often.

    Every sample allocates a few objects that live in rolling windows for a minute; with the
    default threshold (700) the collector would run thousands of times a second for nothing.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
