"""The alert journal itself, on SQLite and on PostgreSQL: migration of older journals in place,
one writer at a time, the same answers from both, where a location leads, and no password shown.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest

from l4mon.config import ConfigError, HubConfig, with_overrides
from l4mon.records.alert import Alert
from l4mon.records.command import CommandRecord
from l4mon.store.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    SqliteJournal,
    open_journal,
    parse_location,
    redact,
)
from l4mon.store.journal_location import scrub
from l4mon.store.postgres_journal import PostgresJournal

T0 = 1_700_000_000.0

#: A version-2 journal's alerts table (before incidents), as each database had it.
_V2_ALERTS = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('schema_version', '2');
    CREATE TABLE alerts (
        id {id},
        rule TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL,
        site TEXT, vehicle TEXT, link TEXT, rsu TEXT,
        state TEXT NOT NULL, raised_at {real} NOT NULL, detail TEXT NOT NULL DEFAULT '',
        escalated INTEGER NOT NULL DEFAULT 0, escalated_at {real},
        acknowledged_at {real}, acknowledged_by TEXT,
        resolved_at {real}, resolved_by TEXT, resolve_reason TEXT,
        on_duty_at_raise TEXT NOT NULL DEFAULT '[]', flaps INTEGER NOT NULL DEFAULT 0,
        last_raised_at {real}, intersection TEXT);
    INSERT INTO alerts (rule, title, severity, vehicle, state, raised_at)
        VALUES ('both_links_down', 'Both links down', 'takeover', 'v1', 'raised', 1.0);
"""


def _is_postgres(location: str) -> bool:
    return location.startswith("postgresql://")


def _run_script(location: str, script: str) -> None:
    """Run ``script`` (statements separated by ``;``) on the database at ``location``."""
    if _is_postgres(location):
        with psycopg.connect(location, autocommit=True) as db:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
    else:
        db = sqlite3.connect(location)
        db.executescript(script)
        db.commit()
        db.close()


def _schema_version(location: str) -> str:
    if _is_postgres(location):
        with psycopg.connect(location) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    else:
        with sqlite3.connect(location) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row is not None
    return str(row[0])


def test_a_journal_from_before_incidents_is_migrated_in_place(journal_location: str) -> None:
    """A version-2 journal (no incident columns) opens, keeps its alerts and gains the columns
    and version 3: an upgrade does not lose the audit trail."""
    postgres = _is_postgres(journal_location)
    _run_script(journal_location, _V2_ALERTS.format(
        id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if postgres
        else "INTEGER PRIMARY KEY AUTOINCREMENT",
        real="DOUBLE PRECISION" if postgres else "REAL"))
    journal = open_journal(journal_location)
    (alert,) = journal.open_alerts()
    assert alert.vehicle == "v1" and alert.incident is None and alert.incident_cause is None
    assert _schema_version(journal_location) == str(SCHEMA_VERSION) == "6"
    assert journal.tokens() == []  # version 5's token columns are there: the query runs
    # the new columns take values, and the next id follows the old alert's
    alert.incident, alert.incident_group, alert.incident_cause = 7, "cell", "cell c1 dark"
    journal.record(alert, kind="grouped", at=2.0, actor=None, detail="", on_duty=[])
    second = Alert(id=0, rule="mrm", title="MRM", severity="takeover", site="s", vehicle="v2",
                   link=None, rsu=None, state="raised", raised_at=3.0)
    journal.new_alert(second, kind="raised", at=3.0, actor=None, detail="", on_duty=[])
    assert second.id == alert.id + 1
    stored = journal.alert(alert.id)
    assert stored is not None and (stored.incident, stored.incident_cause) == (7, "cell c1 dark")
    journal.close()
    journal = open_journal(journal_location)  # opening a current journal again changes nothing
    # version 4's table is there, empty: a service change goes in and comes back
    assert journal.service_states() == []
    journal.service_change(vehicle="v1", site="s", status="out_of_service", at=4.0,
                           reason="end of shift")
    assert journal.service_states() == [{"vehicle": "v1", "site": "s",
                                         "status": "out_of_service", "at": 4.0,
                                         "reason": "end of shift"}]
    # version 6's tables are there, empty: a command and its step go in and come back
    assert journal.commands() == []
    command = CommandRecord(id="c-1", vehicle="v1", site="s", kind="stop", issued_by="op",
                            issued_at=5.0, state="issued", received_by=7.0, done_by=35.0)
    journal.new_command(command, actor="op", detail="stop: obstacle")
    assert journal.command("c-1") == command
    assert [s.state for s in journal.command_log("c-1")] == ["issued"]
    journal.close()
    assert _schema_version(journal_location) == "6"


def test_a_journal_from_a_newer_l4mon_is_refused(journal_location: str) -> None:
    """A journal whose schema is newer than this hub knows is not opened (nor rewritten)."""
    open_journal(journal_location).close()
    _run_script(journal_location, "UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match="schema version 9, written by a newer l4mon"):
        open_journal(journal_location)
    assert _schema_version(journal_location) == "9"


def test_two_threads_never_write_the_journal_at_once(journal_location: str) -> None:
    """The journal belongs to the hub's loop; a second thread writing while a transaction is
    open is refused with a JournalError (and counted), never interleaved into it."""
    journal = open_journal(journal_location)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            journal.duty_on("intruder", 2.0, None)
        except BaseException as error:
            errors.append(error)

    with journal._transaction() as db:  # type: ignore[attr-defined]
        db.execute("INSERT INTO duty (operator, on_at) VALUES ('alice', 1.0)")
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], JournalError)
    assert "two threads at once" in str(errors[0])
    assert journal.failures == 1
    assert [op for op, _, _ in journal.on_duty()] == ["alice"]
    journal.duty_on("bob", 3.0, None)  # free again once the first writer is done
    assert [op for op, _, _ in journal.on_duty()] == ["alice", "bob"]
    raw = journal._db  # type: ignore[attr-defined]
    with pytest.raises(JournalError):  # a write inside someone else's transaction is refused,
        raw.execute("BEGIN")
        try:
            journal.duty_on("carol", 4.0, None)
        finally:
            raw.execute("ROLLBACK")
    journal.duty_on("carol", 5.0, None)  # and a refused BEGIN frees the journal too
    assert [op for op, _, _ in journal.on_duty()] == ["alice", "bob", "carol"]
    journal.close()


def test_a_closed_journal_refuses_writes_with_a_journal_error(journal_location: str) -> None:
    """What the engine relies on to keep alerting: a lost connection is a JournalError."""
    journal = open_journal(journal_location)
    journal.close()
    with pytest.raises(JournalError):
        journal.duty_on("alice", 1.0, None)
    assert journal.failures == 1


def _exercise(journal: Journal) -> dict[str, object]:
    """Every write the hub makes, then every read: what a journal answers."""
    journal.duty_on("alice", T0, ["v1", "v2"])
    journal.duty_on("bob", T0, None)  # same time as alice: the order still holds
    journal.duty_on("alice", T0 + 1, [])
    journal.duty_off("bob", T0 + 2)
    journal.add_token("zed", "viewer", "a" * 64, T0)
    journal.add_token("Alice", "operator", "b" * 64, T0)
    journal.add_token("alice", "admin", "c" * 64, T0 + 0.125)
    journal.add_token("temp", "viewer", "d" * 64, T0, expires_at=T0 + 60.5)
    revoked = [journal.revoke_token("zed", T0 + 1.25), journal.revoke_token("zed", T0 + 2),
               journal.revoke_token("nobody", T0)]
    heard = []
    for n, (vehicle, rule) in enumerate([("v1", "mrm"), ("v2", "mrm"), ("v1", "flap")]):
        alert = Alert(id=0, rule=rule, title=f"{rule} on {vehicle}", severity="takeover", site="s1",
                      vehicle=vehicle, link="l5g" if rule == "flap" else None, rsu=None,
                      state="raised", raised_at=T0 + n + 0.1, detail="détail ✓",
                      on_duty_at_raise=["alice"], intersection="x1" if n else None)
        heard.append(journal.new_alert(alert, kind="raised", at=T0 + n + 0.1, actor=None,
                                       detail="raised", on_duty=["alice"]))
        if n == 0:
            alert.state, alert.acknowledged_by, alert.acknowledged_at = \
                "acknowledged", "alice", T0 + 5
            heard.append(journal.record(alert, kind="acknowledged", at=T0 + 5, actor="alice",
                                        detail="on it", on_duty=["alice"]))
        if n == 2:
            alert.state, alert.resolved_at, alert.resolve_reason = "resolved", T0 + 6, "cleared"
            alert.escalated, alert.escalated_at, alert.flaps = True, T0 + 5.5, 2
            alert.incident, alert.incident_group, alert.incident_cause = 1, "cell", "c1"
            heard.append(journal.record(alert, kind="resolved", at=T0 + 6, actor=None,
                                        detail="condition cleared", on_duty=[]))
    for n, (vehicle, status) in enumerate([("v1", "in_service"), ("v2", "in_service"),
                                           ("v1", "offline"), ("v1", "out_of_service")]):
        journal.service_change(vehicle=vehicle, site="s1", status=status, at=T0 + 10 + n,
                               reason="end of shift" if status == "out_of_service" else None)
    return {
        "service_states": journal.service_states(),
        "service_log": journal.service_log(vehicle="v1", since=T0 + 11, limit=5),
        "heard": heard,
        "open": journal.open_alerts(),
        "auto_resolved": journal.last_auto_resolved(),
        "alert": journal.alert(1), "missing": journal.alert(99),
        "alerts": journal.alerts(), "raised": journal.alerts(states=("raised",)),
        "filtered": journal.alerts(severity="takeover", vehicle="v1", since=T0 + 1, limit=5),
        "history": journal.history(1), "since": journal.transitions_since(2, limit=2),
        "last_seq": journal.last_seq(),
        "on_duty": journal.on_duty(), "duty_log": journal.duty_log(limit=3),
        "tokens": journal.tokens(), "revoked": revoked,
    }


def test_sqlite_and_postgresql_journals_answer_alike(tmp_path: Path, pg_url: str) -> None:
    """The same writes give the same ids, sequence numbers, rows, orders and values from both
    journals: whatever ran on SQLite runs the same on PostgreSQL."""
    sqlite = SqliteJournal(tmp_path / "j.sqlite")
    postgres = open_journal(pg_url)
    assert isinstance(postgres, PostgresJournal)
    try:
        on_sqlite, on_postgres = _exercise(sqlite), _exercise(postgres)
    finally:
        sqlite.close()
        postgres.close()
    for key, value in on_sqlite.items():
        assert on_postgres[key] == value, key
    assert on_sqlite["last_seq"] == 5
    assert [(s["vehicle"], s["status"]) for s in on_sqlite["service_states"]] == [  # type: ignore[index]
        ("v1", "out_of_service"), ("v2", "in_service")]
    assert [s["status"] for s in on_sqlite["service_log"]] == ["out_of_service", "offline"]  # type: ignore[index]
    tokens = {t["name"]: t for t in on_sqlite["tokens"]}  # type: ignore[union-attr]
    assert list(tokens) == ["Alice", "alice", "temp", "zed"]
    assert (tokens["zed"]["revoked_at"], tokens["temp"]["expires_at"]) == (T0 + 1.25, T0 + 60.5)
    assert on_sqlite["revoked"] == [True, False, False]


def test_postgresql_journal_keeps_its_schema_version_in_meta(pg_url: str) -> None:
    """The hub creates the tables and records the schema version it wrote."""
    open_journal(pg_url).close()
    assert _schema_version(pg_url) == str(SCHEMA_VERSION)
    with psycopg.connect(pg_url) as db:
        tables = {r[0] for r in db.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()")}
    assert tables == {"meta", "alerts", "transitions", "duty", "tokens", "service",
                      "commands", "command_log"}


def test_a_committed_transition_is_visible_to_another_connection(pg_url: str) -> None:
    """When a write returns it is committed, not merely visible to the hub's own connection:
    what "journaled before it is broadcast" means with a server."""
    journal = open_journal(pg_url)
    alert = Alert(id=0, rule="mrm", title="MRM", severity="takeover", site="s1", vehicle="v1",
                  link=None, rsu=None, state="raised", raised_at=T0)
    transition = journal.new_alert(alert, kind="raised", at=T0, actor=None, detail="",
                                   on_duty=[])
    with psycopg.connect(pg_url) as other:
        seen = other.execute("SELECT a.vehicle, t.seq FROM alerts a JOIN transitions t "
                             "ON t.alert_id = a.id").fetchall()
    assert seen == [("v1", transition.seq)]
    journal.close()


def test_a_hung_server_fails_the_write_instead_of_holding_the_loop(pg_url: str) -> None:
    """A table locked by someone else: the write gives up at the statement timeout (5 s unless
    the URL or server says otherwise; 0.3 s here) as a JournalError, and the next one works."""
    url = f"{pg_url}%20-cstatement_timeout%3D300"  # pg_url ends in options=-csearch_path...
    journal = open_journal(url)
    alert = Alert(id=0, rule="mrm", title="MRM", severity="takeover", site="s1", vehicle="v1",
                  link=None, rsu=None, state="raised", raised_at=T0)
    with psycopg.connect(pg_url) as other:
        other.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(JournalError, match="statement timeout"):
            journal.new_alert(alert, kind="raised", at=T0, actor=None, detail="", on_duty=[])
        assert time.monotonic() - started < 3.0
    journal.new_alert(alert, kind="raised", at=T0, actor=None, detail="", on_duty=[])
    assert [a.id for a in journal.open_alerts()] == [alert.id]
    journal.close()


# -- where a location leads ---------------------------------------------------------------------

@pytest.mark.parametrize(("location", "kind"), [
    ("var/l4mon-journal.sqlite", "sqlite"), ("/var/lib/l4mon/journal.sqlite", "sqlite"),
    (":memory:", "sqlite"), ("journal", "sqlite"),
    ("postgresql://hub:pw@db.example:5432/l4mon", "postgresql"),
    ("postgres://hub@db.example/l4mon", "postgresql"),
    ("PostgreSQL://hub@db.example/l4mon", "postgresql"),
    ("postgresql:///l4mon", "postgresql"),  # the local socket, libpq's defaults
])
def test_a_location_is_a_file_or_a_postgresql_url(location: str, kind: str) -> None:
    where = parse_location(location)
    assert (where.kind, where.target) == (kind, location)


@pytest.mark.parametrize("location", [
    "mysql://hub:pw@db/l4mon", "sqlite:///var/j.sqlite", "https://db.example/l4mon",
    "postgresql:/l4mon", "", "  ",
])
def test_a_location_of_another_form_is_refused_naming_the_forms(
        location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is created for a location the hub does not understand (it used to become a
    folder named after the scheme), and the error says what it does understand."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"file path for SQLite .* or postgresql://USER"):
        open_journal(location)
    with pytest.raises(ConfigError, match=r"alerts\.journal"):
        with_overrides(HubConfig(), journal=location)
    assert list(tmp_path.iterdir()) == []


def test_a_postgresql_url_opens_a_postgresql_journal_and_never_a_file(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    journal = open_journal(pg_url)
    assert isinstance(journal, PostgresJournal)
    journal.close()
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_a_journal_error_without_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from testing.broker import free_port

    url = f"postgresql://hub:s3cret-pw@127.0.0.1:{free_port()}/l4mon?connect_timeout=2"
    with pytest.raises(JournalError) as caught:
        open_journal(url)
    message = str(caught.value)
    assert "cannot connect" in message and "hub:***@127.0.0.1" in message
    assert "s3cret-pw" not in message and caught.value.__cause__ is None
    assert list(tmp_path.iterdir()) == []


# -- passwords are never shown --------------------------------------------------------------------

@pytest.mark.parametrize(("location", "shown"), [
    ("postgresql://hub:s3cret@db:5432/l4mon", "postgresql://hub:***@db:5432/l4mon"),
    ("postgres://hub:p%40ss@db/l4mon?sslmode=require",
     "postgres://hub:***@db/l4mon?sslmode=require"),
    ("postgresql://hub:with@at@db/l4mon", "postgresql://hub:***@db/l4mon"),
    ("postgresql://hub@db/l4mon?password=s3cret&sslmode=require",
     "postgresql://hub@db/l4mon?password=***&sslmode=require"),
    ("postgresql://hub@db/l4mon", "postgresql://hub@db/l4mon"),
    ("postgresql://db/l4mon", "postgresql://db/l4mon"),
    ("/var/lib/l4mon/journal.sqlite", "/var/lib/l4mon/journal.sqlite"),
    ("mysql://root:toor@db/x", "mysql://root:***@db/x"),
])
def test_a_location_is_shown_without_its_password(location: str, shown: str) -> None:
    assert redact(location) == shown


def test_a_drivers_error_is_scrubbed_of_the_password() -> None:
    """libpq quotes a malformed URL back, password and all; the journal's error does not."""
    url = "postgresql://hub:pa ss%21@db/l4mon?password=other"
    with pytest.raises(psycopg.ProgrammingError) as caught:
        psycopg.conninfo.conninfo_to_dict(url)
    assert "pa ss" in str(caught.value)
    assert "pa ss" not in scrub(str(caught.value), url)
    assert scrub("pa ss! and other", url) == "*** and ***"
