"""The ``l4mon`` command as a newcomer meets it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench._broker import free_port

ROOT = Path(__file__).resolve().parent.parent


def _l4mon(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *args], check=False, capture_output=True,
                          text=True,
                          timeout=timeout, cwd=ROOT)


def test_demo_serves_a_live_simulated_fleet() -> None:
    """``l4mon demo`` needs no broker: within seconds every vehicle has two judged links."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "l4mon", "demo", "--http", f"127.0.0.1:{port}", "--vehicles", "3",
         "--duration", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    login = ""
    try:
        assert proc.stdout is not None
        while "#token=" not in login:  # the demo prints a ready login link first
            login = proc.stdout.readline().decode()
            assert login, "demo exited before printing its login link"
        token = login.split("#token=")[1].split()[0]
        deadline = time.monotonic() + 20
        vehicles: list[dict] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            while time.monotonic() < deadline:
                try:
                    vehicles = http.get("/api/vehicles").json()
                except httpx.HTTPError:
                    vehicles = []
                if len(vehicles) == 3 and all(
                        link["state"] in ("ok", "degraded", "down")
                        for v in vehicles for link in v["links"].values()):
                    break
                time.sleep(0.2)
            assert [v["id"] for v in vehicles] == ["shuttle-01", "shuttle-02", "shuttle-03"]
            for vehicle in vehicles:
                assert set(vehicle["links"]) == {"l5g", "lte"}
                assert vehicle["telemetry"] == "fresh"
                assert vehicle["links"]["l5g"]["rat"] == "nr"
                assert vehicle["links"]["l5g"]["rtt_p95_ms"] is not None
            page = http.get("/")
            assert page.status_code == 200
            assert "l4mon" in page.text
            assert http.get("/healthz").json()["status"] == "ok"
            assert http.get("/api/me").json() == {"name": "demo-operator", "role": "operator"}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/#token=" in login


def test_serve_with_a_bad_config_says_what_is_wrong(tmp_path: Path) -> None:
    """A typo in the config is exit code 2 and a message naming the key, not a traceback."""
    config = tmp_path / "hub.toml"
    config.write_text("[links]\nstale_after = 2.0\n")
    result = _l4mon("serve", "--config", str(config))
    assert result.returncode == 2
    assert "stale_after" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--broker", "http://x:1"], "not an MQTT URL"),
    (["serve", "--config", "/nonexistent/hub.toml"], "cannot read config"),
    (["demo", "--http", "localhost"], "HOST:PORT"),
    (["simulate", "--broker", "mqtt://127.0.0.1:1", "--vehicles", "0"], "--vehicles"),
])
def test_bad_arguments_are_clear_errors(args: list[str], needle: str) -> None:
    """Bad flags exit 2 with a one-line reason."""
    result = _l4mon(*args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
