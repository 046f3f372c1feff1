"""Commands in flight across a pair failover (issue 25, item 1: "survives kill -9 and a pair
failover, exactly once, by id"): two real ``l4mon serve`` on one PostgreSQL journal and a real
Mosquitto; the leader is killed with -9 while two commands wait for their vehicles.

The standby takes over the commands from the journal and never publishes them again: the one
whose vehicle answers (partly while the standby was still standby, partly after it led) ends
``done`` with each answer journaled once; the one whose vehicle never answers is raised as not
confirmed, once. Each vehicle heard its command exactly once.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from telemetry.commands import decode_command
from testing.broker import Broker
from testing.hub import HubProcess, running_pair, write_hub_config
from tests.test_commands import MuteVehicle

pytestmark = pytest.mark.mqtt


def _config(tmp_path: Path, name: str, ports: list[int]) -> Path:
    peers = ", ".join(f'"http://127.0.0.1:{p}"' for p in ports)
    # 4 s to say received: longer than the failover (< 2 s, tests/test_hub_pair.py), so the
    # answered command can be confirmed by the new leader and the silent one expire there.
    return write_hub_config(tmp_path, file_name=f"{name}.toml", extra=(
        f'[mqtt]\nclient_id = "l4mon-{name}"\n[ha]\npeers = [{peers}]\npoll_interval_s = 0.2'
        "\n[commands]\nreceived_within_s = 4.0\n"))


@contextlib.contextmanager
def _pair(broker: Broker, pg_url: str, tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    with running_pair(broker, pg_url, tmp_path, _config) as (a, b, _ports):
        yield a, b


def _role(hub: HubProcess) -> str | None:
    try:
        return hub.health()["role"]  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):  # a hub between roles may not answer: no role yet
        return None


def _steps(pg_url: str, command_id: str) -> list[tuple[str, str | None]]:
    """The command's journaled steps (state, actor), as PostgreSQL holds them."""
    with psycopg.connect(pg_url) as db:
        return [(str(s), a) for s, a in db.execute(
            "SELECT state, actor FROM command_log WHERE command_id = %s ORDER BY seq",
            (command_id,))]


def _not_confirmed_alerts(pg_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg_url) as db:
        return [(str(v), str(d)) for v, d in db.execute(
            "SELECT vehicle, detail FROM alerts WHERE rule = 'command_not_confirmed' "
            "ORDER BY id")]


def _send(hub: HubProcess, vehicle: str, command_id: str) -> dict[str, Any]:
    sent = hub.http.post(f"/api/vehicles/{vehicle}/commands",
                         json={"kind": "stop", "id": command_id, "reason": "failover test"})
    assert sent.status_code == 202, sent.text
    return sent.json()  # type: ignore[no-any-return]


def test_commands_in_flight_at_a_leader_kill_9_are_finished_by_the_new_leader_once(
        broker: Broker, pg_url: str, tmp_path: Path) -> None:
    talks, silent = MuteVehicle(broker, "pf-talks"), MuteVehicle(broker, "pf-silent")
    try:
        with _pair(broker, pg_url, tmp_path) as (a, b):
            assert (_role(a), _role(b)) == ("leader", "standby")
            for v in ("pf-talks", "pf-silent"):
                a.wait_for(lambda v=v: any(x["id"] == v and x["telemetry"] == "fresh"
                                           for x in a.json("/api/vehicles")), what=f"{v} fresh")
            assert a.http.post("/api/duty/on").status_code == 200
            assert _send(a, "pf-talks", "fo-1")["state"] == "sent"
            assert _send(a, "pf-silent", "fo-2")["state"] == "sent"
            # The leader freezes, then dies: the first answer reaches only the standby (kept),
            # the rest come once it leads.
            a.proc.send_signal(signal.SIGSTOP)
            talks.answer("fo-1", "received")
            time.sleep(0.3)  # the standby has heard it, the frozen leader journals nothing
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(10)
            killed = time.monotonic()
            b.wait_for(lambda: _role(b) == "leader", what="b leads", timeout=5)
            failover_s = time.monotonic() - killed
            talks.answer("fo-1", "executing")
            talks.answer("fo-1", "done")
            talks.answer("fo-1", "done")  # a vehicle repeating itself: counted once
            b.wait_for(lambda: b.json("/api/commands/fo-1")["command"]["state"] == "done",
                       what="fo-1 done", timeout=10)
            b.wait_for(lambda: b.json("/api/commands/fo-2")["command"]["state"]
                       == "not_confirmed", what="fo-2 not confirmed", timeout=10)
            time.sleep(1.0)  # room for a command sent again, or a late duplicate step
            log = b.log()
        assert failover_s < 3.0, failover_s
        assert _steps(pg_url, "fo-1") == [
            ("issued", "tester"), ("sent", None), ("received", "vehicle"),
            ("executing", "vehicle"), ("done", "vehicle")], log[-3000:]
        assert [s for s, _ in _steps(pg_url, "fo-2")] == ["issued", "sent", "not_confirmed"]
        ((vehicle, detail),) = _not_confirmed_alerts(pg_url)
        assert vehicle == "pf-silent" and "fo-2" in detail
        # exactly once, by id: neither hub published a command again
        assert [decode_command(p).id for p in talks.heard] == ["fo-1"]
        assert [decode_command(p).id for p in silent.heard] == ["fo-2"]
        # the "received" the frozen leader never journaled came from what the standby kept
        assert "waiting for their vehicles, 1 answers kept as standby taken" in log, log[-3000:]
    finally:
        talks.close()
        silent.close()
