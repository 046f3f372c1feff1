"""Handovers and intersections in the operator console, in a real headless Chromium against a
real ``l4mon demo``.

The demo runs 9 shuttles: spread evenly on the loop, one of them starts inside the Araya
junction, so a link broken from the demo controls right away fails *inside* an intersection
(a failure handover record and a takeover alert), and the fleet's own handovers follow within
about half a minute. Screenshots land in ``test-artifacts/console/`` (``1x-handovers-*``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from testing.demo import DemoProcess, chromium_page, running_demo
from tests.parts import import_part, needs
from tests.test_console_browser import ARTIFACTS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

pytestmark = needs("chromium")

#: With 9 vehicles spaced evenly on the 1.9 km loop, shuttle-02 starts ~10 m before the Araya
#: junction and crawls through it at junction speed for ~20 s.
FLEET = 9
INTERSECTIONS = {"ix-araya": "Araya junction", "ix-shihi": "Shihi monzen junction"}


@pytest.fixture
def ho_demo() -> Iterator[DemoProcess]:
    """The same ``l4mon demo`` child process, with a bigger fleet."""
    with running_demo(vehicles=FLEET, duration=150) as running:
        yield running


@pytest.fixture
def console() -> Iterator[Page]:
    """A page of a headless Chromium, at the smallest screen the console is made for."""
    with chromium_page(1280, 800) as page:
        yield page


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _vehicle_in_a_junction(base: str, token: str, timeout: float) -> tuple[str, str]:
    """(vehicle, intersection) of some vehicle inside a junction now, from the hub's own book."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = httpx.get(f"{base}/api/intersections",
                            headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        for ix in listing:
            if ix["vehicles_in_zone"]:
                return ix["vehicles_in_zone"][0], ix["id"]
        time.sleep(0.3)
    pytest.fail(f"no vehicle entered a junction within {timeout} s")


def test_console_shows_handovers_and_intersections(ho_demo: DemoProcess, console: Page) -> None:
    """Intersection table → a link breaks inside a junction → failure mark, takeover alert naming
    the junction, the vehicle's timeline and the mark's details → the fleet's own handovers."""
    started = time.monotonic()
    page = console
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    link = ho_demo.login_link()
    token = re.search(r"#token=(\S+)", link).group(1)  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{ho_demo.port}"
    page.goto(link)
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    expect(page.get_by_test_id("vehicle-row-shuttle-01")).to_be_visible(timeout=15_000)
    page.get_by_test_id("duty-on").click()

    # -- the intersection table: both junctions of the site, 5G and LTE side by side
    page.get_by_test_id("tab-intersections").click()
    table = page.get_by_test_id("intersection-table")
    expect(table).to_be_visible()
    expect(page.get_by_test_id("vehicle-row-shuttle-01")).to_be_hidden()
    for ix, name in INTERSECTIONS.items():
        expect(page.get_by_test_id(f"ix-row-{ix}")).to_contain_text(name, timeout=10_000)
        for link_name in ("l5g", "lte"):
            expect(page.get_by_test_id(f"ix-row-{ix}-{link_name}")).to_have_count(1)

    # -- break a link of a shuttle while it is inside a junction, from the demo controls
    victim, junction = _vehicle_in_a_junction(base, token, timeout=30)
    page.get_by_test_id("fault-vehicle").select_option(victim)
    page.get_by_test_id("fault-duration").fill("2")
    page.get_by_test_id("fault-link_down-l5g").click()

    # The failure is a handover record tagged with the junction: a mark on the plot...
    failure = page.locator(f"[data-testid='plot-handover'][data-kind='failure']"
                           f"[data-vehicle='{victim}'][data-intersection='{junction}']")
    expect(failure.first).to_be_attached(timeout=20_000)
    # ...and a takeover alert that names the junction.
    alert = page.get_by_test_id("alert-queue").locator(
        f"[data-rule='handover_failure_in_intersection'][data-vehicle='{victim}']")
    expect(alert.first).to_be_visible(timeout=10_000)
    expect(alert.first).to_have_attribute("data-intersection", junction)
    expect(alert.first).to_contain_text(f"in {INTERSECTIONS[junction]}")
    # The table marks it: a failure inside the zone, with its success rate now under 95 %.
    row = page.get_by_test_id(f"ix-row-{junction}-l5g")
    expect(row.locator("td[data-bad='true']").first).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("ix-issue-count")).to_contain_text("!")
    _shot(page, "10-handovers-junction-failure.png")

    # -- the vehicle's timeline: the failure in its l5g lane, labelled with the junction
    page.get_by_test_id("tab-fleet").click()
    page.get_by_test_id(f"vehicle-row-{victim}").click()
    timeline = page.get_by_test_id("handover-timeline")
    expect(timeline).to_have_attribute("data-vehicle", victim)
    mark = timeline.locator(
        "[data-testid='timeline-handover'][data-kind='failure'][data-link='l5g']")
    expect(mark.first).to_be_attached(timeout=10_000)
    expect(timeline).to_contain_text(INTERSECTIONS[junction])
    expect(page.get_by_test_id("handover-timeline-summary")).to_contain_text("failure")
    mark.first.click()
    detail = page.get_by_test_id("handover-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("Failure handover")
    expect(detail).to_contain_text(INTERSECTIONS[junction])
    expect(detail).to_contain_text(victim)
    _shot(page, "11-handovers-timeline-detail.png")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # -- the fleet's own handovers appear on the plot as they become final
    natural = page.locator("[data-testid='plot-handover']:not([data-kind='failure'])")
    expect(natural.first).to_be_attached(timeout=45_000)
    natural.first.dispatch_event("click")   # a vehicle may be driving over it right now
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("→")
    _shot(page, "12-handovers-plot-1280x800.png")
    page.keyboard.press("Escape")

    # -- the same at 1920x1080, with the intersection table shown
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.get_by_test_id("tab-intersections").click()
    page.wait_for_timeout(500)    # the charts and the timeline follow the new size
    _shot(page, "13-handovers-1920x1080.png")

    assert not errors, f"JavaScript errors on the page: {errors}"
    assert time.monotonic() - started < 90, "the walk took far longer than it should"
