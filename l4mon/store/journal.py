"""The durable journal: every alert transition and duty change, each vehicle's service
lifecycle, operators' commands with the vehicles' answers, and generated tokens.

The engine writes a transition here *before* it tells anyone, so after a crash (``kill -9``)
the hub restarts with exactly the alerts, acknowledgements and audit trail that operators saw.
Each transition and the alert row it changes are one transaction, committed when the call
returns; a write that fails raises ``JournalError`` (the hub keeps alerting, flagged).

``Journal`` is what the engine, the duty roster, the runtime and the API use; two journals
implement it with the same tables and the same answers:

- ``SqliteJournal`` (l4mon/store/sqlite_journal.py): one SQLite file in WAL mode, the
  embedded default for ``demo`` and a single-hub site;
- ``PostgresJournal`` (l4mon/store/postgres_journal.py): a PostgreSQL database, for a standby
  on another host.

``open_journal(location)`` picks one by the location (l4mon/store/journal_location.py).

Concurrency: a journal belongs to the hub's event loop thread. Calls are synchronous and never
concurrent; a second thread that tries to write while a transaction is open is refused with a
``JournalError`` instead of being interleaved into it.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any, Literal, Protocol

from l4mon.records.alert import Alert, Transition
from l4mon.records.command import CommandRecord, CommandStep
from l4mon.store._sql_journal import SCHEMA_VERSION, JournalError
from l4mon.store.journal_location import JournalLocation, parse_location, redact
from l4mon.store.sqlite_journal import SqliteJournal

log = logging.getLogger("l4mon")

__all__ = ["SCHEMA_VERSION", "Journal", "JournalError", "JournalLocation", "SqliteJournal",
           "open_journal", "parse_location", "redact"]


def read_password(path: str, shown: str) -> str:
    """The password in ``path`` (its first line). JournalError if it cannot be read; a file
    others may read is used, with a warning (a container's secret is often mounted 0444)."""
    try:
        with open(path, encoding="utf-8") as fh:
            password = fh.readline().rstrip("\r\n")
            mode = os.fstat(fh.fileno()).st_mode
    except OSError as error:
        raise JournalError(f"journal {shown}: cannot read the password file {path}: "
                           f"{error.strerror}") from None
    if not password:
        raise JournalError(f"journal {shown}: the password file {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("journal %s: the password file %s is readable by others (%o); make it "
                    "0600 or 0400", shown, path, stat.S_IMODE(mode))
    return password


class Journal(Protocol):
    """What the hub needs of a journal. Writes raise ``JournalError`` when they fail."""

    #: Where it is, fit to show (a URL's password is ``***``).
    location: str
    #: Writes that were refused or failed.
    failures: int

    def close(self) -> None: ...
    #: Usable again after a failure (a server's journal reconnects), or JournalError.
    def reconnect(self) -> None: ...

    # alerts: a new alert and each change of one, with its transition, in one transaction
    def new_alert(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
                  on_duty: list[str]) -> Transition: ...
    def record(self, alert: Alert, *, kind: str, at: float, actor: str | None, detail: str,
               on_duty: list[str]) -> Transition: ...
    def open_alerts(self) -> list[Alert]: ...
    def last_auto_resolved(self) -> list[Alert]: ...
    def alert(self, alert_id: int) -> Alert | None: ...
    #: Newest first; ``before_id`` pages back (alerts with a smaller id: raised earlier).
    def alerts(self, *, states: tuple[str, ...] | None = None, severity: str | None = None,
               vehicle: str | None = None, since: float | None = None,
               before_id: int | None = None, limit: int = 200) -> list[Alert]: ...
    def history(self, alert_id: int) -> list[Transition]: ...
    def transitions_since(self, seq: int, *, limit: int = 10_000) -> list[Transition]: ...
    def last_seq(self) -> int: ...

    # duty
    def duty_on(self, operator: str, at: float, vehicles: list[str] | None) -> None: ...
    def duty_off(self, operator: str, at: float) -> None: ...
    def on_duty(self) -> list[tuple[str, float, list[str] | None]]: ...
    def duty_log(self, *, limit: int = 1_000) -> list[dict[str, Any]]: ...

    # vehicles' service lifecycle (docs/protocol.md, service)
    def service_change(self, *, vehicle: str, site: str, status: str, at: float,
                       reason: str | None) -> None: ...
    def service_states(self) -> list[dict[str, Any]]: ...
    def service_log(self, *, vehicle: str | None = None, since: float | None = None,
                    limit: int = 1_000) -> list[dict[str, Any]]: ...

    # commands and the vehicles' answers (l4mon/commands/), each step with its new state
    def new_command(self, command: CommandRecord, *, actor: str,
                    detail: str) -> CommandStep: ...
    def command_moved(self, command: CommandRecord, *, at: float, actor: str | None,
                      detail: str) -> CommandStep: ...
    def command(self, command_id: str) -> CommandRecord | None: ...
    def commands(self, *, vehicle: str | None = None, states: tuple[str, ...] | None = None,
                 limit: int = 200) -> list[CommandRecord]: ...
    def command_log(self, command_id: str) -> list[CommandStep]: ...

    # meta (key, value): the schema version, who leads a hub pair
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...

    # tokens (hashes only), each change a new ``meta`` token generation (l4mon/auth.py)
    def tokens(self) -> list[dict[str, Any]]: ...
    def add_token(self, name: str, role: str, sha256: str, at: float, *,
                  expires_at: float | None = None) -> None: ...
    def revoke_token(self, name: str, at: float) -> bool: ...


def open_journal(location: str, *,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
                 password_file: str = "") -> Journal:
    """The journal at ``location``: a file path (or ``:memory:``) is SQLite, a
    ``postgresql://`` URL PostgreSQL. ValueError for a location of any other form (nothing is
    created); JournalError when it cannot be opened. ``synchronous`` is SQLite's; a PostgreSQL
    commit is always durable (l4mon/store/postgres_journal.py). ``password_file``: where a
    PostgreSQL journal's password is, when not in the URL (``[alerts]
    journal_password_file``)."""
    where = parse_location(location)
    if where.kind == "postgresql":
        from l4mon.store.postgres_journal import PostgresJournal

        password = read_password(password_file, where.shown) if password_file else None
        return PostgresJournal(where.target, password=password)
    return SqliteJournal(where.target, synchronous=synchronous)
