"""What the SQLite and the PostgreSQL journal share: the tables' columns, every query, and the
transaction discipline (one writer at a time, any failure a ``JournalError``).

The queries are written once, with ``?`` marks; a driver that wants other marks rewrites them
(``_sql``). Lists (who was on duty, a shift's vehicles) are JSON text in both databases and
times are seconds as doubles, so both journals hand back exactly the same values.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from l4mon.auth import TOKENS_GENERATION
from l4mon.records.alert import OPEN_STATES, Alert, Transition
from l4mon.records.command import CommandRecord, CommandStep

SCHEMA_VERSION: Final = 6
#: Columns added after version 1, with their type: added in place to an older journal
#: (2: intersection; 3: the incident an alert belongs to; 5: a token's expiry and
#: revocation). Version 4 added the table ``service`` (each vehicle's service lifecycle),
#: version 6 the tables ``commands`` and ``command_log`` (operators' commands and the
#: vehicles' answers), created in place like every table.
ADDED_COLUMNS: Final = (("alerts", "intersection", "TEXT"), ("alerts", "incident", "INTEGER"),
                        ("alerts", "incident_group", "TEXT"),
                        ("alerts", "incident_cause", "TEXT"),
                        ("tokens", "expires_at", "REAL"), ("tokens", "revoked_at", "REAL"))
#: The columns of ``commands``, in ``CommandRecord``'s field order.
COMMAND_COLUMNS: Final = tuple(CommandRecord.__struct_fields__)
ALERT_COLUMNS: Final = (
    "rule", "title", "severity", "site", "vehicle", "link", "rsu", "state", "raised_at", "detail",
    "escalated", "escalated_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    "resolved_by", "resolve_reason", "on_duty_at_raise", "flaps", "last_raised_at",
    "intersection", "incident", "incident_group", "incident_cause",
)


class JournalError(RuntimeError):
    """The journal cannot be written; the hub keeps alerting live and says so loudly."""


def newer_schema(location: str, found: str | None) -> JournalError | None:
    """The error for a journal written by a newer l4mon (its tables may mean something this
    hub does not know), or None."""
    if found is not None and found.isdigit() and int(found) > SCHEMA_VERSION:
        return JournalError(f"journal {location} has schema version {found}, written by a newer "
                            f"l4mon; this one knows up to version {SCHEMA_VERSION}: run the "
                            "newer l4mon, or give another journal")
    return None


def _alert_values(alert: Alert) -> list[Any]:
    values = []
    for column in ALERT_COLUMNS:
        value = getattr(alert, column)
        if column == "on_duty_at_raise":
            value = json.dumps(value)
        elif column == "escalated":
            value = int(value)
        values.append(value)
    return values


def _alert_from_row(row: Mapping[str, Any]) -> Alert:
    data = dict(row)
    data["escalated"] = bool(data["escalated"])
    data["on_duty_at_raise"] = json.loads(data["on_duty_at_raise"])
    return Alert(**data)


def _transition_from_row(row: Mapping[str, Any]) -> Transition:
    data = dict(row)
    data["on_duty"] = json.loads(data["on_duty"])
    return Transition(**data)


class SqlJournal:
    """The journal over one DB-API connection (``_db``), used from the hub's event loop thread.

    A subclass opens the connection (rows readable by column name), creates or migrates the
    schema, and says how its driver fails (``_errors``), marks parameters (``_sql``), starts a
    transaction (``_begin``) and returns a new row's key (``_insert``)."""

    #: The driver's exceptions: on a write, each becomes a JournalError.
    _errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, location: str) -> None:
        #: Where the journal is, fit to show (no password).
        self.location = location
        #: Writes refused or failed (the engine counts its own; this is the journal's view).
        self.failures = 0
        # Used by one thread at a time (the hub's loop). An ASGI test client calls from its own
        # thread; what matters, that no two threads are ever inside a transaction at once, is
        # enforced by ``_busy``.
        self._busy = threading.Lock()
        self._db: Any = None

    # -- what a driver provides -----------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text

    def _begin(self) -> None:
        raise NotImplementedError

    def _insert(self, db: Any, sql: str, args: Sequence[Any], key: str) -> int:
        """Run ``INSERT`` ``sql`` and return the new row's ``key`` column."""
        raise NotImplementedError

    def close(self) -> None:
        self._db.close()

    # -- alerts ---------------------------------------------------------------------------------

    def new_alert(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
                  on_duty: list[str]) -> Transition:
        """Insert ``alert`` (its ``id`` is assigned here) with its first transition."""
        columns = ", ".join(ALERT_COLUMNS)
        marks = ", ".join("?" for _ in ALERT_COLUMNS)
        with self._transaction() as db:
            alert.id = self._insert(db, self._sql(f"INSERT INTO alerts ({columns}) "
                                                  f"VALUES ({marks})"),
                                    _alert_values(alert), "id")
            return self._insert_transition(db, alert.id, at, kind, actor, detail, on_duty)

    def record(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
               on_duty: list[str]) -> Transition:
        """Persist ``alert``'s new state together with the transition that led to it."""
        assignments = ", ".join(f"{c} = ?" for c in ALERT_COLUMNS)
        with self._transaction() as db:
            db.execute(self._sql(f"UPDATE alerts SET {assignments} WHERE id = ?"),
                       [*_alert_values(alert), alert.id])
            return self._insert_transition(db, alert.id, at, kind, actor, detail, on_duty)

    def _insert_transition(self, db: Any, alert_id: int, at: float, kind: str,
                           actor: str | None, detail: str, on_duty: list[str]) -> Transition:
        seq = self._insert(db, self._sql(
            "INSERT INTO transitions (alert_id, at, kind, actor, detail, on_duty) "
            "VALUES (?, ?, ?, ?, ?, ?)"), (alert_id, at, kind, actor, detail, json.dumps(on_duty)),
            "seq")
        return Transition(seq=seq, alert_id=alert_id, at=at, kind=kind, actor=actor,
                          detail=detail, on_duty=on_duty)

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """A read; a driver's failure (a connection gone, a server restarting) is a
        ``JournalError`` like a write's, so callers answer it (503), never crash on it."""
        try:
            return self._db.execute(self._sql(sql), args).fetchall()  # type: ignore[no-any-return]
        except self._errors as error:
            raise JournalError(f"journal {self.location}: {error}") from error

    def reconnect(self) -> None:
        """Make the journal usable again after a failure; JournalError while it is not. An
        embedded file needs nothing (a full disk frees up by itself): a server's journal
        overrides this."""

    def open_alerts(self) -> list[Alert]:
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self._rows(f"SELECT * FROM alerts WHERE state IN ({marks}) ORDER BY id",
                          OPEN_STATES)
        return [_alert_from_row(r) for r in rows]

    def last_auto_resolved(self) -> list[Alert]:
        """Per (rule, subject) with no open alert, its newest alert if the system resolved it:
        what flap damping needs to reopen instead of raising anew after a restart."""
        rows = self._rows(
            "SELECT a.* FROM alerts a JOIN (SELECT MAX(id) AS id FROM alerts "
            "GROUP BY rule, COALESCE(vehicle, rsu, intersection), link) newest "
            "ON a.id = newest.id "
            "WHERE a.state = 'resolved' AND a.resolved_by IS NULL ORDER BY a.id")
        return [_alert_from_row(r) for r in rows]

    def alert(self, alert_id: int) -> Alert | None:
        rows = self._rows("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _alert_from_row(rows[0]) if rows else None

    def alerts(self, *, states: tuple[str, ...] | None = None, severity: str | None = None,
               vehicle: str | None = None, since: float | None = None,
               before_id: int | None = None, limit: int = 200) -> list[Alert]:
        where, args = [], []
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args.extend(states)
        if severity:
            where.append("severity = ?")
            args.append(severity)
        if vehicle:
            where.append("vehicle = ?")
            args.append(vehicle)
        if since is not None:
            where.append("raised_at >= ?")
            args.append(since)
        if before_id is not None:  # a page further back: ids grow as alerts are raised
            where.append("id < ?")
            args.append(before_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT * FROM alerts {clause} ORDER BY id DESC LIMIT ?",
                          [*args, limit])
        return [_alert_from_row(r) for r in rows]

    def history(self, alert_id: int) -> list[Transition]:
        rows = self._rows("SELECT * FROM transitions WHERE alert_id = ? ORDER BY seq",
                          (alert_id,))
        return [_transition_from_row(r) for r in rows]

    def transitions_since(self, seq: int, *, limit: int = 10_000) -> list[Transition]:
        rows = self._rows("SELECT * FROM transitions WHERE seq > ? ORDER BY seq LIMIT ?",
                          (seq, limit))
        return [_transition_from_row(r) for r in rows]

    def last_seq(self) -> int:
        (row,) = self._rows("SELECT MAX(seq) AS seq FROM transitions")
        return int(row["seq"] or 0)

    # -- duty -----------------------------------------------------------------------------------

    def duty_on(self, operator: str, at: float, vehicles: list[str] | None) -> None:
        with self._transaction() as db:
            db.execute(self._sql("UPDATE duty SET off_at = ? WHERE operator = ? "
                                 "AND off_at IS NULL"), (at, operator))
            db.execute(self._sql("INSERT INTO duty (operator, on_at, vehicles) VALUES (?, ?, ?)"),
                       (operator, at, None if vehicles is None else json.dumps(vehicles)))

    def duty_off(self, operator: str, at: float) -> None:
        with self._transaction() as db:
            db.execute(self._sql("UPDATE duty SET off_at = ? WHERE operator = ? "
                                 "AND off_at IS NULL"), (at, operator))

    def on_duty(self) -> list[tuple[str, float, list[str] | None]]:
        rows = self._rows("SELECT operator, on_at, vehicles FROM duty WHERE off_at IS NULL "
                          "ORDER BY on_at, id")
        return [(r["operator"], r["on_at"],
                 None if r["vehicles"] is None else json.loads(r["vehicles"])) for r in rows]

    def duty_log(self, *, limit: int = 1_000) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM duty ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # -- meta: the schema version, and who leads a hub pair (l4mon/leadership.py) -------------

    def meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(self._sql("DELETE FROM meta WHERE key = ?"), (key,))
            db.execute(self._sql("INSERT INTO meta (key, value) VALUES (?, ?)"), (key, value))

    # -- vehicles' service: entering, leaving, and connections lost without a word ------------

    def service_change(self, *, vehicle: str, site: str, status: str, at: float,
                       reason: str | None) -> None:
        with self._transaction() as db:
            db.execute(self._sql("INSERT INTO service (vehicle, site, status, at, reason) "
                                 "VALUES (?, ?, ?, ?, ?)"), (vehicle, site, status, at, reason))

    def service_states(self) -> list[dict[str, Any]]:
        """Each vehicle's newest service status (``offline`` notes aside): what a restarted
        hub resumes with."""
        rows = self._rows(
            "SELECT s.vehicle, s.site, s.status, s.at, s.reason FROM service s JOIN "
            "(SELECT MAX(id) AS id FROM service WHERE status <> 'offline' GROUP BY vehicle) "
            "newest ON s.id = newest.id ORDER BY s.vehicle")
        return [dict(r) for r in rows]

    def service_log(self, *, vehicle: str | None = None, since: float | None = None,
                    limit: int = 1_000) -> list[dict[str, Any]]:
        """Service changes and wills, newest first."""
        where, args = [], []
        if vehicle:
            where.append("vehicle = ?")
            args.append(vehicle)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT * FROM service {clause} ORDER BY id DESC LIMIT ?",
                          [*args, limit])
        return [dict(r) for r in rows]

    # -- commands: what operators told vehicles to do, and what the vehicles answered -------

    def new_command(self, command: CommandRecord, *, actor: str, detail: str) -> CommandStep:
        """Insert ``command`` with its first step, in one transaction. An id already in the
        table is refused by the primary key (JournalError): callers look it up first."""
        columns = ", ".join(COMMAND_COLUMNS)
        marks = ", ".join("?" for _ in COMMAND_COLUMNS)
        with self._transaction() as db:
            db.execute(self._sql(f"INSERT INTO commands ({columns}) VALUES ({marks})"),
                       [getattr(command, c) for c in COMMAND_COLUMNS])
            return self._command_step(db, command.id, command.issued_at, command.state, actor,
                                      detail)

    def command_moved(self, command: CommandRecord, *, at: float, actor: str | None,
                      detail: str) -> CommandStep:
        """Persist ``command``'s new state with the step that led to it, in one transaction."""
        assignments = ", ".join(f"{c} = ?" for c in COMMAND_COLUMNS if c != "id")
        with self._transaction() as db:
            db.execute(self._sql(f"UPDATE commands SET {assignments} WHERE id = ?"),
                       [*(getattr(command, c) for c in COMMAND_COLUMNS if c != "id"),
                        command.id])
            return self._command_step(db, command.id, at, command.state, actor, detail)

    def _command_step(self, db: Any, command_id: str, at: float, state: str,
                      actor: str | None, detail: str) -> CommandStep:
        seq = self._insert(db, self._sql(
            "INSERT INTO command_log (command_id, at, state, actor, detail) "
            "VALUES (?, ?, ?, ?, ?)"), (command_id, at, state, actor, detail), "seq")
        return CommandStep(seq=seq, command_id=command_id, at=at, state=state, actor=actor,
                           detail=detail)

    def command(self, command_id: str) -> CommandRecord | None:
        rows = self._rows("SELECT * FROM commands WHERE id = ?", (command_id,))
        return CommandRecord(**dict(rows[0])) if rows else None

    def commands(self, *, vehicle: str | None = None, states: tuple[str, ...] | None = None,
                 limit: int = 200) -> list[CommandRecord]:
        """Newest first."""
        where, args = [], []
        if vehicle:
            where.append("vehicle = ?")
            args.append(vehicle)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args.extend(states)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT * FROM commands {clause} ORDER BY issued_at DESC, id "
                          "LIMIT ?", [*args, limit])
        return [CommandRecord(**dict(r)) for r in rows]

    def command_log(self, command_id: str) -> list[CommandStep]:
        rows = self._rows("SELECT * FROM command_log WHERE command_id = ? ORDER BY seq",
                          (command_id,))
        return [CommandStep(**dict(r)) for r in rows]

    # -- tokens ---------------------------------------------------------------------------------

    def tokens(self) -> list[dict[str, Any]]:
        """Every token row, revoked ones too (``revoked_at`` set): name, role, sha256,
        created_at, expires_at (None: never), revoked_at (None: in force)."""
        rows = self._rows("SELECT name, role, sha256, created_at, expires_at, revoked_at "
                          "FROM tokens ORDER BY name")
        return [dict(r) for r in rows]

    def add_token(self, name: str, role: str, sha256: str, at: float, *,
                  expires_at: float | None = None) -> None:
        """Keep a new token's hash. A name already in the table is given the new token (its
        old one stops working): callers refuse a name whose token is still in force."""
        with self._transaction() as db:
            db.execute(self._sql(
                "INSERT INTO tokens (name, role, sha256, created_at, expires_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (name) DO UPDATE SET "
                "role = excluded.role, sha256 = excluded.sha256, "
                "created_at = excluded.created_at, expires_at = excluded.expires_at, "
                "revoked_at = NULL"), (name, role, sha256, at, expires_at))
            self._tokens_changed(db)

    def revoke_token(self, name: str, at: float) -> bool:
        """Revoke ``name``'s token from ``at`` on; False if there is none in force. The row
        stays (who had a token, and until when)."""
        with self._transaction() as db:
            changed = db.execute(self._sql(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"),
                (at, name)).rowcount
            if changed:
                self._tokens_changed(db)
        return bool(changed)

    def _tokens_changed(self, db: Any) -> None:
        """A new token generation, in the caller's transaction: a running hub that reads it
        re-reads the tokens (l4mon/auth.py)."""
        db.execute(self._sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                             "DO UPDATE SET value = excluded.value"),
                   (TOKENS_GENERATION, secrets.token_hex(8)))


class _Transaction:
    """``BEGIN`` … ``COMMIT`` on the journal's connection; any driver failure (and a second
    thread trying to write meanwhile) becomes a ``JournalError``, counted in ``failures``."""

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal

    def __enter__(self) -> Any:
        journal = self.journal
        if not journal._busy.acquire(blocking=False):
            # Two writers on one connection would interleave their transactions: a bug in the
            # caller, refused loudly rather than journaled wrongly.
            journal.failures += 1
            raise JournalError(f"journal {journal.location}: used from two threads at once")
        try:
            journal._begin()
        except journal._errors as error:
            journal._busy.release()
            journal.failures += 1
            raise JournalError(f"journal {journal.location}: {error}") from error
        return journal._db

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self._finish(exc)
        finally:
            self.journal._busy.release()

    def _finish(self, exc: BaseException | None) -> None:
        journal = self.journal
        db = journal._db
        if exc is None:
            try:
                db.execute("COMMIT")
                return
            except journal._errors as error:
                exc = error
        with contextlib.suppress(*journal._errors):
            db.execute("ROLLBACK")
        journal.failures += 1
        if isinstance(exc, journal._errors):
            raise JournalError(f"journal {journal.location}: {exc}") from exc
