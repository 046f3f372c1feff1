"""The console in a real headless Chromium for vehicles that are not the simulator's: one, three
and four links, and one out of service. Each is told in words that fit it ("its only link
down", "all 3 links down", "2 of 4 links down"), the vehicle out of service is listed last
and apart, and no alert says "both links" of a vehicle that has one. Screenshots land in
``test-artifacts/console-links/`` for a human to look at."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest

from telemetry.topics import link_topic, service_topic, state_topic
from telemetry.wire import LinkSample, ServiceStatus, VehicleState
from testing.broker import Broker
from testing.demo import chromium_page
from testing.hub import TEST_TOKEN, HubProcess
from tests.mqtt_publish import Publisher
from tests.parts import import_part, needs

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

pytestmark = [pytest.mark.mqtt, needs("chromium")]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console-links"
SITE = "linkcount"
#: vehicle -> its links, and which of them fall silent halfway
FLEET = {"solo": (["cell"], ["cell"]),
         "triple": (["a", "b", "c"], ["a", "b", "c"]),
         "quad": (["w", "x", "y", "z"], ["x", "z"]),
         "steady": (["l5g", "lte"], [])}


class Fleet:
    """Publishes the fleet at 10 Hz from a thread; ``silence()`` stops the links named to."""

    def __init__(self, broker: Broker) -> None:
        self.pub = Publisher(broker.host, broker.port, client_id="links-fleet")
        self.silent = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        encode = msgspec.json.encode
        for vid in [*FLEET, "parked"]:
            self.pub.publish(service_topic(SITE, vid), encode(ServiceStatus(
                ts=time.time(), status="in_service")), qos=1)
        self.pub.publish(service_topic(SITE, "parked"), encode(ServiceStatus(
            ts=time.time(), status="out_of_service", reason="end of shift")), qos=1)
        seq = 0
        while not self.stop.is_set():
            now = time.time()
            for vid, (links, fall) in FLEET.items():
                self.pub.publish(state_topic(SITE, vid), encode(VehicleState(
                    ts=now, seq=seq, lat=36.06, lon=136.34, speed_mps=5.0, heading_deg=90.0,
                    mode="autonomous")))
                for link in links:
                    if self.silent.is_set() and link in fall:
                        continue
                    self.pub.publish(link_topic(SITE, vid, link), encode(LinkSample(
                        ts=now, seq=seq, rat="nr", cell_id=f"{vid}-{link}", rsrp_dbm=-85.0,
                        sinr_db=15.0, rtt_ms=25.0, ul_kbps=20_000.0, dl_kbps=50_000.0)))
            seq += 1
            time.sleep(0.1)

    def __enter__(self) -> Fleet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.pub.__exit__(None, None, None)


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(1600, 900) as opened:
        yield opened


def row(page: Page, vehicle: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id(f"vehicle-row-{vehicle}")


def test_one_three_and_four_links_and_a_vehicle_out_of_service(
        broker: Broker, hub_process: HubProcess, page: Page) -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with Fleet(broker) as fleet:
        page.goto(f"http://127.0.0.1:{hub_process.port}/#token={TEST_TOKEN}")
        for vid in [*FLEET, "parked"]:
            expect(row(page, vid)).to_be_visible(timeout=15_000)
        expect(row(page, "parked")).to_have_attribute("data-service", "out_of_service")
        expect(row(page, "parked")).to_contain_text("out of service")
        expect(row(page, "parked").locator(".uncovered")).to_be_hidden()  # needs nobody
        expect(row(page, "steady").locator(".uncovered")).to_be_visible()
        expect(page.get_by_test_id("unassigned-parked")).to_have_count(0)
        expect(row(page, "solo")).to_have_attribute("data-connectivity", "ok", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "01-all-up.png"))
        fleet.silent.set()
        expect(row(page, "solo")).to_contain_text("its only link down", timeout=10_000)
        expect(row(page, "triple")).to_contain_text("all 3 links down")
        expect(row(page, "quad")).to_contain_text("2 of 4 links down")
        expect(row(page, "steady")).to_have_attribute("data-connectivity", "ok")
        queue = page.get_by_test_id("alert-queue")
        for vid, title in (("solo", "Its only link down"), ("triple", "All 3 links down")):
            expect(queue.locator(f"[data-rule='both_links_down'][data-vehicle='{vid}']")
                   ).to_contain_text(title, timeout=10_000)
        expect(queue).not_to_contain_text("Both links down")
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(ARTIFACTS / "02-links-down.png"))
        order = page.evaluate("""() => [...document.querySelectorAll('table.fleet tbody.vrow')]
                                     .map((tb) => tb.dataset.vehicle)""")
        assert order[-1] == "parked", order  # apart, after every vehicle in service
        row(page, "parked").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "03-out-of-service.png"))
    alerts = hub_process.json("/api/alerts")
    assert not [a for a in alerts if a["vehicle"] == "parked"]
    assert errors == []
