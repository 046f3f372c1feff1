"""``l4mon demo`` as a child process, and a headless Chromium to look at its console.

The browser tests (tests/test_console_*.py, tests/test_hub_blind.py) and bench/console_frames.py
all need the same two things; here they are once.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from testing.broker import free_port
from testing.entry import cli

ROOT = Path(__file__).resolve().parent.parent
#: Debian's Chromium; ``$L4MON_CHROMIUM`` points elsewhere (tests/test_parts.py hides it so).
CHROMIUM = os.environ.get("L4MON_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOGIN_LINK = re.compile(r"(http://\S+/#token=\S+)")


def stop_process(proc: subprocess.Popen[Any], *, grace_s: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``grace_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class DemoProcess:
    """``l4mon demo --vehicles N --duration S`` on a free loopback port; its output is
    collected by a thread."""

    def __init__(self, *, vehicles: int, duration: float, extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*cli(ROOT), "demo", "--http", f"127.0.0.1:{self.port}",
             "--vehicles", str(vehicles), "--duration", f"{duration:g}", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def login_link(self, timeout: float = 20.0) -> str:
        """The ``#token=`` link the demo prints, once its HTTP server answers."""
        deadline = time.monotonic() + timeout
        link = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            if link is None:
                found = LOGIN_LINK.search(self.output())
                link = found.group(1) if found else None
            if link is not None:
                try:
                    if httpx.get(f"{self.base}/healthz", timeout=1).is_success:
                        return link
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"l4mon demo printed no working login link\n{self.output()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.proc)
        self._reader.join(timeout=5)


@contextmanager
def running_demo(*, vehicles: int, duration: float) -> Iterator[DemoProcess]:
    demo = DemoProcess(vehicles=vehicles, duration=duration)
    try:
        yield demo
    finally:
        demo.stop()


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[Any]:
    """A page of a headless Chromium (Playwright, ``executable_path``) at ``width`` x
    ``height``; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}).new_page()
        finally:
            browser.close()
