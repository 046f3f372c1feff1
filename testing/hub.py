"""``l4mon serve`` as a child process against a test broker, with a client for its HTTP API:
what tests and benches (and anything else that needs a real hub) start and stop.

A hub can run from another source tree (``tree=``): ``python -m l4mon serve`` with that tree
as its working directory and first on ``PYTHONPATH`` imports that tree's l4mon, ahead of the
editable install (whose finder comes after ``sys.path``). Benches use it to run a baseline and
the subject in one invocation; the tree is checked before the hub starts, so a baseline that
silently ran this tree's code cannot produce a ratio.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from l4mon.auth import hash_token
from testing.broker import Broker, free_port
from testing.demo import stop_process
from testing.entry import cli

ROOT = Path(__file__).resolve().parent.parent
#: The token the test hubs accept (as admin); only its hash goes into their config.
TEST_TOKEN = "test-token-not-secret"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def rss_mb(pid: int) -> float:
    """Resident memory of a process (``VmRSS``), MB; 0.0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def metric_value(exposition: str, name: str) -> float:
    """Sum of a metric's samples (all label sets) in a Prometheus exposition; 0.0 if absent."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class HubProcess:
    """A ``l4mon serve`` child process and a client for its HTTP API."""

    proc: subprocess.Popen[bytes]
    http: httpx.Client
    #: Where its output goes; None when it was discarded.
    log_path: Path | None
    tree: Path = ROOT
    port: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params=params)

    def json(self, path: str, **params: object) -> Any:
        response = self.get(path, **params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        """``/healthz`` in full (with this client's token; a stranger reads only ok/degraded)."""
        return self.json("/healthz")  # type: ignore[no-any-return]

    def metric(self, name: str) -> float:
        """One metric from ``/metrics``, summed over its labels (needs a viewer token)."""
        return metric_value(self.get("/metrics").text, name)

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def log(self) -> str:
        if self.log_path is None:
            return "(hub output discarded)"
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, predicate: object, *, timeout: float = 10.0, what: str = "") -> None:
        """Poll ``predicate()`` (a callable) until true; fail with the hub's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():  # type: ignore[operator]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}\n--- hub log ---\n{self.log()[-3000:]}")


def write_hub_config(tmp_path: Path, *, token: str = TEST_TOKEN, role: str = "admin",
                     name: str = "tester", file_name: str = "hub.toml",
                     journal: Path | None = None, extra: str = "") -> Path:
    """A hub config in ``tmp_path``: a journal there and one token (only its hash).

    ``extra`` is more TOML appended at the end, whole tables only (``[mqtt]``, ``[site]``...;
    not ``[alerts]``, which is written here)."""
    config = tmp_path / file_name
    journal = journal if journal is not None else tmp_path / "journal.sqlite"
    config.write_text(
        f'[alerts]\njournal = "{journal}"\n'
        f'[[auth.tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{hash_token(token)}"\n'
        + (f"\n{extra}\n" if extra else ""))
    return config


@functools.cache
def _check_tree(tree: Path) -> None:
    """Fail unless ``python -m l4mon`` run in ``tree`` imports ``tree``'s l4mon."""
    found = subprocess.run(
        [sys.executable, "-c", "import l4mon; print(l4mon.__file__)"], cwd=tree,
        env=_env(tree), capture_output=True, text=True, timeout=30, check=False)
    where = Path(found.stdout.strip() or "?").resolve()
    if found.returncode != 0 or not where.is_relative_to(tree.resolve()):
        raise RuntimeError(f"a hub run in {tree} would import l4mon from {where} "
                           f"({found.stderr.strip()[-300:]})")


def _env(tree: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def spawn_hub(config: Path, broker: Broker | str, port: int, *, tree: Path = ROOT,
              stdout: int | IO[bytes] = subprocess.DEVNULL,
              extra_args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``l4mon serve`` from ``tree`` (not waiting for it); output to ``stdout``
    (a file, ``subprocess.PIPE`` or ``DEVNULL``), stderr with it."""
    tree = tree.resolve()
    if tree != ROOT:
        _check_tree(tree)
    url = broker if isinstance(broker, str) else broker.url
    return subprocess.Popen(
        [*cli(tree), "serve", "--config", str(config), "--broker", url,
         "--http", f"127.0.0.1:{port}", *(extra_args or [])],
        stdout=stdout, stderr=subprocess.STDOUT, cwd=tree, env=_env(tree))


def wait_connected(proc: subprocess.Popen[bytes], health: Callable[[], dict[str, Any]], *,
                   timeout_s: float = 20.0, log: Callable[[], str] = str) -> None:
    """Until ``health()`` says the hub is connected to its broker; fail early if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}\n{log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            if health()["mqtt"]["connected"]:  # no "mqtt" yet: not decided, ask again
                return
        time.sleep(0.05)
    raise TimeoutError(f"the hub did not connect to the broker within {timeout_s:g} s\n"
                       f"{log()[-3000:]}")


def launch_hub(broker: Broker | str, config: Path, log_path: Path | None, port: int, *,
               extra_args: list[str] | None = None, tree: Path = ROOT,
               token: str = TEST_TOKEN, timeout_s: float = 20.0) -> HubProcess:
    """Start ``l4mon serve`` and wait until it is connected to ``broker``. Its output is
    appended to ``log_path`` (None: discarded, as a long bench that never reads it wants)."""
    if log_path is None:
        proc = spawn_hub(config, broker, port, tree=tree, extra_args=extra_args)
    else:
        with log_path.open("ab") as log:
            proc = spawn_hub(config, broker, port, tree=tree, stdout=log, extra_args=extra_args)
    hub = HubProcess(proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0,
                                        headers={"Authorization": f"Bearer {token}"}),
                     log_path, tree.resolve(), port)
    try:
        wait_connected(proc, hub.health, timeout_s=timeout_s, log=hub.log)
    except BaseException:
        stop_hub(hub)
        raise
    return hub


def stop_hub(hub: HubProcess) -> None:
    stop_process(hub.proc)
    hub.http.close()


@contextlib.contextmanager
def running_hub(broker: Broker, workdir: Path, *, token: str = TEST_TOKEN,
                role: str = "admin", tree: Path = ROOT, log: bool = True,
                extra_config: str = "", extra_args: list[str] | None = None,
                name: str = "hub") -> Iterator[HubProcess]:
    """A hub with its own config and journal in ``workdir`` (files named after ``name``),
    connected to ``broker``; stopped on exit. ``log`` False discards its output."""
    config = write_hub_config(workdir, token=token, role=role, name=name,
                              file_name=f"{name}.toml", journal=workdir / f"{name}.sqlite",
                              extra=extra_config)
    hub = launch_hub(broker, config, workdir / f"{name}.log" if log else None, free_port(),
                     extra_args=extra_args, tree=tree, token=token)
    try:
        yield hub
    finally:
        stop_hub(hub)


@contextlib.contextmanager
def running_pair(broker: Broker, journal_url: str, tmp_path: Path,
                 config: Callable[[Path, str, list[int]], Path]
                 ) -> Iterator[tuple[HubProcess, HubProcess, list[int]]]:
    """Hub a, started first (so it leads), and hub b, on one PostgreSQL journal, each with
    the config ``config(tmp_path, name, ports)`` writes; both stopped at the end, whatever
    the test did to them (a killed leader included)."""
    ports = [free_port(), free_port()]
    args = ["--journal", journal_url]
    a = launch_hub(broker, config(tmp_path, "a", ports), tmp_path / "a.log", ports[0],
                   extra_args=args)
    b: HubProcess | None = None
    try:
        b = launch_hub(broker, config(tmp_path, "b", ports), tmp_path / "b.log", ports[1],
                       extra_args=args)
        yield a, b, ports
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
        stop_hub(a)
        if b is not None:
            stop_hub(b)
