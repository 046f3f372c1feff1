"""Commands from the console, in a real headless Chromium against a real ``l4mon demo`` whose
simulated shuttles obey and answer (scenarios/sim/obey.py).

An operator on duty for three of four shuttles stops one and sees the stop confirmed step by
step; resumes one whose takeover cause still holds, is told so before anything is sent,
overrides with a reason and sees the vehicle refuse; commands one that is deaf to commands
and sees "not confirmed" with its urgent alert; and cannot command the fourth, which the panel
says is not theirs. With 100 shuttles the panel is looked at again. Screenshots at 1280x800 and
1920x1080 land in ``test-artifacts/console-commands/``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import msgspec
import pytest

from telemetry.topics import state_topic
from telemetry.wire import VehicleState
from testing.broker import Broker
from testing.demo import ROOT, DemoProcess, chromium_page, running_demo
from testing.hub import TEST_TOKEN, running_hub
from tests.mqtt_publish import Publisher
from tests.parts import import_part, needs
from tests.test_console_fleet100 import TRUNCATED_JS

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

expect = import_part("playwright.sync_api").expect

pytestmark = needs("chromium")

ARTIFACTS = ROOT / "test-artifacts" / "console-commands"
STOPPED, ASKS, DEAF, NOT_MINE = "shuttle-01", "shuttle-02", "shuttle-03", "shuttle-04"
KINDS = ("stop", "pull_over", "resume", "message")


def _shots(page: Page, name: str) -> None:
    """Screenshots at both sizes, nothing cut off without a tooltip in either."""
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)
        assert page.evaluate(TRUNCATED_JS) == [], f"{name} at {width}x{height}: text cut off"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def _signed_in(demo: DemoProcess, page: Page, fleet: int) -> httpx.Client:
    """The console open as the demo's operator, every shuttle listed; the same token's API."""
    link = demo.login_link()
    token = re.search(r"#token=(\S+)", link).group(1)  # type: ignore[union-attr]
    page.goto(link)
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    expect(page.locator("table.fleet tbody.vrow")).to_have_count(fleet, timeout=30_000)
    return httpx.Client(base_url=demo.base, headers={"Authorization": f"Bearer {token}"},
                        timeout=5)


def _select(page: Page, vehicle: str) -> Locator:
    """The vehicle picked by hand in the fleet table; its command box."""
    page.get_by_test_id(f"vehicle-row-{vehicle}").click()
    expect(page.locator("#vp-title")).to_have_attribute("data-vehicle", vehicle)
    box = page.get_by_test_id("vehicle-commands")
    expect(box).to_be_visible()
    return box


def _newest(box: Locator) -> Locator:
    return box.get_by_test_id("cmd-list").locator("li").first


def _buttons_enabled(box: Locator) -> list[bool]:
    return [box.get_by_test_id(f"cmd-{kind}").is_enabled() for kind in KINDS]


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(1280, 800) as opened:
        yield opened


@pytest.fixture(scope="module")
def artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)


def test_stop_confirmed_resume_refused_a_deaf_vehicle_and_one_not_mine(
        page: Page, artifacts: None) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with running_demo(vehicles=4, duration=240) as demo:
        api = _signed_in(demo, page, 4)

        # -- off duty: nothing to press, and the panel says why
        box = _select(page, STOPPED)
        assert _buttons_enabled(box) == [False] * 4
        expect(box.get_by_test_id("cmd-why")).to_have_text(
            "Go on duty for this vehicle to command it.")

        # -- on duty for three of the four (the API takes a subset; the console follows)
        api.post("/api/duty/on", json={"vehicles": [STOPPED, ASKS, DEAF]}).raise_for_status()
        expect(box.get_by_test_id("cmd-stop")).to_be_enabled(timeout=5_000)
        expect(box.get_by_test_id("cmd-why")).to_be_hidden()

        # -- not mine: disabled, with the reason; the hub would refuse it too
        mine_not = _select(page, NOT_MINE)
        assert _buttons_enabled(mine_not) == [False] * 4
        expect(mine_not.get_by_test_id("cmd-why")).to_have_text(
            f"You are on duty, but not for {NOT_MINE}: cover it to command it.")
        refused = api.post(f"/api/vehicles/{NOT_MINE}/commands", json={"kind": "stop"})
        assert refused.status_code == 403, refused.text

        # -- stop: sent at once, then received → executing → done, as the vehicle answers
        box = _select(page, STOPPED)
        box.get_by_test_id("cmd-stop").click()
        row = _newest(box)
        expect(row).to_have_attribute("data-kind", "stop", timeout=5_000)
        expect(row).to_have_attribute("data-state", "done", timeout=30_000)
        expect(row.get_by_test_id("cmd-detail")).to_contain_text("standing still")
        expect(row.locator(".cmd-step.on")).to_have_count(4)
        (stop,) = [c for c in api.get("/api/commands", params={"vehicle": STOPPED}).json()
                   if c["kind"] == "stop"]
        assert stop["issued_by"] == "demo-operator" and stop["state"] == "done"
        steps = api.get(f"/api/commands/{stop['id']}").json()["steps"]
        assert [s["state"] for s in steps] == ["issued", "sent", "received", "executing", "done"]
        assert row.get_attribute("data-testid") == f"cmd-{stop['id']}"
        _shots(page, "01-stop-done")

        # -- resume while the takeover cause holds: asked twice, told before sending, then
        # overridden with a reason, and the vehicle itself refuses
        page.get_by_test_id("fault-vehicle").select_option(ASKS)
        page.get_by_test_id("fault-duration").fill("120")
        page.get_by_test_id("fault-takeover_request").click()
        expect(page.locator(f"#alert-queue [data-vehicle='{ASKS}']").first).to_be_visible(
            timeout=10_000)
        box = _select(page, ASKS)
        box.get_by_test_id("cmd-resume").click()
        confirm = box.get_by_test_id("cmd-confirm")
        expect(confirm).to_have_attribute("data-ask", "confirm")
        expect(box.get_by_test_id("cmd-question")).to_have_text(
            f"Resume {ASKS}? It drives on autonomously.")
        assert api.get("/api/commands", params={"vehicle": ASKS}).json() == []
        box.get_by_test_id("cmd-go").click()
        expect(confirm).to_have_attribute("data-ask", "override", timeout=5_000)
        expect(box.get_by_test_id("cmd-question")).to_contain_text(
            "may not resume while its takeover cause holds")
        assert api.get("/api/commands", params={"vehicle": ASKS}).json() == []  # nothing sent
        box.get_by_test_id("cmd-input").fill("cleared the blocked lane on camera")
        box.get_by_test_id("cmd-go").click()
        row = _newest(box)
        expect(row).to_have_attribute("data-kind", "resume", timeout=5_000)
        expect(row).to_have_attribute("data-state", "refused", timeout=15_000)
        expect(row.get_by_test_id("cmd-final")).to_have_text("refused")
        expect(row.get_by_test_id("cmd-detail")).to_contain_text(
            "the fault that stopped the vehicle still acts")
        expect(confirm).to_be_hidden()
        (resume,) = api.get("/api/commands", params={"vehicle": ASKS}).json()
        assert resume["override"] == "cleared the blocked lane on camera"
        _shots(page, "02-resume-refused")

        # -- a vehicle deaf to commands: no answer in time is "not confirmed", and urgent
        page.get_by_test_id("fault-vehicle").select_option(DEAF)
        page.get_by_test_id("fault-duration").fill("120")
        page.get_by_test_id("fault-deaf_to_commands").click()
        box = _select(page, DEAF)
        box.get_by_test_id("cmd-pull_over").click()
        row = _newest(box)
        expect(row).to_have_attribute("data-kind", "pull_over", timeout=5_000)
        expect(row).to_have_attribute("data-state", "not_confirmed", timeout=15_000)
        expect(row.get_by_test_id("cmd-final")).to_have_text("not confirmed")
        expect(row.get_by_test_id("cmd-detail")).to_contain_text("assume the vehicle did not act")
        expect(page.locator(
            f"#alert-queue [data-rule='command_not_confirmed'][data-vehicle='{DEAF}']").first
        ).to_be_visible(timeout=10_000)
        _shots(page, "03-not-confirmed")

        # -- a message to the passengers: the text is asked for, then shown as sent
        box = _select(page, STOPPED)
        box.get_by_test_id("cmd-message").click()
        expect(box.get_by_test_id("cmd-confirm")).to_have_attribute("data-ask", "text")
        box.get_by_test_id("cmd-input").fill("We stop briefly; an operator is with you.")
        box.get_by_test_id("cmd-input").press("Enter")
        row = _newest(box)
        expect(row).to_have_attribute("data-kind", "message", timeout=5_000)
        expect(row).to_have_attribute("data-state", "done", timeout=15_000)

    assert not errors, f"JavaScript errors on the page: {errors}"


def test_a_cut_off_vehicle_is_said_out_of_reach_before_sending_and_can_be_sent_anyway(
        page: Page, artifacts: None) -> None:
    """With 100 shuttles: the panel says a cut-off vehicle is out of reach before anything is
    sent; "Send anyway" queues the stop (the hub's force), which waits for the vehicle."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    cut_off = "shuttle-042"
    with running_demo(vehicles=100, duration=240) as demo:
        api = _signed_in(demo, page, 100)
        page.get_by_test_id("duty-on").click()
        expect(page.get_by_test_id("duty-list")).to_contain_text("demo-operator")
        page.get_by_test_id("fault-vehicle").select_option(cut_off)
        page.get_by_test_id("fault-duration").fill("120")
        page.get_by_test_id("fault-both_links_down").click()
        box = _select(page, cut_off)
        expect(box).to_have_attribute("data-reach", "out", timeout=15_000)
        expect(box.get_by_test_id("cmd-why")).to_contain_text("Out of reach: both links down")
        box.get_by_test_id("cmd-stop").click()
        expect(box.get_by_test_id("cmd-confirm")).to_have_attribute("data-ask", "force")
        expect(box.get_by_test_id("cmd-go")).to_have_text("Send anyway")
        assert api.get("/api/commands", params={"vehicle": cut_off}).json() == []
        _shots(page, "04-fleet100-out-of-reach")
        box.get_by_test_id("cmd-go").click()
        row = _newest(box)
        expect(row).to_have_attribute("data-kind", "stop", timeout=5_000)
        (stop,) = api.get("/api/commands", params={"vehicle": cut_off}).json()
        steps = api.get(f"/api/commands/{stop['id']}").json()["steps"]
        assert "both links are down" in steps[0]["detail"], steps
        _shots(page, "05-fleet100-sent-anyway")
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.mark.mqtt
def test_a_viewer_sees_no_enabled_command_button(broker: Broker, tmp_path: Path,
                                                 page: Page) -> None:
    """A real ``l4mon serve`` on a real broker, signed in with a viewer's token: the vehicle's
    buttons are disabled and say why, and the hub refuses the command as well (403)."""
    with running_hub(broker, tmp_path, role="viewer") as hub, \
            Publisher(broker.host, broker.port) as pub:
        for seq in range(20):
            pub.publish(state_topic("s", "shuttle-07"), msgspec.json.encode(VehicleState(
                ts=time.time(), seq=seq, lat=36.0, lon=136.0, speed_mps=5.0, heading_deg=0.0,
                mode="autonomous")))
            time.sleep(0.05)
        hub.wait_for(lambda: len(hub.json("/api/vehicles")) == 1, what="the vehicle")
        page.goto(f"http://127.0.0.1:{hub.port}/#token={TEST_TOKEN}")
        expect(page.locator("table.fleet tbody.vrow")).to_have_count(1, timeout=15_000)
        box = _select(page, "shuttle-07")
        assert _buttons_enabled(box) == [False] * 4
        expect(box.get_by_test_id("cmd-why")).to_have_text(
            "You are signed in as a viewer: viewers cannot command vehicles.")
        refused = hub.http.post("/api/vehicles/shuttle-07/commands", json={"kind": "stop"})
        assert refused.status_code == 403, refused.text
