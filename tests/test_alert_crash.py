"""kill -9 of a live hub: the restart shows exactly the alerts, acknowledgements and audit trail
that operators saw before, and nothing acknowledged comes back as new."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import msgspec
import pytest

from telemetry.topics import event_topic, link_topic
from telemetry.wire import LinkSample, VehicleEvent
from testing.broker import Broker, free_port
from testing.hub import launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt


def _snapshot(hub: object) -> dict[int, tuple[dict, list[dict]]]:
    alerts = hub.json("/api/alerts")  # type: ignore[attr-defined]
    return {a["id"]: (a, hub.json(f"/api/alerts/{a['id']}")["history"])  # type: ignore[attr-defined]
            for a in alerts}


def test_kill_9_keeps_alerts_acks_and_audit_trail(broker: Broker, tmp_path: Path) -> None:
    """Raise four alerts, acknowledge two, kill -9, restart: journal and API agree exactly."""
    config, log, port = write_hub_config(tmp_path), tmp_path / "hub.log", free_port()
    hub = launch_hub(broker, config, log, port)
    try:
        hub.http.post("/api/duty/on").raise_for_status()
        with Publisher(broker.host, broker.port) as pub:
            for n, vehicle in enumerate(("veh-a", "veh-b", "veh-c")):
                pub.publish(event_topic("crash", vehicle), msgspec.json.encode(VehicleEvent(
                    ts=time.time(), kind="takeover_request", seq=n)), qos=1)
            for link in ("l5g", "lte"):  # veh-d loses service on both links
                pub.publish(link_topic("crash", "veh-d", link), msgspec.json.encode(LinkSample(
                    ts=time.time(), seq=0, rat="none")))
        hub.wait_for(lambda: len(hub.json("/api/alerts", state="open")) == 4,
                     what="four open alerts")
        by_vehicle = {a["vehicle"]: a["id"] for a in hub.json("/api/alerts")}
        hub.http.post(f"/api/alerts/{by_vehicle['veh-a']}/ack", json={}).raise_for_status()
        hub.http.post(f"/api/alerts/{by_vehicle['veh-d']}/ack",
                      json={"note": "calling"}).raise_for_status()
        hub.http.post(f"/api/alerts/{by_vehicle['veh-b']}/resolve",
                      json={"reason": "false alarm, checked camera"}).raise_for_status()
        before = _snapshot(hub)
        hub.proc.send_signal(signal.SIGKILL)
        hub.proc.wait(timeout=10)
        hub.http.close()
    except BaseException:
        stop_hub(hub)
        raise

    hub = launch_hub(broker, config, log, port)
    try:
        time.sleep(1.5)  # several ticks: anything that would re-raise would have done so
        after = _snapshot(hub)
        assert after == before
        states = {a["vehicle"]: (a["state"], a["acknowledged_by"]) for a, _ in after.values()}
        assert states == {"veh-a": ("acknowledged", "tester"), "veh-b": ("resolved", None),
                          "veh-c": ("raised", None), "veh-d": ("acknowledged", "tester")}
        assert "restored 3 open alerts" in hub.log()
    finally:
        stop_hub(hub)
