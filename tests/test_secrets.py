"""Secrets at rest and in flight: the SQLite journal is the hub user's alone (0600, its WAL
files too), and the PostgreSQL password comes from a file or the config, never a command
line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from l4mon.config import ConfigError, config_from_dict
from l4mon.store.journal import JournalError, SqliteJournal, open_journal
from testing.hub import ROOT

PASSWORD = "never-on-a-command-line-7c2e"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_journal_is_created_0600_with_its_wal_files(tmp_path: Path) -> None:
    """Whatever the umask lets through (022 here, so 0644 before): the journal, -wal and -shm
    are readable by the hub's user only, and a new folder for it by that user only."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "var" / "journal.sqlite"
        journal = SqliteJournal(path)
        journal.add_token("a", "viewer", "a" * 64, 1.0)  # a write: the WAL files exist now
        try:
            for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
                assert _mode(path.parent / name) == 0o600, name
            assert _mode(path.parent) == 0o700
        finally:
            journal.close()
    finally:
        os.umask(old)


def test_a_journal_readable_by_others_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    SqliteJournal(path).close()
    path.chmod(0o644)
    SqliteJournal(path).close()
    assert _mode(path) == 0o600


def test_a_password_on_the_command_line_is_refused_without_showing_it(tmp_path: Path) -> None:
    """``serve --journal postgresql://u:PASSWORD@...`` would put the password in ``ps`` for
    every user: refused (exit 2) before anything connects, naming where it goes instead."""
    for args in (["serve", "--broker", "mqtt://127.0.0.1:1"], ["token", "list"]):
        run = subprocess.run(
            [sys.executable, "-m", "l4mon", *args, "--journal",
             f"postgresql://hub:{PASSWORD}@127.0.0.1:1/l4mon"],
            check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert run.returncode == 2, run.stderr
        assert "journal_password_file" in run.stderr and "PGPASSFILE" in run.stderr
        assert PASSWORD not in run.stdout + run.stderr
        assert "hub:***@" in run.stderr


def test_the_password_file_is_given_to_libpq_apart_from_the_url(pg_url: str,
                                                                 tmp_path: Path) -> None:
    """``[alerts] journal_password_file``: the connection carries that password while the URL
    (what the hub shows and keeps) carries none."""
    secret = tmp_path / "journal.password"
    secret.write_text(f"{PASSWORD}\n")
    secret.chmod(0o600)
    journal = open_journal(pg_url, password_file=str(secret))
    try:
        assert journal._db.info.password == PASSWORD  # type: ignore[attr-defined]
        assert PASSWORD not in journal.location
    finally:
        journal.close()
    with pytest.raises(JournalError, match="cannot read the password file"):
        open_journal(pg_url, password_file=str(tmp_path / "missing"))


def test_a_password_given_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="give it once"):
        config_from_dict({"alerts": {"journal": "postgresql://hub:x@db/l4mon",
                                     "journal_password_file": "/etc/l4mon/pw"}})
    ok = config_from_dict({"alerts": {"journal": "postgresql://hub@db/l4mon",
                                      "journal_password_file": "/etc/l4mon/pw"}})
    assert ok.alerts.journal_password_file == "/etc/l4mon/pw"
