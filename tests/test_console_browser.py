"""The operator console in a real headless Chromium against a real ``l4mon demo``.

One walk through an operator's shift: log in from the printed link, see the fleet, go on duty,
break a shuttle's radio links from the demo controls, acknowledge and resolve the takeover
alert, then lose the hub and see the console say so. Screenshots of each step land in
``test-artifacts/console/`` for a human to look at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from testing.demo import DemoProcess, chromium_page, running_demo
from tests.parts import import_part, needs

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
VEHICLES = ("shuttle-01", "shuttle-02", "shuttle-03")
VICTIM = "shuttle-02"

pytestmark = needs("chromium")


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    with running_demo(vehicles=len(VEHICLES), duration=120) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(1600, 900) as opened:
        yield opened


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name))


def test_operator_takes_a_takeover_alert_through_its_whole_cycle(demo: DemoProcess,
                                                                 page: Page) -> None:
    """Fleet → on duty → both links down → takeover cue → ack → resolve → hub gone → banner."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # -- log in from the printed link; the token leaves the address bar
    page.goto(demo.login_link())
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    assert "token=" not in page.url
    expect(page.get_by_test_id("login-form")).to_be_hidden()

    # -- the fleet: every shuttle in the table and on the plot, and the screen is live
    for vid in VEHICLES:
        expect(page.get_by_test_id(f"vehicle-row-{vid}")).to_be_visible(timeout=15_000)
        expect(page.get_by_test_id(f"plot-vehicle-{vid}")).to_have_count(1)
    expect(page.get_by_test_id("connection-banner")).to_be_hidden(timeout=10_000)
    expect(page.get_by_test_id(f"vehicle-row-{VICTIM}")).to_contain_text("l5g")
    expect(page.get_by_test_id("no-duty-warning")).to_be_visible()

    # -- go on duty
    page.get_by_test_id("duty-on").click()
    expect(page.get_by_test_id("duty-list")).to_contain_text("demo-operator")
    expect(page.get_by_test_id("no-duty-warning")).to_be_hidden()
    expect(page.get_by_test_id("duty-off")).to_be_enabled()
    page.wait_for_timeout(1500)   # a couple of seconds of chart for the screenshot
    _shot(page, "01-fleet.png")

    # -- break both radio links of one shuttle from the demo controls
    page.get_by_test_id("fault-vehicle").select_option(VICTIM)
    page.get_by_test_id("fault-duration").fill("60")  # still down when resolved
    page.get_by_test_id("fault-both_links_down").click()
    queue = page.get_by_test_id("alert-queue")
    takeover = queue.locator(
        f"[data-rule][data-vehicle='{VICTIM}'][data-severity='takeover'][data-state='raised']")
    expect(takeover.first).to_be_visible(timeout=8_000)
    specific = queue.locator(f"[data-rule='both_links_down'][data-vehicle='{VICTIM}']")
    alert = specific.first if specific.count() else takeover.first
    alert_testid = alert.get_attribute("data-testid")
    assert alert_testid is not None and alert_testid.startswith("alert-")
    alert = page.get_by_test_id(alert_testid)
    cue = page.get_by_test_id("takeover-cue")
    expect(cue).to_be_visible()
    expect(cue).to_contain_text(VICTIM)
    expect(page.get_by_test_id(f"plot-vehicle-{VICTIM}")).to_have_attribute("data-takeover",
                                                                            "true")
    expect(page).to_have_title(re.compile(VICTIM))  # the tab flashes too
    _shot(page, "02-takeover.png")

    # -- acknowledge: the state changes and names who acknowledged
    alert.get_by_test_id("ack-button").click()
    expect(alert).to_have_attribute("data-state", "acknowledged", timeout=5_000)
    expect(alert.get_by_test_id("alert-acked-by")).to_contain_text("demo-operator")
    expect(alert.get_by_test_id("ack-button")).to_be_hidden()
    if queue.locator("[data-severity='takeover'][data-state='raised']").count() == 0:
        expect(cue).to_be_hidden()
    alert.get_by_test_id("alert-title").click()  # opens the alert's history
    expect(alert.get_by_test_id("alert-history")).to_contain_text("acknowledged")
    _shot(page, "03-acked.png")

    # -- resolve: a reason is required; the hub warns that the links are still down; confirmed,
    #    the alert leaves the open queue
    alert.get_by_test_id("resolve-button").click()
    alert.get_by_test_id("resolve-confirm").click()
    expect(alert.get_by_test_id("alert-error")).to_contain_text("reason")
    expect(alert).to_have_attribute("data-state", "acknowledged")
    alert.get_by_test_id("reason-input").fill("Remote check: shuttle stopped safely, links back")
    alert.get_by_test_id("resolve-confirm").click()
    # the links are still down: the console says so before anything is done
    expect(alert.get_by_test_id("alert-error")).to_contain_text("still holds", timeout=5_000)
    expect(alert.get_by_test_id("alert-error")).to_contain_text("both links down")
    expect(alert).to_have_attribute("data-state", "acknowledged")
    alert.get_by_test_id("resolve-anyway").click()
    expect(alert).to_have_count(0, timeout=5_000)
    alert_id = alert_testid.removeprefix("alert-")
    resolved = page.get_by_test_id(f"resolved-alert-{alert_id}")
    expect(resolved).to_have_count(1)
    expect(resolved).to_contain_text("resolved by demo-operator")

    # -- the hub goes away: within seconds the console must say it is not live
    demo.stop()
    banner = page.get_by_test_id("connection-banner")
    expect(banner).to_be_visible(timeout=5_000)
    expect(banner).to_contain_text("NOT live")
    expect(page.get_by_test_id("live-status")).to_have_text("NOT LIVE")
    _shot(page, "04-disconnected.png")

    assert not errors, f"JavaScript errors on the page: {errors}"
