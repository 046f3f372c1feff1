"""The embedded journal: one SQLite file in WAL mode (the default, and the demo's).

WAL with ``synchronous=NORMAL`` survives a process crash; ``FULL`` also survives power loss at
the cost of an fsync per transition. Each write is ``BEGIN IMMEDIATE`` … ``COMMIT``.

The file holds token hashes and the operators' audit trail, so it is the hub user's alone:
created 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database file's mode), and an
older journal readable by others is tightened to 0600 when opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from l4mon.store._sql_journal import (
    ADDED_COLUMNS,
    SCHEMA_VERSION,
    JournalError,
    SqlJournal,
    newer_schema,
)

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
    name TEXT PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL
);
CREATE TABLE IF NOT EXISTS service (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vehicle TEXT NOT NULL, site TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS service_vehicle ON service (vehicle, id);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, site TEXT NOT NULL, kind TEXT NOT NULL,
    issued_by TEXT NOT NULL, issued_at REAL NOT NULL, state TEXT NOT NULL,
    received_by REAL NOT NULL, done_by REAL NOT NULL, reason TEXT, text TEXT, override TEXT,
    sent_at REAL, updated_at REAL, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS commands_state ON commands (state);
CREATE TABLE IF NOT EXISTS command_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT NOT NULL REFERENCES commands (id),
    at REAL NOT NULL, state TEXT NOT NULL, actor TEXT, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS command_log_command ON command_log (command_id, seq);
"""


log = logging.getLogger("l4mon")
#: Group and other permission bits: none of them on a journal file.
_SHARED_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


def _make_private(path: str) -> None:
    """Create the journal file 0600 unless it exists; tighten it (and its WAL files) to 0600
    if it is shared. Before SQLite opens it, so no moment exists with the file readable."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return
    except FileExistsError:
        pass
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISREG(mode) and mode & _SHARED_BITS:
            os.chmod(name, 0o600)
            log.warning("journal %s was readable by others (%o): now 0600", name,
                        stat.S_IMODE(mode))


class SqliteJournal(SqlJournal):
    """One SQLite file (or ``:memory:``). Used from the hub's event loop thread only."""

    _errors: ClassVar[tuple[type[Exception], ...]] = (sqlite3.Error,)

    def __init__(self, path: str | Path, *,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        super().__init__(str(path))
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _make_private(self.path)
            # The thread check is off because an ASGI test client calls from its own thread;
            # ``_busy`` keeps two threads out of one transaction instead.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"journal {self.path}: cannot open: {error}") from error
        self._db.row_factory = sqlite3.Row
        try:
            self._migrate(synchronous)
        except BaseException:
            self._db.close()
            raise

    def _migrate(self, synchronous: str) -> None:
        db = self._db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            refused = newer_schema(self.path, None if row is None else row[0])
            if refused is not None:
                raise refused
            for table, column, kind in ADDED_COLUMNS:
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
        except sqlite3.Error as error:
            raise JournalError(f"journal {self.path}: cannot open: {error}") from error

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def _insert(self, db: Any, sql: str, args: Sequence[Any], key: str) -> int:
        return int(db.execute(sql, args).lastrowid)
