"""A console for a fleet: search and filter 100 shuttles, counts per state,
and going on duty for the vehicles the filter shows.

In a real headless Chromium against a real ``l4mon demo --vehicles 100``: typing part of an id
leaves that vehicle's row alone in the table; the counts per state add up to the fleet and
agree with the states the rows carry; a count is a filter (a vehicle given a fault is the one
row under "takeover"); the link filter shows the vehicles whose link is not ok; going on duty
for "the 10 shown" covers exactly those 10 in the hub's own duty view. Screenshots at
1280x800 and 1920x1080 land in ``test-artifacts/console-fleet/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from testing.demo import CHROMIUM, CHROMIUM_ARGS, ROOT, DemoProcess, running_demo
from tests.parts import needs

ARTIFACTS = ROOT / "test-artifacts" / "console-fleet"
VEHICLES = 100
VICTIM = "shuttle-073"
STATES = ["takeover", "all_links_down", "one_link_down", "degraded", "unknown", "ok",
          "out_of_service"]

pytestmark = needs("chromium", "playwright")

#: Every row's vehicle, the state it is counted under and whether it is shown; and the
#: counts, read in one go (between two frames) so that they describe one moment.
TABLE_JS = """() => ({
  rows: [...document.querySelectorAll('table.fleet tbody.vrow')].map((tb) =>
    [tb.dataset.vehicle, tb.dataset.state, !tb.hidden]),
  counts: Object.fromEntries([...document.querySelectorAll('[data-testid^="state-count-"]')]
    .map((b) => [b.dataset.state, Number(b.dataset.count)])),
  shown: document.querySelector('[data-testid="fleet-shown"]').textContent,
})"""


@pytest.fixture
def fleet_demo() -> Iterator[DemoProcess]:
    with running_demo(vehicles=VEHICLES, duration=150) as running:
        yield running


def _token(link: str) -> str:
    return link.split("#token=", 1)[1]


def _visible(page) -> list[str]:
    return sorted(v for v, _, shown in page.evaluate(TABLE_JS)["rows"] if shown)


def test_filter_counts_and_duty_for_a_subset(fleet_demo: DemoProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    link = fleet_demo.login_link()
    api = httpx.Client(base_url=fleet_demo.base, timeout=10,
                       headers={"Authorization": f"Bearer {_token(link)}"})
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(link)
            rows = page.locator("table.fleet tbody.vrow")
            expect(rows).to_have_count(VEHICLES, timeout=20_000)
            expect(page.get_by_test_id("live-status")).to_have_text("LIVE", timeout=10_000)

            # -- counts per state: the whole fleet, and the states the rows are ranked by
            table = page.evaluate(TABLE_JS)
            assert sum(table["counts"].values()) == VEHICLES, table["counts"]
            for state in STATES:
                assert table["counts"][state] == sum(1 for _, s, _ in table["rows"] if s == state)
            assert table["shown"] == f"all {VEHICLES} shown"

            # -- one vehicle by part of its id
            page.get_by_test_id("fleet-search").fill("073")
            expect(page.get_by_test_id("fleet-shown")).to_have_text(f"1 of {VEHICLES} shown")
            assert _visible(page) == [VICTIM]
            expect(page.get_by_test_id(f"vehicle-row-{VICTIM}")).to_be_visible()
            page.get_by_test_id("fleet-search").fill("nobody-here")
            expect(page.get_by_test_id("fleet-none")).to_be_visible()
            page.get_by_test_id("fleet-clear").click()
            expect(page.get_by_test_id("fleet-shown")).to_have_text(f"all {VEHICLES} shown")

            # -- a fault: its vehicle is counted under takeover, and that count filters
            page.get_by_test_id("fault-vehicle").select_option(VICTIM)
            page.get_by_test_id("fault-duration").fill("40")
            page.get_by_test_id("fault-both_links_down").click()
            takeover = page.get_by_test_id("state-count-takeover")
            expect(takeover).to_have_attribute("data-count", re.compile(r"^[1-9]"), timeout=10_000)
            takeover.click()
            expect(takeover).to_have_attribute("aria-pressed", "true")
            table = page.evaluate(TABLE_JS)
            shown = [v for v, s, on in table["rows"] if on]
            assert VICTIM in shown and len(shown) == table["counts"]["takeover"]
            assert all(s == "takeover" for _, s, on in table["rows"] if on)
            takeover.click()  # again: every state
            expect(page.get_by_test_id("fleet-shown")).to_have_text(f"all {VEHICLES} shown")

            # -- a link not ok: the victim's both links are down, so it is among them
            page.get_by_test_id("fleet-link").select_option("l5g")
            expect(page.get_by_test_id("fleet-shown")).to_have_text(
                re.compile(rf"^\d+ of {VEHICLES} shown$"))
            l5g = {v["id"]: v["links"]["l5g"]["state"] for v in api.get("/api/vehicles").json()}
            assert l5g[VICTIM] != "ok" and VICTIM in _visible(page)
            assert len(_visible(page)) < VEHICLES
            assert "site" in page.get_by_test_id("fleet-site").text_content()
            page.screenshot(path=str(ARTIFACTS / "01-link-filter-1280x800.png"))
            page.get_by_test_id("fleet-clear").click()

            # -- duty for the vehicles shown: shuttle-010 to shuttle-019
            page.get_by_test_id("fleet-search").fill("shuttle-01")
            expect(page.get_by_test_id("fleet-shown")).to_have_text(f"10 of {VEHICLES} shown")
            subset = [f"shuttle-{n:03d}" for n in range(10, 20)]
            assert _visible(page) == subset
            scope = page.get_by_test_id("duty-scope")
            scope.select_option("shown")
            expect(scope).to_have_attribute("data-vehicles", "10")
            page.get_by_test_id("duty-on").click()
            expect(page.get_by_test_id("duty-list")).to_contain_text("shuttle-010–019")
            duty = api.get("/api/duty").json()
            (me,) = [o for o in duty["on_duty"] if o["operator"] == "demo-operator"]
            assert sorted(me["vehicles"]) == subset
            assert len(duty["unassigned"]) == VEHICLES - len(subset)
            expect(page.get_by_test_id("unassigned-summary")).to_contain_text(
                f"{VEHICLES - len(subset)} vehicles")
            page.screenshot(path=str(ARTIFACTS / "02-duty-subset-1280x800.png"))

            # -- 1920x1080: the same console, a search for a few vehicles by number
            page.set_viewport_size({"width": 1920, "height": 1080})
            page.get_by_test_id("fleet-search").fill("007 012 073")
            expect(page.get_by_test_id("fleet-shown")).to_have_text(f"3 of {VEHICLES} shown")
            assert _visible(page) == ["shuttle-007", "shuttle-012", VICTIM]
            page.wait_for_timeout(600)
            page.screenshot(path=str(ARTIFACTS / "03-search-1920x1080.png"))
            page.get_by_test_id("fleet-clear").click()
            page.wait_for_timeout(600)
            page.screenshot(path=str(ARTIFACTS / "04-fleet-1920x1080.png"))
        finally:
            browser.close()
            api.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert time.monotonic() - started < 90, "the walk took far longer than it should"
