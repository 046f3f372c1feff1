"""A next step on every alert, one card per vehicle and cause, and the alarm armed by going on
duty: in a real headless Chromium against a real ``l4mon demo``.

An operator signs in (the sound is off: no gesture yet), goes on duty (the click arms it), and a
shuttle asks for a takeover from the demo controls: the vehicle's takeover request and the
minimal risk manoeuvre it starts are ONE card, its runbook open on it, acknowledged with ONE
click; the journal keeps both alerts. Another shuttle losing both links is a card of its own
with its own runbook. Screenshots at 1280x800 and 1920x1080 land in
``test-artifacts/console-runbook/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from l4mon.alerts.rules import load_rules
from testing.demo import ROOT, DemoProcess, chromium_page, running_demo
from tests.parts import import_part, needs
from tests.test_console_fleet100 import TRUNCATED_JS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

pytestmark = needs("chromium")

ARTIFACTS = ROOT / "test-artifacts" / "console-runbook"
FLEET = 3
ASKS = "shuttle-02"
CUT_OFF = "shuttle-03"

#: The open-alert queue's cards as the operator sees them.
CARDS_JS = """() => [...document.querySelectorAll('#alert-queue > li')].map((li) => ({
  testid: li.dataset.testid, rule: li.dataset.rule ?? null, by: li.dataset.by ?? null,
  vehicle: li.dataset.vehicle ?? null, state: li.dataset.state,
  members: [...li.querySelectorAll('[data-testid^="incident-member-"]')].map((m) => ({
    rule: m.dataset.rule, state: m.dataset.state})),
}))"""


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    with running_demo(vehicles=FLEET, duration=180) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(1280, 800) as opened:
        yield opened


def _shots(page: Page, name: str) -> None:
    """Screenshots at both sizes, nothing cut off without a tooltip in either."""
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)
        assert page.evaluate(TRUNCATED_JS) == [], f"{name} at {width}x{height}: text cut off"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def _cards_of(page: Page, vehicle: str) -> list[dict[str, Any]]:
    return [c for c in page.evaluate(CARDS_JS) if vehicle in (c["vehicle"] or "").split()]


def test_one_card_with_its_runbook_one_acknowledgement_and_the_alarm_armed_on_duty(
        demo: DemoProcess, page: Page) -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    runbooks = {r.name: r.runbook for r in load_rules()}
    groups = {g.name: g.runbook for g in load_rules().groups}

    link = demo.login_link()
    token = re.search(r"#token=(\S+)", link).group(1)  # type: ignore[union-attr]
    api = httpx.Client(base_url=demo.base, headers={"Authorization": f"Bearer {token}"},
                       timeout=5)
    page.goto(link)
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    expect(page.locator("table.fleet tbody.vrow")).to_have_count(FLEET, timeout=15_000)
    sound = page.get_by_test_id("sound-toggle")
    expect(sound).to_have_text("Sound off — click to enable")  # no gesture yet, nothing armed

    # -- going on duty is the gesture that arms the alarm
    page.get_by_test_id("duty-on").click()
    expect(page.get_by_test_id("duty-list")).to_contain_text("demo-operator")
    expect(sound).to_have_text("Sound on", timeout=5_000)
    expect(sound).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("() => sessionStorage.getItem('l4mon.sound')") == "on"

    # -- a shuttle asks for a takeover: request and MRM, one card
    page.get_by_test_id("fault-vehicle").select_option(ASKS)
    page.get_by_test_id("fault-duration").fill("90")
    page.get_by_test_id("fault-takeover_request").click()
    card = page.locator(f"#alert-queue > li.incident[data-by='vehicle'][data-vehicle='{ASKS}']")
    expect(card).to_have_count(1, timeout=10_000)
    page.wait_for_function(
        f"""() => {{
          const li = document.querySelector("#alert-queue > li.incident[data-vehicle='{ASKS}']");
          return li && li.querySelectorAll('[data-testid^="incident-member-"]').length === 2;
        }}""", timeout=10_000)
    cards = _cards_of(page, ASKS)
    assert len(cards) == 1, f"one card for {ASKS}: {cards}"
    (one,) = cards
    assert sorted(m["rule"] for m in one["members"]) == ["mrm_active", "takeover_requested"]
    expect(card.get_by_test_id("incident-title")).to_have_text(
        "Takeover requested: the vehicle is stopping itself")
    expect(card.get_by_test_id("incident-vehicles")).to_contain_text(
        "Vehicle requests takeover → Minimal risk manoeuvre in progress")
    cue = page.get_by_test_id("takeover-cue")
    expect(cue).to_contain_text(f"{ASKS} needs a human")
    expect(cue).not_to_contain_text("incident")

    # -- its runbook is open on the card: what to do, whom to call
    book = card.get_by_test_id("runbook")
    expect(book).to_be_visible()
    expect(book).to_have_attribute("data-open", "true")
    wanted = groups["takeover_then_mrm"]
    assert wanted is not None
    steps = book.get_by_test_id("runbook-steps").locator("li")
    expect(steps).to_have_count(len(wanted.steps))
    expect(steps.first).to_have_text(wanted.steps[0])
    expect(book.get_by_test_id("runbook-call")).to_have_text(f"Call: {wanted.call}")
    _shots(page, "01-takeover-one-card")

    # -- one click acknowledges both; the journal keeps both alerts
    card.get_by_test_id("incident-ack").click()
    expect(card).to_have_attribute("data-state", "acknowledged", timeout=5_000)
    expect(card.get_by_test_id("incident-ack")).to_be_hidden()
    alerts = [a for a in api.get("/api/alerts", params={"vehicle": ASKS}).json()
              if a["rule"] in ("takeover_requested", "mrm_active")]
    assert sorted(a["rule"] for a in alerts) == ["mrm_active", "takeover_requested"]
    assert {a["state"] for a in alerts} == {"acknowledged"}
    assert {a["acknowledged_by"] for a in alerts} == {"demo-operator"}
    assert len({a["incident"] for a in alerts}) == 1
    for a in alerts:
        assert a["runbook"] == runbooks[a["rule"]].to_dict()  # type: ignore[union-attr]
        history = api.get(f"/api/alerts/{a['id']}").json()["history"]
        assert [t["kind"] for t in history][-1] == "acknowledged"
    if page.locator("#alert-queue [data-severity='takeover'][data-state='raised']").count() == 0:
        expect(cue).to_be_hidden()

    # -- another shuttle cut off: an alert card of its own, with its own runbook
    page.get_by_test_id("fault-vehicle").select_option(CUT_OFF)
    page.get_by_test_id("fault-duration").fill("60")
    page.get_by_test_id("fault-both_links_down").click()
    down = page.locator(f"#alert-queue > li[data-rule='both_links_down'][data-vehicle='{CUT_OFF}']")
    expect(down).to_have_count(1, timeout=10_000)
    down_book = down.get_by_test_id("runbook")
    expect(down_book).to_be_visible()
    # the card that needs a human first has its steps open; the one being handled shows its
    # first step, a click from the rest (a small screen still shows both cards)
    expect(down_book).to_have_attribute("data-open", "true")
    expect(book).to_have_attribute("data-open", "false")
    expect(book.get_by_test_id("runbook-head")).to_have_text(f"Next: {wanted.steps[0]}")
    book.get_by_test_id("runbook-head").click()
    expect(book).to_have_attribute("data-open", "true")
    expect(book.get_by_test_id("runbook-head")).to_have_text("Next steps")
    unreachable = runbooks["both_links_down"]
    assert unreachable is not None
    expect(down_book.get_by_test_id("runbook-call")).to_contain_text(unreachable.call)
    # reading it does not open the card's history
    down_book.get_by_test_id("runbook-steps").click()
    expect(down.get_by_test_id("alert-history")).to_be_hidden()
    _shots(page, "02-cut-off-card")
    assert _cards_of(page, ASKS) and len(_cards_of(page, ASKS)) == 1

    assert not errors, f"JavaScript errors on the page: {errors}"
