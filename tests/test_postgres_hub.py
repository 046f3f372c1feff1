"""``l4mon serve`` and ``l4mon token`` with the journal on a real PostgreSQL server: a takeover
alert committed there and restored from there after ``kill -9``, a token made there accepted,
a URL's password never shown, and a location the hub does not understand refused up front."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import psycopg
import pytest

from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker, free_port
from testing.hub import ROOT, launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher

#: The test server trusts every local connection, so any password gets in; what is checked is
#: that it is never printed.
PASSWORD = "not-shown-4d1f"


def _with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def _l4mon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *args], check=False,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.mqtt
def test_serve_journals_a_takeover_alert_in_postgresql_and_restores_it(
        broker: Broker, pg_url: str, tmp_path: Path) -> None:
    """A takeover request over MQTT (QoS 1) becomes an alert row and its transition in
    PostgreSQL; after kill -9 a new hub on the same database has the same open alert."""
    url = _with_password(pg_url)  # in the config file: a command line is everyone's to read
    config, log, port = write_hub_config(tmp_path, journal=url), tmp_path / "hub.log", free_port()  # type: ignore[arg-type]
    hub = launch_hub(broker, config, log, port)
    try:
        hub.post("/api/duty/on")
        with Publisher(broker.host, broker.port) as pub:
            pub.publish(event_topic("pg", "veh-a"), msgspec.json.encode(VehicleEvent(
                ts=time.time(), kind="takeover_request", seq=1)), qos=1)
            pub.flush()
        hub.wait_for(lambda: len(hub.json("/api/alerts", state="open")) == 1,
                     what="the takeover alert")
        (alert,) = hub.json("/api/alerts")
        health = hub.get("/healthz").text
        hub.proc.send_signal(signal.SIGKILL)
        hub.proc.wait(timeout=10)
    finally:
        stop_hub(hub)
    with psycopg.connect(pg_url) as db:
        rows = db.execute("SELECT id, rule, vehicle, state FROM alerts").fetchall()
        kinds = [r[0] for r in db.execute(
            "SELECT kind FROM transitions WHERE alert_id = %s ORDER BY seq", (alert["id"],))]
    assert rows == [(alert["id"], "takeover_requested", "veh-a", "raised")]
    assert kinds == ["raised"]

    hub = launch_hub(broker, config, log, port)
    try:
        assert PASSWORD not in Path(f"/proc/{hub.pid}/cmdline").read_text()
        (again,) = hub.json("/api/alerts", state="open")
        assert again == alert
        assert "restored 1 open alerts" in hub.log()
    finally:
        stop_hub(hub)
    output = log.read_text()
    assert PASSWORD not in output and PASSWORD not in health
    assert "journal postgresql://postgres:***@127.0.0.1" in output
    assert not (tmp_path / "journal.sqlite").exists()  # no SQLite file beside it


@pytest.mark.mqtt
def test_a_token_made_in_postgresql_logs_in_to_serve(broker: Broker, pg_url: str,
                                                      tmp_path: Path) -> None:
    """``token create --journal postgresql://…`` keeps the hash there; ``token list`` names it;
    a hub on that journal accepts the token."""
    url = _with_password(pg_url)
    refused = _l4mon("token", "create", "--name", "alice", "--journal", url)
    assert refused.returncode == 2 and "visible to every user" in refused.stderr
    assert "postgresql://postgres:***@" in refused.stderr
    config = write_hub_config(tmp_path, journal=url)  # type: ignore[arg-type]
    made = _l4mon("token", "create", "--name", "alice", "--role", "operator",
                  "--config", str(config))
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()
    listed = _l4mon("token", "list", "--config", str(config))
    assert "alice\toperator\t(journal, in force)" in listed.stdout
    for run in (refused, made, listed):
        assert PASSWORD not in run.stdout + run.stderr
    assert "postgresql://postgres:***@" in made.stdout
    hub = launch_hub(broker, config, tmp_path / "hub.log", free_port(), token=token)
    try:
        assert hub.json("/api/me") == {"name": "alice", "role": "operator"}
    finally:
        stop_hub(hub)


@pytest.mark.parametrize("command", [["serve", "--broker", "mqtt://127.0.0.1:1"],
                                     ["token", "list"]])
def test_a_journal_url_the_hub_does_not_understand_is_refused(command: list[str],
                                                              tmp_path: Path) -> None:
    """Exit 2 with the forms it understands, and no folder named after the scheme."""
    run = subprocess.run(
        [sys.executable, "-m", "l4mon", *command, "--journal", f"mysql://hub:{PASSWORD}@db/x"],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "does not understand mysql://" in run.stderr
    assert "postgresql://USER" in run.stderr and "Traceback" not in run.stderr
    assert PASSWORD not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_with_an_unreachable_postgresql_says_so_and_stops(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """No server at the URL: exit 1 naming the journal (password hidden), nothing created."""
    tmp_path = tmp_path_factory.mktemp("run")
    url = f"postgresql://hub:{PASSWORD}@127.0.0.1:{free_port()}/l4mon?connect_timeout=2"
    config = tmp_path_factory.mktemp("config") / "hub.toml"
    config.write_text(f'[alerts]\njournal = "{url}"\n')
    run = subprocess.run(
        [sys.executable, "-m", "l4mon", "serve", "--broker", "mqtt://127.0.0.1:1", "--http",
         f"127.0.0.1:{free_port()}", "--config", str(config)],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "journal postgresql://hub:***@127.0.0.1" in run.stderr
    assert "cannot connect" in run.stderr and "Traceback" not in run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    assert list(tmp_path.iterdir()) == []
