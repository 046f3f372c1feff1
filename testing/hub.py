"""``l4mon serve`` as a child process against a test broker, with a client for its HTTP API:
what tests (and anything else that needs a real hub) start and stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from l4mon.auth import hash_token
from testing.broker import Broker
from testing.demo import stop_process

ROOT = Path(__file__).resolve().parent.parent
#: The token the test hubs accept (as admin); only its hash goes into their config.
TEST_TOKEN = "test-token-not-secret"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


@dataclass
class HubProcess:
    """A ``l4mon serve`` child process and a client for its HTTP API."""

    proc: subprocess.Popen[bytes]
    http: httpx.Client
    log_path: Path

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params=params)

    def json(self, path: str, **params: object) -> object:
        response = self.get(path, **params)
        response.raise_for_status()
        return response.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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


def write_hub_config(tmp_path: Path) -> Path:
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[alerts]\njournal = "{tmp_path / "journal.sqlite"}"\n'
        f'[[auth.tokens]]\nname = "tester"\nrole = "admin"\nsha256 = "{hash_token(TEST_TOKEN)}"\n')
    return config


def launch_hub(broker: Broker, config: Path, log_path: Path, port: int, *,
               extra_args: list[str] | None = None) -> HubProcess:
    """Start ``l4mon serve`` and wait until it is connected to ``broker``."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "l4mon", "serve", "--config", str(config), "--broker",
             broker.url, "--http", f"127.0.0.1:{port}", *(extra_args or [])],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    hub = HubProcess(proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0,
                                        headers=AUTH), log_path)
    try:
        hub.wait_for(lambda: hub.json("/healthz")["mqtt"]["connected"], timeout=20.0,
                     what="the hub to connect to the broker")
    except BaseException:
        stop_hub(hub)
        raise
    return hub


def stop_hub(hub: HubProcess) -> None:
    stop_process(hub.proc)
    hub.http.close()
