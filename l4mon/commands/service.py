"""The hub's side of a command: who may send it, whether the vehicle can hear it, sending it
once, and the vehicle's answers, each journaled before anyone is told.

The journal is the truth. A command is journaled (``issued``) before it is published and
every answer before it counts, so a hub killed at any moment restarts knowing each command
and how far it got: it waits for the answers still due (the broker keeps them in the hub's
persistent session) and never publishes a command again by itself. An id is executed once by
the vehicle however often it arrives, and an answer counts once however often it arrives.

Not answered in time (``[commands]``) means "not confirmed": journaled, and raised as the
``command_not_confirmed`` alert (default_rules.toml, with its runbook). Never called
concurrently: the API's handlers, ingest and ticks share the hub's event loop.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Final

import msgspec

from l4mon.alerts.engine import AlertEngine
from l4mon.config import CommandSettings
from l4mon.ingest.publisher import NotSent, Publisher
from l4mon.records.command import (
    DONE,
    EXECUTING,
    FAILED,
    FINAL,
    ISSUED,
    NOT_CONFIRMED,
    PROGRESS,
    RECEIVED,
    SENT,
    WAITING,
    CommandRecord,
)
from l4mon.store.journal import Journal
from telemetry.commands import (
    ANSWER,
    Command,
    CommandAnswer,
    command_topic,
    decode_answer,
    encode,
    parse_command_topic,
)
from telemetry.fleet import Fleet
from telemetry.quarantine import Quarantine
from telemetry.vehicle import ALL_LINKS_DOWN, FRESH, OUT_OF_SERVICE
from telemetry.wire import VehicleEvent

log = logging.getLogger("l4mon.commands")

#: The event kind the not-confirmed alert rule matches (default_rules.toml).
NOT_CONFIRMED_EVENT: Final = "command_not_confirmed"
#: Rules whose open alert is a takeover cause a ``resume`` must not ignore: every takeover
#: alert of the vehicle except the MRM itself (which the resume ends) and a command's own.
NOT_A_CAUSE: Final = frozenset({"mrm_active", NOT_CONFIRMED_EVENT})
#: Quarantine reasons for answers the hub cannot take.
BAD_ANSWER: Final = "bad_command_answer"
UNKNOWN_COMMAND: Final = "unknown_command"
WRONG_VEHICLE: Final = "command_of_another_vehicle"
REASONS: Final = (BAD_ANSWER, UNKNOWN_COMMAND, WRONG_VEHICLE)
#: Commands the hub keeps waiting on in memory; more are refused (429-like, as 409).
MAX_WAITING: Final = 10_000
#: Answers a pair's standby keeps for a promotion (the oldest go first beyond it).
MAX_KEPT_ANSWERS: Final = 10_000


def wire(command: CommandRecord) -> tuple[str, bytes]:
    """The command's topic and payload as the hub publishes it (and a recording keeps it)."""
    return command_topic(command.site, command.vehicle), encode(Command(
        id=command.id, kind=command.kind,  # type: ignore[arg-type]
        ts=command.issued_at, by=command.issued_by, reason=command.reason, text=command.text,
        override=command.override))


class Refused(Exception):
    """The hub will not send this command: ``status`` is the HTTP answer (403, 409)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class CommandService:
    """Commands issued through the API, answers through ingest, timeouts through ticks."""

    def __init__(self, *, journal: Journal, fleet: Fleet, alerts: AlertEngine,
                 publisher: Publisher, quarantine: Quarantine,
                 clock: Callable[[], float], settings: CommandSettings | None = None,
                 unseen: Callable[[], dict[str, str]] = dict) -> None:
        self.journal = journal
        self.fleet = fleet
        self.alerts = alerts
        self.publisher = publisher
        self.quarantine = quarantine
        self.settings = settings or CommandSettings()
        #: Read once the broker acknowledged a publish: when it was sent is then, not when the
        #: operator asked (the hub's live clock; l4mon/clock.py).
        self.clock = clock
        #: Sites the hub cannot see (l4mon/site_watch.py): their vehicles are out of reach.
        self.unseen = unseen
        #: Called with each command after it changed (and was journaled): the console.
        self.listeners: list[Callable[[CommandRecord], None]] = []
        #: Called with each command the broker took, and when its publish started (a
        #: vehicle's answer may come before the broker's acknowledgement): the recorder.
        self.sent_listeners: list[Callable[[CommandRecord, float], None]] = []
        #: Answers that told the hub nothing new (a QoS 1 redelivery, a vehicle repeating).
        self.duplicate_answers = 0
        #: Commands still waiting for the vehicle, as the journal has them: a restarted hub
        #: resumes waiting for the same ids (and never publishes them again).
        self.waiting: dict[str, CommandRecord] = {}
        #: A pair's standby: the vehicles' answers it heard while the leader decided, kept
        #: (received at, topic, payload) for a promotion, ``done_within_s`` at most.
        self.kept: deque[tuple[float, str, bytes]] = deque(maxlen=MAX_KEPT_ANSWERS)
        #: Kept answers that went past ``MAX_KEPT_ANSWERS`` or out of date unused.
        self.kept_dropped = 0
        self.reload()

    def reload(self) -> int:
        """Wait for the commands the journal says are still waiting, as they are journaled
        now: a hub starting, or a standby taking over from a leader that died with commands
        in flight. Never publishes: each was published once by whoever issued it, and the
        vehicle answers the id whoever leads. Returns how many are waiting."""
        self.waiting = {c.id: c for c in self.journal.commands(states=WAITING,
                                                                limit=MAX_WAITING)}
        if self.waiting:
            log.info("waiting for %d commands' answers, as the journal has them",
                     len(self.waiting))
        return len(self.waiting)

    # -- issuing --------------------------------------------------------------------------------

    def check(self, *, vehicle: str, kind: str, operator: str, confirm: bool = False,
              override: str | None = None, force: bool = False) -> str:
        """The vehicle's site if ``operator`` may send ``kind`` to ``vehicle`` now, else
        ``Refused``: 403 off duty for it; 409 out of reach (unless ``force``), a resume not
        confirmed twice, or one while a takeover cause holds (unless ``override``)."""
        if operator not in self.alerts.duty.covering(vehicle):
            raise Refused(403, f"{operator} is not on duty for {vehicle}: go on duty for it "
                               "first (POST /api/duty/on)")
        track = self.fleet.vehicles.get(vehicle)
        if track is None:
            raise Refused(409, f"{vehicle} is unknown to this hub: it has never reported, so "
                               "there is no site to send on")
        if not force:
            why = self.out_of_reach(vehicle)
            if why is not None:
                raise Refused(409, f"{vehicle} is out of reach: {why}. It would not hear the "
                                   "command; send with force: true to queue it at the broker "
                                   "anyway")
        if kind == "resume":
            if not confirm:
                raise Refused(409, "resume needs a second confirmation: send it again with "
                                   "confirm: true")
            causes = self.takeover_causes(vehicle)
            if causes and not override:
                raise Refused(409, f"{vehicle} may not resume while its takeover cause holds "
                                   f"({'; '.join(causes)}): resolve it, or give override "
                                   "with the reason")
        return track.site

    def out_of_reach(self, vehicle: str) -> str | None:
        """Why the vehicle cannot hear a command now, or None."""
        track = self.fleet.vehicles.get(vehicle)
        if track is None:
            return "unknown to this hub"
        blind = self.unseen().get(track.site)
        if blind is not None:
            return f"the hub cannot see site {track.site} ({blind})"
        if track.service == OUT_OF_SERVICE:
            return "out of service" + (f" ({track.service_reason})"
                                       if track.service_reason else "")
        if track.connectivity == ALL_LINKS_DOWN:
            return "both links are down"
        if track.telemetry != FRESH:
            return f"its telemetry is {track.telemetry}"
        return None

    def takeover_causes(self, vehicle: str) -> list[str]:
        """The vehicle's open takeover alerts that a resume must not ignore."""
        return [f"{a.rule} (alert {a.id})" for a in sorted(self.alerts.open.values(),
                                                           key=lambda a: a.id)
                if a.vehicle == vehicle and a.severity == "takeover"
                and a.rule not in NOT_A_CAUSE]

    async def issue(self, *, vehicle: str, site: str, kind: str, operator: str, now: float,
                    command_id: str | None = None, reason: str | None = None,
                    text: str | None = None, override: str | None = None,
                    forced: str | None = None) -> tuple[CommandRecord, bool]:
        """Journal the command, then publish it; returns it and whether it is new. An id the
        journal holds already is the same command sent again (the operator's retry): it is
        published again while the vehicle has not answered, never journaled twice, and the
        vehicle executes it once. ``Refused`` (409) for an id of another command."""
        if command_id is not None:
            known = self.waiting.get(command_id) or self.journal.command(command_id)
            if known is not None:
                if (known.vehicle, known.kind) != (vehicle, kind):
                    raise Refused(409, f"command id {command_id} is a {known.kind} for "
                                       f"{known.vehicle}: choose another id")
                if PROGRESS[known.state] < PROGRESS[RECEIVED]:
                    await self._send(known, now, operator, again=True)
                return known, False
        if len(self.waiting) >= MAX_WAITING:
            raise Refused(409, f"{len(self.waiting)} commands are waiting for answers: "
                               "no more until some are answered or time out")
        s = self.settings
        command = CommandRecord(
            id=command_id or secrets.token_hex(8), vehicle=vehicle, site=site, kind=kind,
            issued_by=operator, issued_at=now, state=ISSUED,
            received_by=now + s.publish_timeout_s + s.received_within_s,
            done_by=now + s.done_within_s, reason=reason, text=text, override=override,
            updated_at=now)
        said = [kind]
        if reason:
            said.append(f"because {reason}")
        if override:
            said.append(f"overriding the takeover cause: {override}")
        if forced:
            said.append(f"forced although {forced}")
        self.journal.new_command(command, actor=operator, detail="; ".join(said))
        self.waiting[command.id] = command
        self._tell(command)
        await self._send(command, now, operator, again=False)
        return command, True

    async def _send(self, command: CommandRecord, now: float, operator: str, *,
                    again: bool) -> None:
        topic, payload = wire(command)
        started = self.clock()
        try:
            note = await self.publisher.publish(topic, payload)
        except NotSent as error:
            if command.state == ISSUED:  # an answer may have come meanwhile: it did arrive
                self._move(command, FAILED, self.clock(), actor=None,
                           detail=f"not sent: {error.reason}")
            raise Refused(503, f"command {command.id} was not sent: {error.reason}") from None
        now = self.clock()
        for listener in self.sent_listeners:
            listener(command, started)
        sent = "sent again" if again else "sent"
        detail = f"{sent}: the broker acknowledged it" + (f" ({note})" if note else "")
        if PROGRESS[command.state] < PROGRESS[RECEIVED]:  # else an answer came meanwhile
            command.sent_at = now
            command.received_by = now + self.settings.received_within_s
            if command.state != ISSUED:  # a retry after a timeout: waiting again
                self.waiting[command.id] = command
            self._move(command, SENT, now, actor=operator if again else None, detail=detail)

    # -- answers --------------------------------------------------------------------------------

    def take(self, topic: str, payload: bytes, now: float) -> None:
        """A message on a command topic, from ingest. An answer moves its command forward,
        once; the hub's own commands (heard back on a shared subscription) are ignored; what
        cannot be taken is quarantined with its reason."""
        route = parse_command_topic(topic)
        if route is None:
            self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                reason=BAD_ANSWER, detail="not a v1 command topic")
            return
        if route.kind != ANSWER:
            return  # a command: this hub's or its pair's, heard back
        try:
            answer = decode_answer(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
            self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                reason=BAD_ANSWER, detail=str(error)[:500])
            return
        command = self.waiting.get(answer.id) or self.journal.command(answer.id)
        if command is None:
            self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                reason=UNKNOWN_COMMAND, detail=f"no command {answer.id}")
            return
        if command.vehicle != route.vehicle:
            self.quarantine.add(received_at=now, topic=topic, payload=payload,
                                reason=WRONG_VEHICLE,
                                detail=f"command {answer.id} went to {command.vehicle}")
            return
        self.answer(command, answer, now)

    def keep(self, topic: str, payload: bytes, now: float) -> None:
        """A pair's standby: an answer the leader takes (and journals); kept in case the
        leader dies before it did, so the new leader confirms the command instead of raising
        it as not confirmed (``promote``). The leader's own commands, heard back, are not
        kept: they are no news to anyone."""
        if not topic.endswith(f"/{ANSWER}"):
            return
        if len(self.kept) == self.kept.maxlen:
            self.kept_dropped += 1
        self.kept.append((now, topic, payload))

    def promote(self, now: float) -> tuple[int, int]:
        """This hub leads now: wait for what the journal says is waiting (the old leader's
        commands included), then take the answers kept as standby, oldest first. An answer
        the old leader journaled already counts as a duplicate; one it never got moves its
        command on. Returns (commands waiting, kept answers taken)."""
        waiting = self.reload()
        oldest = now - self.settings.done_within_s
        taken = 0
        while self.kept:
            at, topic, payload = self.kept.popleft()
            if at < oldest:
                self.kept_dropped += 1
                continue
            self.take(topic, payload, at)
            taken += 1
        log.info("leading: %d commands waiting for their vehicles, %d answers kept as "
                 "standby taken", waiting, taken)
        return waiting, taken

    def answer(self, command: CommandRecord, answer: CommandAnswer, now: float) -> None:
        if PROGRESS[answer.status] <= PROGRESS[command.state]:
            self.duplicate_answers += 1
            return
        late = " (after it was not confirmed)" if command.state == NOT_CONFIRMED else ""
        detail = f"{answer.status}{late}" + (f": {answer.reason}" if answer.reason else "")
        if answer.status in (RECEIVED, EXECUTING) and command.state not in WAITING:
            self.waiting[command.id] = command  # late, but the done is still to come
        self._move(command, answer.status, now, actor="vehicle", detail=detail)

    # -- time -----------------------------------------------------------------------------------

    def expire(self, now: float) -> list[CommandRecord]:
        """Commands the vehicle did not answer in time: journaled not confirmed, each raised as
        an urgent alert. Returns them."""
        due = [c for c in self.waiting.values()
               if (PROGRESS[c.state] < PROGRESS[RECEIVED] and now > c.received_by)
               or now > c.done_by]
        for command in due:
            if PROGRESS[command.state] < PROGRESS[RECEIVED]:
                within = command.received_by - (command.sent_at or command.issued_at)
                why = f"no answer from {command.vehicle} within {within:.1f} s"
                if command.state == ISSUED:
                    why += " (the hub stopped before the broker acknowledged it)"
            else:
                why = (f"{command.vehicle} said {command.state} but not done within "
                       f"{self.settings.done_within_s:g} s")
            self._move(command, NOT_CONFIRMED, now, actor=None, detail=why)
            self._alert(command, why, now)
        return due

    def _alert(self, command: CommandRecord, why: str, now: float) -> None:
        track = self.fleet.vehicles.get(command.vehicle)
        if track is None:
            log.error("command %s to %s not confirmed, and the vehicle is gone from the "
                      "fleet: no alert raised", command.id, command.vehicle)
            return
        event = VehicleEvent(ts=now, kind=NOT_CONFIRMED_EVENT,
                             detail=f"{command.kind} (command {command.id}, by "
                                    f"{command.issued_by}): {why}")
        self.alerts.on_event(now, track, event)

    # -- bookkeeping ------------------------------------------------------------------------------

    def _move(self, command: CommandRecord, state: str, now: float, *, actor: str | None,
              detail: str) -> None:
        """Move, journal through the alerts' keeper, then tell. No one waits on these steps
        (a vehicle's answer, a deadline, the broker's acknowledgement), so while the journal is
        away they are kept in order and written when it is back, and the QoS 1 answer that
        moved the command is not acknowledged to the broker until then."""
        command.state, command.updated_at, command.detail = state, now, detail
        self.alerts.keeper.command_step(command, at=now, actor=actor, detail=detail)
        if state in FINAL or state == NOT_CONFIRMED:
            self.waiting.pop(command.id, None)
        self._tell(command)

    def _tell(self, command: CommandRecord) -> None:
        for listener in self.listeners:
            listener(command)


__all__ = ["DONE", "CommandService", "Refused"]
