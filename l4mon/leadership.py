"""Who decides alerts in a hub pair: two ``serve`` processes on one PostgreSQL journal.

Both ingest the whole feed and keep the whole state (the pipeline is deterministic, so the same
feed gives both the same state); only the **leader** decides alert transitions and takes
operators' actions. Leadership is PostgreSQL's session-level advisory lock, taken on the
journal's own connection (l4mon/store/postgres_journal.py): the leader's writes and its lock
live and die together, so no home-made consensus and no lease to expire. When the leader dies,
its connection closes, the server frees the lock, and the standby takes it at its next try.

    standby ── every poll_interval_s: follow the journal, try the lock ──▶ got it: promote
      (engine.leading False: evaluates,      1. catch up with the journal completely
       decides nothing, keeps one-off        2. lead: raise kept one-off raises the leader
       raises for a while)                      did not have (engine.promote)
                                             3. evaluate every rule at once: raise what holds
                                                and is not open, resolve what cleared
    leader ─── every poll_interval_s: still holding the lock? ── no: fenced

``fenced``: the leader's journal connection broke (and the lock with it): its writes fail, so
it keeps alerting its own consoles from memory (l4mon/store/keeper.py), but takes no operator
actions; the standby, if it reaches the database, leads. The fenced hub reconnects by itself
and rejoins as a standby that has just started (``_rejoin``): a pair of one — a single hub on
PostgreSQL — rides out a database restart this way and leads again at the next round.

Leadership is live only: replay builds no ``Leadership`` and always decides (a single hub's
role is ``single``). All timing here is the live process's; the engine's decisions still take
the time they are given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from l4mon.alerts.follower import JournalFollower
from l4mon.clock import Clock
from l4mon.config import ConfigError, HaSettings
from l4mon.store.journal import JournalError

if TYPE_CHECKING:
    from l4mon.hub import Hub

log = logging.getLogger("l4mon.ha")

Role = Literal["single", "leader", "standby", "fenced"]
SINGLE: Final = "single"
LEADER: Final = "leader"
STANDBY: Final = "standby"
FENCED: Final = "fenced"
#: The journal's ``meta`` key where the leader says who it is (its URL, MQTT client id, since).
LEADER_META: Final = "ha_leader"


class LeaderLock(Protocol):
    """What leadership needs of the journal (PostgresJournal): a lock on its own connection
    and the ``meta`` table."""

    location: str

    def prepare_leadership(self) -> None: ...
    def reconnect(self) -> None: ...
    def try_lead(self) -> bool: ...
    def still_leading(self) -> bool: ...
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...


class Leadership:
    """Owned by the live process; ``step`` runs on the hub's loop, between batches, so a
    promotion is never interleaved with ingest."""

    def __init__(self, *, hub: Hub, lock: LeaderLock, clock: Clock, settings: HaSettings,
                 url: str, client_id: str) -> None:
        engine = hub.alerts
        if engine is None:
            raise ValueError("a hub pair needs the alert engine")
        self.hub = hub
        self.engine = engine
        self.lock = lock
        self.clock = clock
        self.settings = settings
        self.url = url
        self.client_id = client_id
        self.role: Role = STANDBY
        #: When this hub last became leader (its clock); None while it has not.
        self.leader_since: float | None = None
        #: standby -> leader takeovers (a start as leader is not one).
        self.promotions = 0
        #: The last takeover: ms from the lock's last refusal to leading, and its parts.
        self.last_promotion: dict[str, Any] | None = None
        #: The leader as it says in the journal (url, client_id, since), last read.
        self.leader: dict[str, Any] | None = None
        #: Journal reads or lock attempts that failed.
        self.errors = 0
        #: Called after the role changed, and after the duty roster changed (a standby's).
        self.on_role: list[Callable[[], None]] = []
        self.on_duty: list[Callable[[], None]] = []
        self.follower = JournalFollower(engine)
        self._stepped = False
        self._refused_at: float | None = None  # monotonic time of the last refused attempt
        engine.stand_by()  # until the lock says otherwise
        engine.defer_s = settings.defer_s
        lock.prepare_leadership()

    @property
    def leading(self) -> bool:
        """Whether this hub takes operators' actions (a fenced one does not)."""
        return self.role == LEADER

    async def run(self) -> None:
        interval = self.settings.poll_interval_s
        while True:
            await asyncio.sleep(interval)
            self.step()

    def step(self) -> None:
        """One round: a standby follows the journal and tries for the lock (and promotes on
        getting it); a leader checks that it still holds it."""
        first, self._stepped = not self._stepped, True
        if self.role == FENCED:
            self._rejoin()
            return
        if self.role == LEADER:
            self._check_held()
            return
        try:
            self._follow()
            got = self.lock.try_lead()
        except JournalError as error:
            self._failed(error)
            return
        if got:
            try:
                self._promote(first)
            except JournalError as error:  # not caught up: stay standby, try again next round
                self._failed(error)
            return
        self._refused_at = time.monotonic()
        if first:
            self._check_identity()
            log.info("standby: %s leads (%s); following the journal %s",
                     (self.leader or {}).get("url", "another hub"),
                     f"since {self.leader['since']:.3f}" if self.leader else "not said yet",
                     self.lock.location)

    def _follow(self) -> None:
        self.follower.catch_up()
        if self.engine.mirror_duty():
            for listener in self.on_duty:
                listener()
        self.leader = _parse(self.lock.meta(LEADER_META))

    def _promote(self, first: bool) -> None:
        started = time.monotonic()
        refused_at = self._refused_at
        caught = self.follower.catch_up()  # complete: the old leader can commit no more
        if self.engine.mirror_duty():
            for listener in self.on_duty:
                listener()
        now = self.clock.now()
        raised = self.engine.promote(now)
        self.hub.evaluate_alerts(now)
        self.role = LEADER
        self.leader_since = now
        self.leader = {"url": self.url, "client_id": self.client_id, "since": now}
        try:
            self.lock.set_meta(LEADER_META, json.dumps(self.leader))
        except JournalError as error:
            self._failed(error)
        done = time.monotonic()
        if first:
            log.info("leader from the start (journal %s)", self.lock.location)
        else:
            self.promotions += 1
            waited = 0.0 if refused_at is None else started - refused_at
            self.last_promotion = {
                "after_ms": round((done - refused_at) * 1000 if refused_at else 0.0, 1),
                "work_ms": round((done - started) * 1000, 1),
                "transitions_caught_up": caught, "kept_events_raised": len(raised)}
            log.warning("standby -> leader after %.0f ms (lock last refused %.0f ms before it "
                        "was granted; %d transitions caught up; %d kept events the old leader "
                        "had not journaled raised now; promotion work %.1f ms)",
                        self.last_promotion["after_ms"], waited * 1000, caught, len(raised),
                        self.last_promotion["work_ms"])
        for listener in self.on_role:
            listener()

    def _check_held(self) -> None:
        try:
            held = self.lock.still_leading()
        except JournalError as error:  # a slow answer is not a lost lock
            self._failed(error)
            return
        if held:
            return
        self.role = FENCED
        log.critical("the journal connection is gone and the leadership lock with it: this "
                     "hub is FENCED (its writes are kept in memory; it keeps alerting its "
                     "consoles, but takes no operator actions); the standby leads if it "
                     "reaches the journal. It reconnects by itself and rejoins as standby.")
        for listener in self.on_role:
            listener()

    def _rejoin(self) -> None:
        """A fenced hub tries its journal again (the server restarted, the cut healed): once
        it answers, the hub is a standby that has just started, and the lock says who leads
        (this hub again at the next round, if no other took it)."""
        try:
            self.lock.reconnect()
        except JournalError as error:
            self._failed(error)
            return
        self.engine.rejoin(self.clock.now())
        self.follower.last_seq = self.engine.restored_seq
        self.role = STANDBY
        self.leader_since = None
        try:
            self.leader = _parse(self.lock.meta(LEADER_META))  # who leads now, if anyone
        except JournalError as error:
            self._failed(error)
        log.warning("journal %s is back: this hub rejoins as standby and tries for the lock",
                    self.lock.location)
        for listener in self.on_role:
            listener()

    def _check_identity(self) -> None:
        """Two hubs with one MQTT client id would take each other's broker session in turn
        (and their QoS 1 events): refuse to run as the second."""
        leader = self.leader
        if leader is not None and leader.get("client_id") == self.client_id:
            raise ConfigError(
                f"the leading hub ({leader.get('url')}) uses MQTT client id "
                f"{self.client_id!r} too: give each hub of a pair its own [mqtt] client_id")

    def _failed(self, error: JournalError) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 100 == 0:  # not one line per poll
            log.error("hub pair: %s (%d failures so far)", error, self.errors)

    def view(self) -> dict[str, Any]:
        leader = self.leader or {}
        return {"role": self.role, "leader_since": self.leader_since, "self": self.url,
                "leader": self.url if self.role == LEADER else leader.get("url"),
                "promotions": self.promotions, "last_promotion": self.last_promotion,
                "following_seq": self.follower.last_seq,
                "kept_events": 0 if self.leading else len(self.engine.deferred)}


def _parse(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
