"""One incident per cause in the operator console, in a real headless Chromium against a real
``l4mon demo`` of 20 shuttles.

The two cells of one mast (``l5g-araya`` and ``lte-matsuoka-w``) go dark from the console's
demo controls: the shuttles they serve lose their links together, and the console shows ONE
incident card naming the cells, its members listed in it (never as cards of their own), and
ONE takeover cue naming the incident, not a shuttle; one click acknowledges it as a whole. A
member's own takeover request stays out of it (a card of its own vehicle, with the MRM it
triggers), and a member is resolved on its own. Screenshots at 1280x800 and 1920x1080 land
in ``test-artifacts/console-incidents/``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from testing.demo import ROOT, DemoProcess, chromium_page, running_demo
from tests.parts import import_part, needs
from tests.test_console_fleet100 import TRUNCATED_JS

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

pytestmark = needs("chromium")

ARTIFACTS = ROOT / "test-artifacts" / "console-incidents"
FLEET = 20
#: One mast: its 5G and LTE cells dark together cut several shuttles off at once.
MAST = ("l5g-araya", "lte-matsuoka-w")
CAUSE = "cells l5g-araya and lte-matsuoka-w"
TITLE = "INCIDENT · Several vehicles lose their link on one cell"

#: The open-alert queue's cards, incident members inside theirs.
QUEUE_JS = """() => [...document.querySelectorAll('#alert-queue > li')].map((li) => ({
  testid: li.dataset.testid, state: li.dataset.state, severity: li.dataset.severity,
  vehicles: li.dataset.vehicles ?? null, vehicle: li.dataset.vehicle ?? null,
  rule: li.dataset.rule ?? null,
  members: [...li.querySelectorAll('[data-testid^="incident-member-"]')].map((m) => ({
    id: Number(m.dataset.testid.slice('incident-member-'.length)), vehicle: m.dataset.vehicle,
    rule: m.dataset.rule, state: m.dataset.state, severity: m.dataset.severity})),
}))"""


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    """``l4mon demo``, with a fleet big enough for one mast to matter."""
    with running_demo(vehicles=FLEET, duration=240) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    """A page of a headless Chromium, at the smallest screen the console is made for."""
    with chromium_page(1280, 800) as opened:
        yield opened


def _shots(page: Page, name: str) -> None:
    """Screenshots at 1280x800 and 1920x1080, nothing cut off without a tooltip in either."""
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)  # the plot and charts follow the new size
        assert page.evaluate(TRUNCATED_JS) == [], f"{name} at {width}x{height}: text cut off"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def _queue(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(QUEUE_JS)  # type: ignore[no-any-return]


def _card(page: Page, incident_id: int) -> dict[str, Any]:
    (card,) = [c for c in _queue(page) if c["testid"] == f"incident-{incident_id}"]
    return card


def _on_duty(demo: DemoProcess, page: Page) -> httpx.Client:
    """Log in from the printed link, see the fleet, go on duty; an API client with the token."""
    link = demo.login_link()
    token = re.search(r"#token=(\S+)", link).group(1)  # type: ignore[union-attr]
    page.goto(link)
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    expect(page.locator("table.fleet tbody.vrow")).to_have_count(FLEET, timeout=15_000)
    expect(page.get_by_test_id("live-status")).to_have_text("LIVE", timeout=10_000)
    page.get_by_test_id("duty-on").click()
    expect(page.get_by_test_id("duty-list")).to_contain_text("demo-operator")
    return httpx.Client(base_url=f"http://127.0.0.1:{demo.port}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)


def _one_incident(page: Page) -> dict[str, Any]:
    """Within ~10 s: ONE incident card, of at least 3 vehicles."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('#alert-queue > li.incident')]
                 .some((li) => Number(li.dataset.vehicles) >= 3)""", timeout=10_000)
    queue = _queue(page)
    incidents = [c for c in queue if c["testid"].startswith("incident-")]
    assert len(incidents) == 1, f"expected one incident card: {queue}"
    return incidents[0]


def _acknowledged(page: Page, incident_id: int, before: list[int]) -> None:
    """Every member the click covered (``before``) is acknowledged on the card within 5 s; the
    card then says acknowledged, unless a vehicle that drove into the dark cells after the click
    joined as a new raised member: then the card is raised again and asks for one more click
    (the mast stays dark for 40 s, so members may join at any moment)."""
    page.wait_for_function(
        """(ids) => ids.every((id) => {
             const m = document.querySelector(`[data-testid="incident-member-${id}"]`);
             return !m || m.dataset.state === 'acknowledged'; })""", arg=before, timeout=5_000)
    card = page.get_by_test_id(f"incident-{incident_id}")
    # settled: the card acknowledged, or raised again by a member the click did not cover
    newcomer = page.wait_for_function(
        """([iid, ids]) => {
             const li = document.querySelector(`[data-testid="incident-${iid}"]`);
             if (!li) return null;
             const fresh = [...li.querySelectorAll('[data-testid^="incident-member-"]')]
               .filter((m) => m.dataset.state === 'raised' &&
                              !ids.includes(Number(m.dataset.testid.slice(16))));
             if (fresh.length) return 'raised';
             return li.dataset.state === 'acknowledged' ? 'acknowledged' : null; }""",
        arg=[incident_id, before], timeout=5_000).json_value()
    if newcomer == "raised":
        expect(card).to_have_attribute("data-state", "raised")
        expect(card.get_by_test_id("incident-ack")).to_be_visible()
    else:
        expect(card).to_have_attribute("data-state", "acknowledged")
        expect(card.get_by_test_id("incident-ack")).to_be_hidden()


def test_a_dark_mast_is_one_incident_one_cue_one_acknowledgement(demo: DemoProcess,
                                                                   page: Page) -> None:
    """Two cells dark → one incident card (≥ 3 vehicles, members inside only) and one cue naming
    it → one click acknowledges every member → a member's takeover request is a card of its
    own → a member resolves on its own (through "still holds" when it does)."""
    started = time.monotonic()
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    hub = _on_duty(demo, page)

    # -- the mast goes dark, from the demo controls: one cell, then the other
    cells = page.get_by_test_id("cell-select")
    for cell in MAST:
        expect(cells.locator(f"option[value='{cell}']")).to_have_count(1, timeout=5_000)
    page.get_by_test_id("fault-duration").fill("40")
    for cell in MAST:
        cells.select_option(cell)
        page.get_by_test_id("fault-cell-outage").click()
        expect(page.get_by_test_id("toast").first).to_contain_text(f"Cell {cell} is dark")

    # -- ONE incident card, with at least 3 vehicles, within ~10 s
    inc = _one_incident(page)
    queue = _queue(page)
    incident_id = int(inc["testid"].removeprefix("incident-"))
    assert int(inc["vehicles"]) >= 3 and inc["state"] == "raised"
    assert inc["severity"] == "takeover"
    assert len({m["vehicle"] for m in inc["members"]}) >= 3
    # no member is a card of its own as well
    members = {m["id"] for m in inc["members"]}
    alone = {int(c["testid"].removeprefix("alert-")) for c in queue
             if c["testid"].startswith("alert-")}
    assert not members & alone, f"members shown as cards of their own: {members & alone}"
    for member in members:
        expect(page.get_by_test_id(f"alert-{member}")).to_have_count(0)
    # the hub says the same incident, with these members
    view = hub.get(f"/api/incidents/{incident_id}").json()
    assert view["group"] == "cell_outage" and view["state"] in ("raised", "acknowledged")
    assert set(MAST) <= {c.removeprefix("cell ") for c in view["cause"].split(", ")}
    assert members <= set(view["members"])

    card = page.get_by_test_id(f"incident-{incident_id}")
    expect(card).to_contain_text(TITLE)
    expect(card.get_by_test_id("incident-cause")).to_have_text(CAUSE)
    expect(card.get_by_test_id("incident-vehicles")).to_contain_text(
        re.compile(r"^\d+ vehicles"))
    member_vehicle = inc["members"][0]["vehicle"]
    expect(card.get_by_test_id("incident-members")).to_contain_text(member_vehicle)

    # -- ONE takeover cue, naming the incident rather than a shuttle
    cue = page.get_by_test_id("takeover-cue")
    expect(cue).to_be_visible()
    expect(cue).to_contain_text("TAKEOVER — incident:")
    expect(cue).to_contain_text(f"lost their link on {CAUSE}")
    expect(cue).not_to_contain_text("needs a human")
    expect(cue).to_have_attribute("data-incident", str(incident_id))
    assert member_vehicle in (cue.get_attribute("data-vehicles") or "").split()
    expect(page).to_have_title(re.compile(r"incident, \d+ vehicles"))  # the tab, counted once
    # a member vehicle's row in the fleet table says so; clicking a member shows its vehicle
    first = _card(page, incident_id)["members"][0]  # one still open (a vehicle drives on)
    expect(page.get_by_test_id(f"incident-badge-{first['vehicle']}")).to_be_visible()
    card.get_by_test_id(f"incident-member-{first['id']}").get_by_test_id("member-vehicle").click()
    expect(page.get_by_test_id("vehicle-panel")).to_contain_text(first["vehicle"])
    _shots(page, "01-incident")

    # -- one click acknowledges every member
    before = [m["id"] for m in _card(page, incident_id)["members"]]
    card.get_by_test_id("incident-ack").click()
    _acknowledged(page, incident_id, before)
    still = _card(page, incident_id)["members"]
    assert [m for m in still if m["id"] in before], "every member left before the check"
    assert all(m["state"] == "acknowledged" for m in still if m["id"] in before), still
    expect(card.get_by_test_id("incident-acked-by")).to_contain_text("demo-operator")
    acked = {a["id"]: a for a in hub.get(f"/api/incidents/{incident_id}").json()["alerts"]}
    assert all(acked[i]["state"] in ("acknowledged", "resolved") for i in before), acked
    assert {acked[i]["acknowledged_by"] for i in before if acked[i]["acknowledged_by"]} \
        == {"demo-operator"}
    # the cue goes, unless a takeover was raised since (a shuttle driving into the dark area)
    newer_takeover = """(ids) => [...document.querySelectorAll(
        '#alert-queue [data-severity="takeover"][data-state="raised"]:not(.incident)')]
        .some((e) => !ids.includes(Number((e.dataset.testid || '').replace(/^\\D+/, ''))))"""
    page.wait_for_function(f"""(ids) => document.querySelector('[data-testid="takeover-cue"]')
                                .hidden || ({newer_takeover})(ids)""", arg=before,
                           timeout=5_000)
    if not page.evaluate(newer_takeover, before):
        expect(cue).to_be_hidden()
    _shots(page, "02-acknowledged")

    # -- a member's own takeover request is an alert of its own, not in the incident
    #    (a shuttle cut off altogether sends nothing: pick one that still has a link)
    #    (one whose other link is on a cell still lit joins within seconds of the others)
    reachable = page.wait_for_function(
        """(id) => { const vs = [...document.querySelectorAll(
               `[data-testid="incident-${id}"] .inc-member`)].map((m) => m.dataset.vehicle)
               .filter((v) => {
                 const row = document.querySelector(`[data-testid="vehicle-row-${v}"]`);
                 return row && !['all_links_down', 'unknown'].includes(row.dataset.connectivity);
               });
             return vs.length ? vs : null; }""", arg=incident_id, timeout=15_000).json_value()
    victim = reachable[0]
    page.get_by_test_id("fault-vehicle").select_option(victim)
    page.get_by_test_id("fault-duration").fill("20")
    page.get_by_test_id("fault-takeover_request").click()
    #    (with the MRM it triggers: the vehicle's own one card, tests/test_console_runbook.py)
    own = page.locator(
        f"#alert-queue > li.incident[data-by='vehicle'][data-vehicle='{victim}']")
    expect(own).to_have_count(1, timeout=8_000)
    expect(own).to_have_attribute("data-state", "raised")
    expect(own.locator(".inc-member[data-rule='takeover_requested']")).to_have_count(1)
    expect(card.locator("[data-rule='takeover_requested']")).to_have_count(0)
    expect(card.locator("[data-rule='mrm_active']")).to_have_count(0)
    expect(page.locator("#alert-queue > li.incident:not([data-by='vehicle'])")).to_have_count(1)
    expect(cue).to_be_visible()
    expect(cue).to_contain_text(victim)
    _shots(page, "03-takeover-request")
    own.get_by_test_id("incident-ack").click()
    expect(own).to_have_attribute("data-state", "acknowledged", timeout=5_000)

    # -- a member resolves on its own; while its links are still down the console says so first
    member = card.locator(".inc-member[data-rule='both_links_down']").first
    expect(member).to_have_count(1, timeout=5_000)
    member_id = int((member.get_attribute("data-testid") or "").removeprefix("incident-member-"))
    member = card.get_by_test_id(f"incident-member-{member_id}")
    member.get_by_test_id("resolve-button").click()
    member.get_by_test_id("reason-input").fill("Cell outage reported to the operator of the mast")
    member.get_by_test_id("resolve-confirm").click()
    error = member.get_by_test_id("alert-error")
    page.wait_for_function(
        """(id) => { const m = document.querySelector(`[data-testid="incident-member-${id}"]`);
                     return !m || !m.querySelector('[data-testid="alert-error"]').hidden; }""",
        arg=member_id, timeout=5_000)
    if member.count() and "still holds" in (error.text_content() or ""):
        member.get_by_test_id("resolve-anyway").click()
    expect(page.get_by_test_id(f"incident-member-{member_id}")).to_have_count(0, timeout=5_000)
    expect(page.get_by_test_id(f"alert-{member_id}")).to_have_count(0)
    resolved = page.get_by_test_id(f"resolved-alert-{member_id}")
    expect(resolved).to_have_count(1, timeout=5_000)
    expect(resolved).to_contain_text("in an incident on")
    assert hub.get(f"/api/alerts/{member_id}").json()["alert"]["state"] == "resolved"

    hub.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert time.monotonic() - started < 120, "the walk took far longer than it should"


def test_the_cue_acknowledges_the_incident_as_a_whole(demo: DemoProcess, page: Page) -> None:
    """The mast dark (through the API this time) → the takeover cue's own Acknowledge
    acknowledges the incident, every member at once, not just one vehicle's alert."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    hub = _on_duty(demo, page)
    for cell in MAST:
        hub.post("/api/demo/cell-outage", json={"cell": cell, "duration_s": 40}).raise_for_status()
    inc = _one_incident(page)
    incident_id = int(inc["testid"].removeprefix("incident-"))
    cue = page.get_by_test_id("takeover-cue")
    expect(cue).to_have_attribute("data-incident", str(incident_id))
    before = [m["id"] for m in _card(page, incident_id)["members"]]
    page.get_by_test_id("takeover-ack").click()
    _acknowledged(page, incident_id, before)
    acked = {a["id"]: a for a in hub.get(f"/api/incidents/{incident_id}").json()["alerts"]}
    assert all(acked[i]["state"] in ("acknowledged", "resolved") for i in before), acked
    assert sum(acked[i]["state"] == "acknowledged" for i in before) >= 2
    hub.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
