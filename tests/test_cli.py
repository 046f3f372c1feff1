"""The ``l4mon`` command as a newcomer meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testing.broker import free_port

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


def _serve_once(journal: Path, port: int) -> tuple[str, int, str]:
    """Start serve (no broker needed for HTTP), read its first output, ask /api/me, stop it."""
    token = ""
    proc = subprocess.Popen(
        [sys.executable, "-m", "l4mon", "serve", "--broker", "mqtt://127.0.0.1:1", "--http",
         f"127.0.0.1:{port}", "--journal", str(journal)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        if "admin token was created" in first:
            token = proc.stdout.readline().decode().strip()
        deadline = time.monotonic() + 15
        status = 0
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={
                    "Authorization": f"Bearer {token or 'none'}"}).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return token, status, first
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_serve_never_runs_open(tmp_path: Path) -> None:
    """With no tokens configured, the first start creates an admin token, prints it once and
    keeps only its hash; the second start prints nothing and the first token still works."""
    journal = tmp_path / "journal.sqlite"
    port = free_port()
    token, status, _ = _serve_once(journal, port)
    assert len(token) >= 32 and status == 200
    assert token.encode() not in journal.read_bytes()  # only the hash is at rest
    again, _, first_line = _serve_once(journal, port)
    assert again == "" and "admin token" not in first_line
    proc = subprocess.Popen(  # the first token still works on a restarted hub
        [sys.executable, "-m", "l4mon", "serve", "--broker", "mqtt://127.0.0.1:1", "--http",
         f"127.0.0.1:{port}", "--journal", str(journal)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                me = httpx.get(f"http://127.0.0.1:{port}/api/me",
                               headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert me.json() == {"name": "admin", "role": "admin"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/vehicles").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_import_then_replay_a_real_trace_excerpt(tmp_path: Path) -> None:
    """l4mon import cicv5g on the CC BY 4.0 excerpt, then l4mon replay of the result."""
    fixture = ROOT / "tests" / "fixtures" / "cicv5g" / "arterial_n78_v50_excerpt.txt"
    out = tmp_path / "log"
    imported = _l4mon("import", "cicv5g", str(fixture), "--out", str(out), "--weather", "clear",
                      "--light", "daylight")
    assert imported.returncode == 0, imported.stderr
    replayed = _l4mon("replay", str(out), "--out", str(tmp_path / "r.json"))
    assert replayed.returncode == 0, replayed.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["input"]["conditions"]["light"] == "daylight"
    (vehicle,) = doc["kpis"].values()
    assert vehicle["links"]["pub5g"]["samples"] == 246
    bad = _l4mon("import", "cicv5g", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "missing.txt" in bad.stderr


# -- a CLI that talks ---------------------------------------------------------------

EXCERPT = ROOT / "tests" / "fixtures" / "cicv5g" / "arterial_n78_v50_excerpt.txt"


def test_help_lists_every_command() -> None:
    from l4mon.faces.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    shown = _l4mon("--help")
    assert shown.returncode == 0
    for name in commands:
        assert f"{name} (" in shown.stdout or f"{name}  " in shown.stdout, name
    assert {"demo", "serve", "simulate", "replay", "import", "report", "token"} <= set(commands)


def test_replaying_a_raw_trace_says_to_import_it_first(tmp_path: Path) -> None:
    raw = _l4mon("replay", str(EXCERPT))
    assert raw.returncode == 2
    assert "import it into a drive log first" in raw.stderr and "l4mon import cicv5g" in raw.stderr
    missing = _l4mon("replay", str(tmp_path / "nothing-here"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


def test_report_into_a_missing_folder_makes_it_and_no_progress_off_a_terminal(
        tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert _l4mon("import", "cicv5g", str(EXCERPT), "--out", str(log)).returncode == 0
    out = tmp_path / "not" / "yet" / "report.html"
    made = _l4mon("report", str(log), "--out", str(out))
    assert made.returncode == (1 if "report: FAIL" in made.stdout else 0), made.stderr
    assert out.is_file()
    assert made.stderr == ""  # no progress bar on a pipe
    folder = _l4mon("report", str(log), "--out", str(tmp_path))
    assert folder.returncode == 2 and "is a folder" in folder.stderr


def test_demo_on_a_busy_port_says_which_flag_before_any_login_link() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = _l4mon("demo", "--http", f"127.0.0.1:{port}", "--duration", "2")
    assert run.returncode == 2
    assert "--http" in run.stderr and "not free" in run.stderr
    assert "#token=" not in run.stdout


def test_tokens_are_made_and_listed_without_showing_a_hash(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.sqlite")
    assert "no tokens yet" in _l4mon("token", "list", "--journal", journal).stdout
    made = _l4mon("token", "create", "--name", "alice", "--role", "operator",
                  "--journal", journal)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()  # the line after "shown only this once"
    from l4mon.auth import hash_token
    from l4mon.store.journal import SqliteJournal

    stored = SqliteJournal(journal)
    try:
        (row,) = stored.tokens()
        assert (row["name"], row["role"], row["sha256"]) == ("alice", "operator",
                                                            hash_token(token))
        assert row["expires_at"] is None and row["revoked_at"] is None
    finally:
        stored.close()
    listed = _l4mon("token", "list", "--journal", journal).stdout
    assert "alice\toperator" in listed and hash_token(token) not in listed
    again = _l4mon("token", "create", "--name", "alice", "--journal", journal)
    assert again.returncode == 2 and "exists already" in again.stderr
    bad = _l4mon("token", "create", "--name", "bob", "--role", "root", "--journal", journal)
    assert bad.returncode == 2 and "--role" in bad.stderr
