"""The broker stops under a 20-vehicle fleet: the operator is told the hub is blind, once.

Real parts only: Mosquitto on a free loopback port, ``l4mon serve`` as a child process, the
fleet published by a paho client in real time, the console in headless Chromium. Before the
fix, the console said LIVE and raised 20 "both links down" takeovers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgspec
import pytest

from scenarios.sim import SimFleet
from telemetry.site import DEMO_SITE_PATH, load_site
from testing.broker import Broker, free_port
from testing.demo import CHROMIUM, CHROMIUM_ARGS
from testing.hub import TEST_TOKEN, HubProcess, launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher
from tests.parts import needs

pytestmark = pytest.mark.mqtt
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "hub-blind"
VEHICLES = 20
PER_VEHICLE_TAKEOVERS = {"both_links_down", "telemetry_stale"}


class Fleet(threading.Thread):
    """The simulated fleet published at 10 Hz until stopped; paho reconnects by itself."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(daemon=True)
        self.broker = broker
        self.halt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        fleet = SimFleet(site=load_site(DEMO_SITE_PATH), vehicles=VEHICLES, seed=9,
                         start=time.time())
        with Publisher(self.broker.host, self.broker.port, client_id="blind-fleet") as pub:
            while not self.halt.is_set():
                for topic, payload in fleet.advance(time.time()):
                    pub.publish(topic, payload, qos=1 if topic.endswith("/event") else 0)
                    self.sent += 1
                self.halt.wait(0.1)


def _alerts(hub: HubProcess) -> list[dict]:
    return hub.json("/api/alerts", limit=1000)  # type: ignore[return-value]


@needs("chromium", "playwright")
def test_a_stopped_broker_is_one_hub_blind_alert_and_not_live(broker: Broker,
                                                               tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright


    config = write_hub_config(tmp_path)
    config.write_text(config.read_text() + f'[site]\npath = "{DEMO_SITE_PATH}"\n')
    hub = launch_hub(broker, config, tmp_path / "hub.log", free_port())
    fleet = Fleet(broker)
    fleet.start()
    try:
        hub.wait_for(lambda: len(hub.json("/api/vehicles")) == VEHICLES, timeout=15,
                     what=f"{VEHICLES} vehicles")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True)
            page = browser.new_context(viewport={"width": 1600, "height": 900}).new_page()
            page.goto(f"{hub.http.base_url}/#token={TEST_TOKEN}")
            live = page.get_by_test_id("live-status")
            expect(live).to_have_text("LIVE", timeout=15_000)

            broker.stop()
            stopped = time.time()
            hub.wait_for(lambda: any(a["rule"] == "hub_feed_lost" for a in _alerts(hub)),
                         timeout=5, what="the hub-blind alert")
            expect(live).to_have_text("NOT LIVE", timeout=5_000)
            banner = page.get_by_test_id("connection-banner")
            expect(banner).to_contain_text("THE HUB CANNOT SEE THE FLEET", timeout=5_000)
            expect(banner).to_contain_text("cannot see site eiheiji-demo")
            expect(banner).to_contain_text("broker connection is down")
            expect(banner).to_contain_text("UNKNOWN, not down")
            time.sleep(max(0.0, stopped + 8.0 - time.time()))  # the 8 s
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "01-hub-blind.png"))
            alerts = _alerts(hub)
            (blind,) = [a for a in alerts if a["rule"] == "hub_feed_lost"]
            assert blind["vehicle"] is None and blind["severity"] == "takeover"
            assert "unknown, not down" in blind["detail"]
            assert not [a for a in alerts if a["rule"] in PER_VEHICLE_TAKEOVERS]
            vehicles = hub.json("/api/vehicles")
            assert {v["connectivity"] for v in vehicles} == {"unknown"}  # type: ignore[union-attr]
            assert all(v["unseen"] for v in vehicles)  # type: ignore[union-attr]
            assert hub.json("/healthz")["status"] == "degraded"  # type: ignore[index]

            broker.start()
            back = time.time()
            hub.wait_for(lambda: not [a for a in _alerts(hub) if a["rule"] == "hub_feed_lost"
                                      and a["state"] != "resolved"],
                         timeout=25, what="the feed back and the grace over")
            judged_again = time.time() - back
            expect(live).to_have_text("LIVE", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "02-hub-sees-again.png"))
            browser.close()
        vehicles = hub.json("/api/vehicles")
        assert {v["connectivity"] for v in vehicles} <= {"ok", "degraded"}  # type: ignore[union-attr]
        assert not [a for a in _alerts(hub) if a["rule"] in PER_VEHICLE_TAKEOVERS]
        # Reconnects (hub and fleet, a few seconds) plus the 5 s grace.
        assert judged_again < 20.0, judged_again
        assert msgspec.json.decode(msgspec.json.encode(fleet.sent)) > 0
    finally:
        fleet.halt.set()
        fleet.join(timeout=10)
        stop_hub(hub)
