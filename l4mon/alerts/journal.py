"""The durable journal: every alert transition and duty change, in SQLite (WAL mode).

The engine writes a transition here *before* it tells anyone, so after a crash (``kill -9``)
the hub restarts with exactly the alerts, acknowledgements and audit trail that operators saw.
Each transition and the alert row it changes are one transaction. WAL with
``synchronous=NORMAL`` survives a process crash; ``FULL`` also survives power loss at the cost
of an fsync per transition.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final, Literal

from l4mon.alerts.model import OPEN_STATES, Alert, Transition

SCHEMA_VERSION: Final = 3
#: Columns added after version 1, with their type: added in place to an older journal
#: (2: intersection; 3: the incident an alert belongs to).
_ADDED_COLUMNS: Final = (("alerts", "intersection", "TEXT"), ("alerts", "incident", "INTEGER"),
                         ("alerts", "incident_group", "TEXT"),
                         ("alerts", "incident_cause", "TEXT"))
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL,
    site TEXT, vehicle TEXT, link TEXT, rsu TEXT,
    state TEXT NOT NULL, raised_at REAL NOT NULL, detail TEXT NOT NULL DEFAULT '',
    escalated INTEGER NOT NULL DEFAULT 0, escalated_at REAL,
    acknowledged_at REAL, acknowledged_by TEXT,
    resolved_at REAL, resolved_by TEXT, resolve_reason TEXT,
    on_duty_at_raise TEXT NOT NULL DEFAULT '[]', flaps INTEGER NOT NULL DEFAULT 0,
    last_raised_at REAL, intersection TEXT,
    incident INTEGER, incident_group TEXT, incident_cause TEXT
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at REAL NOT NULL, kind TEXT NOT NULL, actor TEXT, detail TEXT NOT NULL DEFAULT '',
    on_duty TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS transitions_alert ON transitions (alert_id);
CREATE TABLE IF NOT EXISTS duty (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operator TEXT NOT NULL, on_at REAL NOT NULL, off_at REAL, vehicles TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL, created_at REAL NOT NULL
);
"""
_ALERT_COLUMNS: Final = (
    "rule", "title", "severity", "site", "vehicle", "link", "rsu", "state", "raised_at", "detail",
    "escalated", "escalated_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    "resolved_by", "resolve_reason", "on_duty_at_raise", "flaps", "last_raised_at",
    "intersection", "incident", "incident_group", "incident_cause",
)


class JournalError(RuntimeError):
    """The journal cannot be written; the hub keeps alerting live and says so loudly."""


def _alert_values(alert: Alert) -> list[Any]:
    values = []
    for column in _ALERT_COLUMNS:
        value = getattr(alert, column)
        if column == "on_duty_at_raise":
            value = json.dumps(value)
        elif column == "escalated":
            value = int(value)
        values.append(value)
    return values


def _alert_from_row(row: sqlite3.Row) -> Alert:
    data = dict(row)
    data["escalated"] = bool(data["escalated"])
    data["on_duty_at_raise"] = json.loads(data["on_duty_at_raise"])
    return Alert(**data)


def _transition_from_row(row: sqlite3.Row) -> Transition:
    data = dict(row)
    data["on_duty"] = json.loads(data["on_duty"])
    return Transition(**data)


class Journal:
    """One SQLite file. Used from the hub's event loop thread only."""

    def __init__(self, path: str | Path, *,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Used by one thread at a time (the hub's loop). The thread check is off because an
        # ASGI test client calls from its own thread; what matters, that no two threads are
        # ever inside a transaction at once, is enforced by ``_busy`` instead.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._busy = threading.Lock()
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for table, column, kind in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        self.failures = 0

    def close(self) -> None:
        self._db.close()

    # -- alerts ---------------------------------------------------------------------------------

    def new_alert(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
                  on_duty: list[str]) -> Transition:
        """Insert ``alert`` (its ``id`` is assigned here) with its first transition."""
        columns = ", ".join(_ALERT_COLUMNS)
        marks = ", ".join("?" for _ in _ALERT_COLUMNS)
        with self._transaction() as db:
            cursor = db.execute(f"INSERT INTO alerts ({columns}) VALUES ({marks})",
                                _alert_values(alert))
            alert.id = int(cursor.lastrowid)  # type: ignore[arg-type]
            return self._insert_transition(db, alert.id, at, kind, actor, detail, on_duty)

    def record(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
               on_duty: list[str]) -> Transition:
        """Persist ``alert``'s new state together with the transition that led to it."""
        assignments = ", ".join(f"{c} = ?" for c in _ALERT_COLUMNS)
        with self._transaction() as db:
            db.execute(f"UPDATE alerts SET {assignments} WHERE id = ?",
                       [*_alert_values(alert), alert.id])
            return self._insert_transition(db, alert.id, at, kind, actor, detail, on_duty)

    def _insert_transition(self, db: sqlite3.Connection, alert_id: int, at: float, kind: str,
                           actor: str | None, detail: str, on_duty: list[str]) -> Transition:
        cursor = db.execute(
            "INSERT INTO transitions (alert_id, at, kind, actor, detail, on_duty) "
            "VALUES (?, ?, ?, ?, ?, ?)", (alert_id, at, kind, actor, detail, json.dumps(on_duty)))
        return Transition(seq=int(cursor.lastrowid), alert_id=alert_id, at=at,  # type: ignore[arg-type]
                          kind=kind, actor=actor, detail=detail, on_duty=on_duty)

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def open_alerts(self) -> list[Alert]:
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self._db.execute(f"SELECT * FROM alerts WHERE state IN ({marks}) ORDER BY id",
                                OPEN_STATES).fetchall()
        return [_alert_from_row(r) for r in rows]

    def last_auto_resolved(self) -> list[Alert]:
        """Per (rule, subject) with no open alert, its newest alert if the system resolved it:
        what flap damping needs to reopen instead of raising anew after a restart."""
        rows = self._db.execute(
            "SELECT a.* FROM alerts a JOIN (SELECT MAX(id) AS id FROM alerts "
            "GROUP BY rule, COALESCE(vehicle, rsu, intersection), link) newest "
            "ON a.id = newest.id "
            "WHERE a.state = 'resolved' AND a.resolved_by IS NULL ORDER BY a.id").fetchall()
        return [_alert_from_row(r) for r in rows]

    def alert(self, alert_id: int) -> Alert | None:
        row = self._db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else _alert_from_row(row)

    def alerts(self, *, states: tuple[str, ...] | None = None, severity: str | None = None,
               vehicle: str | None = None, since: float | None = None,
               limit: int = 200) -> list[Alert]:
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
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(f"SELECT * FROM alerts {clause} ORDER BY id DESC LIMIT ?",
                                [*args, limit]).fetchall()
        return [_alert_from_row(r) for r in rows]

    def history(self, alert_id: int) -> list[Transition]:
        rows = self._db.execute("SELECT * FROM transitions WHERE alert_id = ? ORDER BY seq",
                                (alert_id,)).fetchall()
        return [_transition_from_row(r) for r in rows]

    def transitions_since(self, seq: int, *, limit: int = 10_000) -> list[Transition]:
        rows = self._db.execute("SELECT * FROM transitions WHERE seq > ? ORDER BY seq LIMIT ?",
                                (seq, limit)).fetchall()
        return [_transition_from_row(r) for r in rows]

    def last_seq(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM transitions").fetchone()
        return int(row[0] or 0)

    # -- duty -----------------------------------------------------------------------------------

    def duty_on(self, operator: str, at: float, vehicles: list[str] | None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE duty SET off_at = ? WHERE operator = ? AND off_at IS NULL",
                       (at, operator))
            db.execute("INSERT INTO duty (operator, on_at, vehicles) VALUES (?, ?, ?)",
                       (operator, at, None if vehicles is None else json.dumps(vehicles)))

    def duty_off(self, operator: str, at: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE duty SET off_at = ? WHERE operator = ? AND off_at IS NULL",
                       (at, operator))

    def on_duty(self) -> list[tuple[str, float, list[str] | None]]:
        rows = self._db.execute(
            "SELECT operator, on_at, vehicles FROM duty WHERE off_at IS NULL ORDER BY on_at")
        return [(r["operator"], r["on_at"],
                 None if r["vehicles"] is None else json.loads(r["vehicles"])) for r in rows]

    def duty_log(self, *, limit: int = 1_000) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM duty ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # -- tokens ---------------------------------------------------------------------------------

    def tokens(self) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT name, role, sha256 FROM tokens ORDER BY name")
        return [(r["name"], r["role"], r["sha256"]) for r in rows]

    def add_token(self, name: str, role: str, sha256: str, at: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", (name, role, sha256, at))


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; any SQLite failure becomes a ``JournalError``."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def __enter__(self) -> sqlite3.Connection:
        if not self.journal._busy.acquire(blocking=False):
            # Two writers on one connection would interleave their transactions: a bug in the
            # caller, refused loudly rather than journaled wrongly.
            self.journal.failures += 1
            raise JournalError(f"journal {self.journal.path}: used from two threads at once")
        try:
            self.journal._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self.journal._busy.release()
            self.journal.failures += 1
            raise JournalError(f"journal {self.journal.path}: {error}") from error
        return self.journal._db

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self._finish(exc)
        finally:
            self.journal._busy.release()

    def _finish(self, exc: BaseException | None) -> None:
        db = self.journal._db
        if exc is None:
            try:
                db.execute("COMMIT")
                return
            except sqlite3.Error as error:
                exc = error
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        self.journal.failures += 1
        if isinstance(exc, sqlite3.Error):
            raise JournalError(f"journal {self.journal.path}: {exc}") from exc
