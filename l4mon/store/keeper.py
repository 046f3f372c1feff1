"""The engine's writes to the journal, kept when the journal cannot take them.

"Nothing acknowledged that is not kept": an alert transition the journal refused (a
PostgreSQL connection cut or restarting, an SQLite file on a full disk) is not dropped. It is
queued here, in order, and the hub keeps alerting from memory: consoles see the alert (its id
provisional, negative, until the journal gives the real one), the QoS 1 messages that caused
it are not acknowledged to the broker (the runtime holds their acks while ``unsettled`` grows,
l4mon/runtime.py), and the hub's own ``journal_unavailable`` alert says so. ``flush`` writes the
queue, oldest first, once the journal answers again (the runtime retries with backoff and
reconnects PostgreSQL); then the held acks go out.

Operators' actions are not queued: an acknowledgement that is not journaled is not one, so
while anything is queued (or the write itself fails) the action is refused with
``JournalUnavailable`` (503 from the API) and changes nothing.

Never called concurrently: the hub's loop owns it, like the engine.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from l4mon.records.alert import Alert, Transition
from l4mon.store.journal import Journal, JournalError

log = logging.getLogger("l4mon.alerts")

#: Writes kept at most while the journal is down (a storm of alerts over a long outage); what
#: is beyond is counted and logged, and alerting goes on from memory.
UNJOURNALED_MAX: Final = 100_000


class JournalUnavailable(RuntimeError):
    """The journal cannot take a write now: an operator's action is refused, not half done."""


@dataclass(slots=True)
class _Write:
    alert: Alert | None  # None: a service change
    kind: str
    at: float
    actor: str | None
    detail: str
    on_duty: list[str]
    new: bool = False
    service: tuple[str, str, str, str | None] | None = None  # vehicle, site, status, reason
    command: Any = None  # a CommandRecord as it was at this step (l4mon/commands)


class JournalKeeper:
    """Writes to ``journal`` now, or keeps them for later, in order."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: deque[_Write] = deque()
        #: Writes that failed or were queued (the engine's ``journal_failures``): a counter, so
        #: the runtime can tell whether a batch needed the journal and did not get it.
        self.unsettled = 0
        #: Writes dropped because the queue was full (never expected; counted if it happens).
        self.dropped = 0
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._provisional = 0
        #: Called with (old provisional id, alert) when a queued alert gets its journal id.
        self.renumbered: list[Callable[[int, Alert], None]] = []

    @property
    def ok(self) -> bool:
        """Whether everything the engine decided is in the journal."""
        return not self._queue and self.down_since is None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def write(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
              on_duty: list[str], new: bool = False) -> Transition:
        """Journal a transition, or keep it (after anything already kept: order matters).
        A kept one comes back with seq 0, and a new alert gets a provisional id < 0."""
        write = _Write(alert, kind, at, actor, detail, on_duty, new)
        written, told = self._put_or_keep(write)
        if written:
            assert told is not None  # an alert's write always gives its transition
            return told
        if new:
            self._provisional += 1
            alert.id = -self._provisional
        return Transition(seq=0, alert_id=alert.id, at=at, kind=kind, actor=actor,
                          detail=f"NOT JOURNALED YET: {detail}", on_duty=on_duty)

    def write_now(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
                  on_duty: list[str]) -> Transition:
        """An operator's action: journaled now, or ``JournalUnavailable`` (nothing kept)."""
        if self._queue or self.down_since is not None:
            raise JournalUnavailable(self.why())
        try:
            return self.journal.record(alert, kind=kind, at=at, actor=actor, detail=detail,
                                       on_duty=on_duty)
        except JournalError as error:
            self._down(at, error)
            raise JournalUnavailable(self.why()) from None

    def service(self, *, vehicle: str, site: str, status: str, at: float,
                reason: str | None) -> None:
        write = _Write(None, "service", at, None, "", [], service=(vehicle, site, status, reason))
        self._put_or_keep(write)

    def command_step(self, command: Any, *, at: float, actor: str | None,
                     detail: str) -> None:
        """A command's step the hub took without anyone waiting on the journal (a vehicle's
        answer, a deadline passed): journaled now, or kept in order like an alert transition,
        so the answer's QoS 1 acknowledgement is held until it is in (l4mon/runtime.py)."""
        snapshot = copy.copy(command)  # later steps change the record; this one is kept as is
        write = _Write(None, "command", at, actor, detail, [], command=snapshot)
        self._put_or_keep(write)

    def flush(self, now: float) -> int:
        """Write what is kept, oldest first, until done or the journal refuses again; returns
        how many went in. Afterwards ``ok`` says whether the journal has caught up."""
        written = 0
        while self._queue:
            write = self._queue[0]
            old = write.alert.id if write.alert is not None else 0
            try:
                self._put(write)
            except JournalError as error:
                self._down(now, error)
                return written
            self._queue.popleft()
            written += 1
            if write.new and write.alert is not None:
                for listener in self.renumbered:
                    listener(old, write.alert)
        if self.down_since is not None:
            log.warning("journal %s: back after %.1f s; %d kept transitions journaled",
                        self.journal.location, now - self.down_since, written)
        self.down_since = None
        self.last_error = None
        return written

    def take(self) -> list[tuple[Alert, str, float, str]]:
        """Give up what is kept (a fenced hub of a pair rejoining: the journal decides now):
        returns the kept new alerts as (alert, kind, at, detail), and the journal counts as
        caught up."""
        kept = [(w.alert, w.kind, w.at, w.detail) for w in self._queue
                if w.new and w.alert is not None]
        self._queue.clear()
        self.down_since = None
        self.last_error = None
        return kept

    def probe(self, now: float) -> bool:
        """Whether the journal answers a read (after a reconnect, before flushing)."""
        try:
            self.journal.last_seq()
        except JournalError as error:
            self._down(now, error)
            return False
        return True

    def why(self) -> str:
        kept = f"; {len(self._queue)} transitions kept in memory" if self._queue else ""
        return f"the alert journal is unavailable ({self.last_error or 'not answering'}){kept}"

    def _put(self, write: _Write) -> Transition | None:
        journal = self.journal
        if write.command is not None:
            journal.command_moved(write.command, at=write.at, actor=write.actor,
                                  detail=write.detail)
            return None
        if write.service is not None:
            vehicle, site, status, reason = write.service
            journal.service_change(vehicle=vehicle, site=site, status=status, at=write.at,
                                   reason=reason)
            return None
        assert write.alert is not None
        if write.new:
            return journal.new_alert(write.alert, kind=write.kind, at=write.at,
                                     actor=write.actor, detail=write.detail,
                                     on_duty=write.on_duty)
        return journal.record(write.alert, kind=write.kind, at=write.at, actor=write.actor,
                              detail=write.detail, on_duty=write.on_duty)

    def _put_or_keep(self, write: _Write) -> tuple[bool, Transition | None]:
        """Journal ``write`` now when nothing kept is ahead of it and the journal takes it,
        else keep it; (journaled now, what the journal returned)."""
        if not self._queue:
            try:
                return True, self._put(write)
            except JournalError as error:
                self._down(write.at, error)
        self._keep(write)
        return False, None

    def _keep(self, write: _Write) -> None:
        self.unsettled += 1
        if len(self._queue) >= UNJOURNALED_MAX:
            self.dropped += 1
            log.critical("journal %s: %d transitions kept; this one is dropped: %s %s",
                         self.journal.location, len(self._queue), write.kind,
                         write.alert.rule if write.alert is not None else write.kind)
            return
        self._queue.append(write)

    def _down(self, at: float, error: JournalError) -> None:
        if self.down_since is None:
            self.down_since = at
            log.critical("journal %s unavailable: %s; alerting goes on from memory, QoS 1 "
                         "acknowledgements wait until it is back", self.journal.location, error)
        self.last_error = str(error)
