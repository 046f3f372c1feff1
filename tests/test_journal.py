"""The alert journal itself: migration of older journals in place, and one writer at a time."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from l4mon.alerts.journal import Journal, JournalError


def test_a_journal_from_before_incidents_is_migrated_in_place(tmp_path: Path) -> None:
    """A version-2 journal (no incident columns) opens, keeps its alerts and gains the columns:
    an upgrade does not lose the audit trail."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            rule TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL,
            site TEXT, vehicle TEXT, link TEXT, rsu TEXT,
            state TEXT NOT NULL, raised_at REAL NOT NULL, detail TEXT NOT NULL DEFAULT '',
            escalated INTEGER NOT NULL DEFAULT 0, escalated_at REAL,
            acknowledged_at REAL, acknowledged_by TEXT,
            resolved_at REAL, resolved_by TEXT, resolve_reason TEXT,
            on_duty_at_raise TEXT NOT NULL DEFAULT '[]', flaps INTEGER NOT NULL DEFAULT 0,
            last_raised_at REAL, intersection TEXT);
        INSERT INTO alerts (rule, title, severity, vehicle, state, raised_at)
            VALUES ('both_links_down', 'Both links down', 'takeover', 'v1', 'raised', 1.0);
    """)
    db.commit()
    db.close()
    journal = Journal(path)
    (alert,) = journal.open_alerts()
    assert alert.vehicle == "v1" and alert.incident is None and alert.incident_cause is None
    version = journal._db.execute(
        "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert version == "3"
    journal.close()



def test_two_threads_never_write_the_journal_at_once(tmp_path: Path) -> None:
    """The journal belongs to the hub's loop; a second thread writing while a transaction is
    open is refused with a JournalError (and counted), never interleaved into it."""
    journal = Journal(tmp_path / "j.sqlite")
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            journal.duty_on("intruder", 2.0, None)
        except BaseException as error:
            errors.append(error)

    with journal._transaction() as db:
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
    with pytest.raises(JournalError):  # a failed BEGIN frees the journal too
        journal._db.execute("BEGIN")
        try:
            journal.duty_on("carol", 4.0, None)
        finally:
            journal._db.execute("ROLLBACK")
    journal.duty_on("carol", 5.0, None)
    journal.close()
