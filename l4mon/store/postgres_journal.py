"""The journal on a PostgreSQL server: for a hub whose standby runs on another host
(docs/scaling.md), where an SQLite file cannot follow.

One connection (psycopg 3), used from the hub's loop thread like the SQLite file, synchronous
like it. The connection is in autocommit mode and every write is an explicit ``BEGIN`` …
``COMMIT``, so a transition and its alert row are one transaction, committed before anything
is broadcast, and a read never leaves a transaction open (with autocommit off the first
``SELECT`` would hold one open until the next write). A commit is on the server's disk when
it returns: the session never runs with ``synchronous_commit = off`` (how far it waits for a
synchronous replica is the server's setting).

A call holds the hub's loop, so a server that hangs must not hold it for long: unless the URL
or the server says otherwise, a statement gives up after 5 s (``statement_timeout``) and data
the server's host has not acknowledged for 5 s breaks the connection (``tcp_user_timeout``).
The write then fails as a JournalError, and the hub keeps alerting, flagged. A broken
connection is not reopened (yet): every later write fails the same way until a restart.

The hub creates the tables, and brings an older schema up to ``SCHEMA_VERSION`` (recorded in
``meta``) in one transaction, serialized across hubs by an advisory lock.

Leadership of a hub pair (l4mon/leadership.py) is a session-level advisory lock taken on this
same connection (``try_lead``): the leader's writes and its lock live and die together, so a
leader whose connection is gone can neither write nor keep the lock, and a standby gets it the
moment the server sees that connection close.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from l4mon.store._sql_journal import (
    ADDED_COLUMNS,
    SCHEMA_VERSION,
    JournalError,
    SqlJournal,
    newer_schema,
)
from l4mon.store.journal_location import redact, scrub

log = logging.getLogger("l4mon")

#: The same tables and columns as the SQLite journal's: ids and sequence numbers from identity
#: columns (never reused; a rolled-back write leaves a gap, which a console resuming from
#: ``last_seq`` does not mind), times as double precision, lists as JSON text; token names
#: sort bytewise (``COLLATE "C"``) as SQLite's do, whatever the database's locale.
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS alerts (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rule TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL,
        site TEXT, vehicle TEXT, link TEXT, rsu TEXT,
        state TEXT NOT NULL, raised_at DOUBLE PRECISION NOT NULL, detail TEXT NOT NULL DEFAULT '',
        escalated INTEGER NOT NULL DEFAULT 0, escalated_at DOUBLE PRECISION,
        acknowledged_at DOUBLE PRECISION, acknowledged_by TEXT,
        resolved_at DOUBLE PRECISION, resolved_by TEXT, resolve_reason TEXT,
        on_duty_at_raise TEXT NOT NULL DEFAULT '[]', flaps INTEGER NOT NULL DEFAULT 0,
        last_raised_at DOUBLE PRECISION, intersection TEXT,
        incident BIGINT, incident_group TEXT, incident_cause TEXT)""",
    "CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state)",
    """CREATE TABLE IF NOT EXISTS transitions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id BIGINT NOT NULL REFERENCES alerts (id),
        at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, actor TEXT,
        detail TEXT NOT NULL DEFAULT '', on_duty TEXT NOT NULL DEFAULT '[]')""",
    "CREATE INDEX IF NOT EXISTS transitions_alert ON transitions (alert_id)",
    """CREATE TABLE IF NOT EXISTS duty (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        operator TEXT NOT NULL, on_at DOUBLE PRECISION NOT NULL, off_at DOUBLE PRECISION,
        vehicles TEXT)""",
    """CREATE TABLE IF NOT EXISTS tokens (
        name TEXT COLLATE "C" PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS service (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        vehicle TEXT NOT NULL, site TEXT NOT NULL, status TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL, reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS service_vehicle ON service (vehicle, id)",
    """CREATE TABLE IF NOT EXISTS commands (
        id TEXT COLLATE "C" PRIMARY KEY, vehicle TEXT NOT NULL, site TEXT NOT NULL,
        kind TEXT NOT NULL, issued_by TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL, received_by DOUBLE PRECISION NOT NULL,
        done_by DOUBLE PRECISION NOT NULL, reason TEXT, text TEXT, override TEXT,
        sent_at DOUBLE PRECISION, updated_at DOUBLE PRECISION, detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX IF NOT EXISTS commands_state ON commands (state)",
    """CREATE TABLE IF NOT EXISTS command_log (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        command_id TEXT COLLATE "C" NOT NULL REFERENCES commands (id),
        at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, actor TEXT,
        detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX IF NOT EXISTS command_log_command ON command_log (command_id, seq)",
)
#: SQLite's column types in ``ADDED_COLUMNS`` as PostgreSQL's.
_TYPES: Final = {"TEXT": "TEXT", "INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION"}
#: The advisory lock key that serializes schema changes of hubs sharing one database.
_MIGRATION_LOCK: Final = 0x6C346D6F6E  # "l4mon"
#: libpq connection parameters the hub sets unless the URL does.
_DEFAULTS: Final = {
    "connect_timeout": "10",  # libpq's default is to wait forever
    "tcp_user_timeout": "5000",  # ms: a dead link fails a write instead of hanging the loop
    "application_name": "l4mon",  # how pg_stat_activity names the hub
}
#: The hub's statement timeout, unless the server or the URL (``options=-c...``) sets one.
_STATEMENT_TIMEOUT: Final = "5s"
#: The leadership lock: a session-level advisory lock (the two-key form, so it cannot meet the
#: migration lock's one-key form) on (this constant, the hash of the schema the tables are in):
#: hubs on one journal contend for it, hubs on other schemas of the database do not.
_LEADER_CLASS: Final = 0x6C34  # "l4"
#: Server-side TCP keepalives for the hub's session (seconds), unless the server or the URL set
#: their own: a leader whose host vanishes without closing its connection (power, network) is
#: found dead, and its lock freed, after about idle + interval x count = 5 s, not the kernel's
#: default two hours. A killed process closes its socket: that frees the lock at once.
_KEEPALIVES: Final = (("tcp_keepalives_idle", "2"), ("tcp_keepalives_interval", "1"),
                      ("tcp_keepalives_count", "3"))
_IN_TRANSACTION: Final = (TransactionStatus.INTRANS, TransactionStatus.INERROR,
                          TransactionStatus.ACTIVE)


class PostgresJournal(SqlJournal):
    """The journal in a PostgreSQL database, given by a ``postgresql://`` URL."""

    _errors: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)

    def __init__(self, url: str, *, password: str | None = None) -> None:
        super().__init__(redact(url))
        self._url = url  # kept to reconnect; never shown (``location`` is the redacted one)
        #: From ``[alerts] journal_password_file``: given to libpq apart from the URL.
        self._password = password
        self._leading_prepared = False
        self._db = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> Any:
        url = self._url
        try:
            given = conninfo_to_dict(url)
            extra: dict[str, Any] = {k: v for k, v in _DEFAULTS.items() if k not in given}
            if self._password is not None and "password" not in given:
                extra["password"] = self._password
            return psycopg.connect(url, autocommit=True, row_factory=dict_row, **extra)
        except psycopg.Error as error:
            # Not chained: libpq's message may quote the URL, password and all.
            message = scrub(str(error), url)
            if self._password:
                message = message.replace(self._password, "***")
            raise JournalError(f"journal {self.location}: cannot connect: {message}") from None

    def reconnect(self) -> None:
        """After the server restarted or the connection was cut: a new session (with the
        hub's settings, and the leadership's if it had them), or JournalError while the
        server does not answer. A session that still answers is kept: its locks too."""
        db = self._db
        if not (db.closed or db.broken):
            try:
                db.execute("SELECT 1")
                return
            except psycopg.Error:
                pass
        with contextlib.suppress(psycopg.Error):
            db.close()
        self._db = self._connect()
        try:
            self._migrate()
        except JournalError:
            self._db.close()
            raise
        if self._leading_prepared:
            self.prepare_leadership()
        log.warning("journal %s: reconnected", self.location)

    def _migrate(self) -> None:
        db = self._db
        try:
            if db.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"] == "off":
                # A transition is broadcast once committed: the commit must be durable.
                log.info("journal %s: synchronous_commit is off on the server; on for the hub",
                         self.location)
                db.execute("SET synchronous_commit = on")
            if db.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "0":
                db.execute(f"SET statement_timeout = '{_STATEMENT_TIMEOUT}'")
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                db.execute(_SCHEMA[0])
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                refused = newer_schema(self.location, None if row is None else row["value"])
                if refused is not None:
                    raise refused
                for statement in _SCHEMA[1:]:
                    db.execute(statement)
                for table, column, kind in ADDED_COLUMNS:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} "
                               f"{_TYPES[kind]}")
                db.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
        except psycopg.Error as error:
            raise JournalError(f"journal {self.location}: cannot create or migrate the "
                               f"schema: {error}") from error

    # -- leadership of a hub pair ---------------------------------------------------------------

    def prepare_leadership(self) -> None:
        """Set the session's TCP keepalives (``_KEEPALIVES``) where nothing else did."""
        self._leading_prepared = True
        for name, value in _KEEPALIVES:
            try:
                if self._db.execute(f"SHOW {name}").fetchone()[name] == "0":
                    self._db.execute(f"SET {name} = {value}")
            except psycopg.Error as error:  # a Unix socket has no TCP keepalives: fine
                log.debug("journal %s: %s not set: %s", self.location, name, error)

    def try_lead(self) -> bool:
        """Take the leadership lock if it is free (never waits). Held until this connection
        closes; taking it again while held is a no-op that still says True."""
        try:
            row = self._db.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(current_schema())) AS got",
                (_LEADER_CLASS,)).fetchone()
        except psycopg.Error as error:
            raise JournalError(f"journal {self.location}: {error}") from error
        return bool(row["got"])

    def still_leading(self) -> bool:
        """Whether this connection still holds the leadership lock: False when the connection
        is gone (a lock lives only as long as its session); JournalError when the server did
        not answer in time (the lock may well be held still)."""
        try:
            row = self._db.execute(
                "SELECT count(*) AS held FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s "
                "AND objid = hashtext(current_schema())::oid AND objsubid = 2 AND granted",
                (_LEADER_CLASS,)).fetchone()
        except psycopg.Error as error:
            if self._db.closed or self._db.broken:
                return False
            raise JournalError(f"journal {self.location}: {error}") from error  # slow, not lost
        return bool(row["held"])

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")  # the shared queries hold no other "?" (nor "%")

    def _begin(self) -> None:
        if self._db.info.transaction_status in _IN_TRANSACTION:
            # BEGIN inside a transaction is only a warning in PostgreSQL; SQLite refuses it, and
            # so does this journal: a write must be its own transaction.
            raise psycopg.errors.ActiveSqlTransaction("a transaction is already in progress")
        self._db.execute("BEGIN")

    def _insert(self, db: Any, sql: str, args: Sequence[Any], key: str) -> int:
        return int(db.execute(f"{sql} RETURNING {key}", args).fetchone()[key])
