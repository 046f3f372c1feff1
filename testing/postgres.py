"""A throwaway PostgreSQL server on a free loopback port, for the tests of the PostgreSQL journal.

``initdb`` into a temp dir (trust authentication, C locale, UTF-8), ``pg_ctl start`` listening
on 127.0.0.1 only, its socket in that dir: no system service, no config outside the dir, no
port but the one chosen. ``close()`` is ``pg_ctl stop -m fast`` and removes the dir. The
server runs with ``fsync = off`` (a test server's data is thrown away; durability is the
production server's setting, not the journal's); a bench that times commits asks for
``fsync=True``, a server that flushes as a production one does.

PostgreSQL refuses to run as root. Started by root, the server runs as the ``postgres`` user
(Debian's ``postgresql`` package creates it), which then owns the temp dir.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from testing.broker import HOST, free_port, read_tail

MISSING = ("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
           "/usr/lib/postgresql/*/bin; install Debian package postgresql")
#: The superuser the test cluster is created with; trust authentication, so no password.
SUPERUSER = "postgres"


def find_pg_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned
    folders (the package does not put them on PATH), newest version first."""
    found = shutil.which("initdb")
    if found is not None:
        folder = Path(found).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
                      reverse=True)
    for initdb in versions:
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    raise FileNotFoundError(MISSING)


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the ``postgres`` user; nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise FileNotFoundError(
            "running as root, and there is no 'postgres' user to run PostgreSQL as (it refuses "
            "root); install Debian package postgresql, which creates it") from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL cluster in a temp dir; ``new_schema()`` gives each test its own tables."""

    def __init__(self, *, bin_dir: Path | None = None, start_timeout_s: float = 60.0,
                 fsync: bool = False) -> None:
        self.bin_dir = bin_dir or find_pg_bin()
        self.start_timeout_s = start_timeout_s
        #: Whether the server flushes its WAL to disk (``fsync``, ``full_page_writes``): off
        #: for tests (speed), on where commit times are measured.
        self.fsync = fsync
        self.host = HOST
        self.port = 0
        self._as = _run_as()
        self.workdir = Path(tempfile.mkdtemp(prefix="l4mon-postgres-"))
        self.data = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self._names = itertools.count(1)
        self._started = False
        self._test_database = False
        if self._as:
            os.chown(self.workdir, self._as["user"], self._as["group"])

    def _pg(self, tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / tool), *args], cwd=self.workdir, capture_output=True, text=True,
            timeout=timeout, check=False, stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                 "HOME": str(self.workdir)},
            **self._as)

    def log_tail(self, max_chars: int = 4000) -> str:
        return read_tail(self.log_path, max_chars)

    def start(self) -> None:
        """initdb (first time) and start on a free port; return once it accepts connections.
        Started again after ``stop``, it keeps its port (clients reconnect to the same URL)."""
        if self._started:
            return
        if self.port:
            done = self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path),
                            "-w", "-t", str(int(self.start_timeout_s)),
                            timeout=self.start_timeout_s + 10)
            if done.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start again ({done.returncode}):\n"
                                   f"{done.stdout}\n{done.stderr}\nlog:\n{self.log_tail()}")
            self._started = True
            return
        if not self.data.exists():
            done = self._pg("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                            "--encoding=UTF8", "--no-locale", "--no-sync", timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}"
                                   f"\n{done.stderr}")
        flush = "on" if self.fsync else "off"
        for _ in range(3):  # the free port may be taken before the server binds it: try again
            self.port = free_port()
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\n# l4mon test server\nlisten_addresses = '{self.host}'\n"
                           f"port = {self.port}\nunix_socket_directories = '{self.workdir}'\n"
                           f"fsync = {flush}\nfull_page_writes = {flush}\n"
                           "max_connections = 200\n")
            done = self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path),
                            "-w", "-t", str(int(self.start_timeout_s)),
                            timeout=self.start_timeout_s + 10)
            if done.returncode == 0:
                self._started = True
                return
        raise RuntimeError(f"PostgreSQL did not start ({done.returncode}):\n{done.stdout}"
                           f"\n{done.stderr}\nlog:\n{self.log_tail()}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def new_schema(self) -> str:
        """The URL of a new, empty schema in the database ``l4mon_test``: every connection
        made with it finds (and creates) its tables there (``search_path``). A schema costs a
        millisecond, a database a checkpoint (~0.2 s): what lets every journal test run on
        PostgreSQL too."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            if not self._test_database:
                admin.execute('CREATE DATABASE "l4mon_test"')
                self._test_database = True
        with psycopg.connect(self.url("l4mon_test"), autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url('l4mon_test')}?options=-csearch_path%3D{name}"

    def drop_schema(self, url: str) -> None:
        """Drop the schema ``new_schema`` gave, unless something still holds a lock in it
        (a test that left a transaction open): then it stays until the server goes."""
        import psycopg

        name = url.rpartition("%3D")[2]
        with psycopg.connect(self.url("l4mon_test"), autocommit=True) as admin:
            admin.execute("SET lock_timeout = '2s'")
            with contextlib.suppress(psycopg.errors.LockNotAvailable):
                admin.execute(f'DROP SCHEMA "{name}" CASCADE')

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (or ``immediate``: a crash); idempotent."""
        if not self._started:
            return
        self._started = False
        done = self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", timeout=60)
        if done.returncode != 0:
            self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w",
                     timeout=60)

    def close(self) -> None:
        """Stop and delete the temp dir."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
