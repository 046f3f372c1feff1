"""A real ``l4mon serve`` over Mosquitto, two simulated vehicles each in its own process with its
own connection and last will: one ends its service and disconnects (nothing is raised), the
other drops off without a word (a takeover); the journal says which was which."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.broker import Broker
from testing.demo import stop_process
from testing.hub import HubProcess

pytestmark = pytest.mark.mqtt
SITE = "eiheiji-demo"  # the simulator's demo site


def simulate(broker: Broker, vehicle: str, duration: float, log: Path) -> subprocess.Popen[bytes]:
    """``l4mon simulate`` publishing one vehicle of a two-vehicle fleet, own connection."""
    return subprocess.Popen(
        [sys.executable, "-m", "l4mon", "simulate", "--broker",
         f"mqtt://{broker.host}:{broker.port}", "--vehicles", "2", "--only", vehicle,
         "--duration", str(duration)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def test_a_vehicle_that_ends_service_raises_nothing_one_that_drops_off_is_a_takeover(
        broker: Broker, hub_process: HubProcess, tmp_path: Path) -> None:
    ends = simulate(broker, "shuttle-01", 6.0, tmp_path / "ends.log")
    drops = simulate(broker, "shuttle-02", 120.0, tmp_path / "drops.log")
    try:
        hub_process.wait_for(lambda: {v["id"]: v["service"]["status"] for v in
                                      hub_process.json("/api/vehicles")} == {
            "shuttle-01": "in_service", "shuttle-02": "in_service"},
            timeout=20, what="both vehicles in service")
        assert ends.wait(timeout=30) == 0, (tmp_path / "ends.log").read_text()
        hub_process.wait_for(
            lambda: hub_process.json("/api/vehicles/shuttle-01")["service"]["status"]
            == "out_of_service", what="shuttle-01 out of service")
        left_at = time.time()
        os.killpg(drops.pid, signal.SIGKILL)  # no DISCONNECT: the broker sends its will
        killed_at = time.time()
        hub_process.wait_for(
            lambda: any(a["rule"] == "both_links_down" and a["vehicle"] == "shuttle-02"
                        for a in hub_process.json("/api/alerts")),
            timeout=10, what="a takeover for the vehicle that dropped off")
        took = time.time() - killed_at
        # silence of 1 s (10 Hz), judged within a tick or two: as quick as ever
        assert took < 3.0, took
        # the will arrives once the broker gives up on the connection (keepalive x 1.5)
        hub_process.wait_for(
            lambda: any(e["status"] == "offline" for e in
                        hub_process.json("/api/service", vehicle="shuttle-02")),
            timeout=30, what="shuttle-02's will")
        time.sleep(max(0.0, left_at + 3.0 - time.time()))  # shuttle-01 silent for 3 s more
        alerts = hub_process.json("/api/alerts")
        assert [a for a in alerts if a["vehicle"] == "shuttle-01"] == []
        takeover = [a for a in alerts if a["vehicle"] == "shuttle-02"]
        assert {a["severity"] for a in takeover} == {"takeover"}
        one = hub_process.json("/api/service", vehicle="shuttle-01")
        assert [(e["status"], e["reason"]) for e in one] == [
            ("out_of_service", "end of simulation"), ("in_service", None)]
        two = hub_process.json("/api/service", vehicle="shuttle-02")
        assert [e["status"] for e in two] == ["offline", "in_service"]
        assert hub_process.json("/api/vehicles", service="out_of_service")[0]["id"] == \
            "shuttle-01"
    finally:
        for proc in (ends, drops):
            if proc.poll() is None:
                stop_process(proc)
