"""A throwaway Mosquitto broker on a free loopback port, for benchmarks and the test fixture.

Each broker gets its own temp dir holding the generated config and the log, so a failing run
can be diagnosed from the log and parallel brokers never share state. Queue limits are raised
because the defaults silently drop QoS 0 traffic to a subscriber that is a few ms behind, which
would make the measurement lie.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
_MISSING = "mosquitto broker binary not found; install Debian package mosquitto"


def find_mosquitto() -> str:
    """Locate the broker binary; /usr/sbin is often not on a user's PATH."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError(_MISSING)
    return found


def free_port() -> int:
    """Ask the kernel for a free loopback port (tiny race until the broker binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def render_config(
    port: int,
    log_path: Path,
    *,
    max_inflight_messages: int = 1000,
    max_queued_messages: int = 1_000_000,
    sys_interval: int = 0,
    extra: Sequence[str] = (),
) -> str:
    """The broker config: loopback only, anonymous, in-memory, deep queues.

    ``max_inflight_messages`` is both the per-client outgoing QoS 1/2 window and the receive
    maximum advertised in CONNACK; the default 20 makes QoS 1 round-trip bound. A QoS 0 message
    for an online client is dropped once its outgoing queue holds ``max_queued_messages``;
    ``max_queued_bytes 0`` leaves the byte limit off so only that count applies.
    ``sys_interval`` > 0 publishes ``$SYS`` stats, e.g. ``$SYS/broker/publish/messages/dropped``.
    """
    lines = [
        f"listener {port} {HOST}",
        "allow_anonymous true",
        "persistence false",
        f"max_inflight_messages {max_inflight_messages}",
        "max_inflight_bytes 0",
        f"max_queued_messages {max_queued_messages}",
        "max_queued_bytes 0",
        f"sys_interval {sys_interval}",
        f"log_dest file {log_path}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        # Started as root, mosquitto drops to user "mosquitto", which cannot write our temp dir.
        *(["user root"] if os.geteuid() == 0 else []),
        *extra,
    ]
    return "\n".join(lines) + "\n"


def read_tail(path: Path, max_chars: int = 4000) -> str:
    """The last ``max_chars`` of a server's log file ("" if it cannot be read), for the
    error message of a test that timed out waiting for that server."""
    try:
        return path.read_text(errors="replace")[-max_chars:]
    except OSError:
        return ""


class Broker:
    """One mosquitto process; restartable on the same port so reconnect logic can be tested."""

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        max_inflight_messages: int = 1000,
        max_queued_messages: int = 1_000_000,
        sys_interval: int = 0,
        extra_config: Sequence[str] = (),
        start_timeout_s: float = 10.0,
    ) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.binary = binary or find_mosquitto()
        self.start_timeout_s = start_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="l4mon-mosquitto-")
        self.workdir = Path(self._tmp.name)
        self.log_path = self.workdir / "mosquitto.log"
        self.config_path = self.workdir / "mosquitto.conf"
        self.stderr_path = self.workdir / "mosquitto.stderr"
        self.config_path.write_text(
            render_config(
                self.port,
                self.log_path,
                max_inflight_messages=max_inflight_messages,
                max_queued_messages=max_queued_messages,
                sys_interval=sys_interval,
                extra=extra_config,
            )
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_seen = 0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, max_chars: int = 4000) -> str:
        """Last part of the broker log, for error messages."""
        return read_tail(self.log_path, max_chars)

    def start(self) -> None:
        """Start (or restart) on the same port; return once the port accepts connections."""
        if self.running:
            return
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            # stderr goes to a file: a pipe nobody drains could block the broker.
            with self.stderr_path.open("ab") as err_file:
                self._proc = subprocess.Popen(
                    [self.binary, "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err_file,
                )
            if self._wait_listening(deadline):
                return
            # The port may still be in TIME_WAIT/held by the previous instance: retry until the
            # deadline, then report why the broker exited.
            err = self._reap()
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"mosquitto did not start listening on {self.url} within "
                    f"{self.start_timeout_s:.0f}s\nstderr: {err}\nlog:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _wait_listening(self, deadline: float) -> bool:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _reap(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            data = b""
        err, self._stderr_seen = data[self._stderr_seen :], len(data)
        return err.decode(errors="replace").strip()

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL after 5 s); idempotent."""
        self._reap()

    def close(self) -> None:
        """Stop and delete the temp dir."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def running_broker(
    *,
    port: int | None = None,
    max_inflight_messages: int = 1000,
    max_queued_messages: int = 1_000_000,
    sys_interval: int = 0,
    extra_config: Sequence[str] = (),
) -> Iterator[Broker]:
    """Yield a started broker; it is stopped and its temp dir removed on exit."""
    broker = Broker(
        port=port,
        max_inflight_messages=max_inflight_messages,
        max_queued_messages=max_queued_messages,
        sys_interval=sys_interval,
        extra_config=extra_config,
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
