"""The console's alert history: read from the journal, paged and bounded, so
it reaches back hours (a previous shift) and survives a restart of the hub.

In-process first: ``GET /api/history/alerts`` pages back through every alert of a journal
without a gap or a repeat, filters, and refuses an unbounded or malformed page. Then a real
``l4mon serve`` on a real broker: a journal that holds a shift from three hours ago, alerts
raised live over MQTT and resolved by an operator, the hub restarted; a headless Chromium
opened afterwards shows all of them in the History tab, newest first, a page at a time.
Screenshots at 1280x800 and 1920x1080 land in ``test-artifacts/console-history/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import msgspec
import pytest

from l4mon.assembly import build_hub, build_runtime
from l4mon.auth import hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.records.alert import Alert
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.asgi import request
from testing.broker import Broker, free_port
from testing.demo import CHROMIUM, CHROMIUM_ARGS, ROOT
from testing.hub import TEST_TOKEN, launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher
from tests.parts import needs

ARTIFACTS = ROOT / "test-artifacts" / "console-history"
TOKEN = "history-token"
#: A shift three hours ago: far beyond the ten minutes the hub keeps in memory.
OLD_SHIFT = 3 * 3600.0
OLD_ALERTS = 70


def _old_shift(journal_location: str, start: float, count: int) -> list[int]:
    """``count`` alerts raised a minute apart from ``start``, each resolved by an operator
    with a reason, journaled as the engine journals them; their ids."""
    journal = open_journal(journal_location)
    ids = []
    try:
        for n in range(count):
            raised = start + 60.0 * n
            alert = Alert(id=0, rule="rtt_over_budget", title="Round trip over budget",
                          severity="takeover" if n % 7 == 0 else "warning", site="s",
                          vehicle=f"shuttle-{n % 10:03d}", link="l5g", rsu=None,
                          state="raised", raised_at=raised, detail="rtt_p95_ms=420",
                          last_raised_at=raised)
            journal.new_alert(alert, kind="raised", at=raised, actor=None, detail="raised",
                              on_duty=["night-operator"])
            alert.state, alert.resolved_at = "resolved", raised + 30.0
            alert.resolved_by, alert.resolve_reason = "night-operator", f"old shift case {n}"
            journal.record(alert, kind="resolved", at=raised + 30.0, actor="night-operator",
                           detail=alert.resolve_reason, on_duty=["night-operator"])
            ids.append(alert.id)
    finally:
        journal.close()
    return ids


# ---------------------------------------------------------------- the route, in-process

@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    location = str(tmp_path / "journal.sqlite")
    now = 1_700_000_000.0
    _old_shift(location, now - OLD_SHIFT, 120)
    config = config_from_dict({"alerts": {"journal": location}, "auth": {"tokens": [
        {"name": "viewer", "role": "viewer", "sha256": hash_token(TOKEN)}]}})
    return build_runtime(config, clock=ManualClock(now), hub=build_hub(config))


def _page(runtime: Runtime, **params: object) -> httpx.Response:
    return request(runtime, "GET", "/api/history/alerts", token=TOKEN, params=params)


def test_pages_reach_every_alert_once_newest_first(runtime: Runtime) -> None:
    journal = runtime.hub.alerts.journal  # type: ignore[union-attr]
    every = [a.id for a in journal.alerts(limit=10_000)]
    assert len(every) == 120
    seen: list[int] = []
    sizes = []
    before = None
    while True:
        body = _page(runtime, limit=50, **({"before": before} if before else {})).json()
        sizes.append(len(body["alerts"]))
        seen += [a["id"] for a in body["alerts"]]
        before = body["next_before"]
        if before is None:
            break
    assert sizes == [50, 50, 20]
    assert seen == every == sorted(every, reverse=True)  # no gap, no repeat, newest first
    first = _page(runtime, limit=1).json()["alerts"][0]
    assert first["resolve_reason"] == "old shift case 119" and first["state"] == "resolved"


def test_filters_and_bounds(runtime: Runtime) -> None:
    one = _page(runtime, vehicle="shuttle-003", limit=200).json()["alerts"]
    assert len(one) == 12 and {a["vehicle"] for a in one} == {"shuttle-003"}
    takeovers = _page(runtime, severity="takeover", limit=200).json()["alerts"]
    assert len(takeovers) == len(range(0, 120, 7))
    assert _page(runtime, state="open").json() == {"alerts": [], "next_before": None,
                                                    "limit": 50}
    for bad in ({"limit": 201}, {"limit": 0}, {"before": 0}, {"severity": "loud"},
                {"state": "maybe"}, {"vehicle": "x" * 65}):
        assert _page(runtime, **bad).status_code == 422, bad
    assert request(runtime, "GET", "/api/history/alerts").status_code == 401


# ---------------------------------------------------------------- the console, across a restart

@pytest.mark.mqtt
@needs("chromium", "playwright")
def test_history_tab_reads_the_journal_after_a_restart(broker: Broker, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    journal = tmp_path / "journal.sqlite"
    old_ids = _old_shift(str(journal), time.time() - OLD_SHIFT, OLD_ALERTS)
    config, log, port = write_hub_config(tmp_path, journal=journal), tmp_path / "hub.log", \
        free_port()
    hub = launch_hub(broker, config, log, port)
    try:
        with Publisher(broker.host, broker.port) as pub:
            for n, vehicle in enumerate(("shuttle-041", "shuttle-042", "shuttle-043")):
                pub.publish(event_topic("s", vehicle), msgspec.json.encode(VehicleEvent(
                    ts=time.time(), kind="takeover_request", seq=n)), qos=1)
        hub.wait_for(lambda: len(hub.json("/api/alerts", state="open")) == 3,
                     what="three takeover requests")
        live = {a["vehicle"]: a["id"] for a in hub.json("/api/alerts", state="open")}
        hub.http.post(f"/api/alerts/{live['shuttle-042']}/resolve",
                      json={"reason": "passenger pressed by mistake"}).raise_for_status()
    finally:
        stop_hub(hub)

    hub = launch_hub(broker, config, log, port)  # a new process: nothing held in memory
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{port}/#token={TEST_TOKEN}")
                expect(page.get_by_test_id("tab-history")).to_be_visible(timeout=15_000)
                page.get_by_test_id("tab-history").click()
                rows = page.locator("[data-testid='history-table'] tr.hv-row")
                expect(rows).to_have_count(50, timeout=10_000)
                ids = [int(r.get_attribute("data-testid").rsplit("-", 1)[1])
                       for r in rows.all()]
                assert ids == sorted(ids, reverse=True)
                assert ids[:3] == sorted(live.values(), reverse=True)  # the newest first
                resolved = page.get_by_test_id(f"history-alert-{live['shuttle-042']}")
                expect(resolved).to_contain_text("passenger pressed by mistake")
                expect(resolved).to_have_attribute("data-state", "resolved")
                expect(page.get_by_test_id(f"history-alert-{live['shuttle-041']}")) \
                    .to_have_attribute("data-state", "raised")
                page.screenshot(path=str(ARTIFACTS / "01-history-1280x800.png"))

                # Older pages: back to the shift three hours ago, its first alert included.
                older = page.get_by_test_id("history-older")
                expect(older).to_be_visible()
                older.click()
                expect(rows).to_have_count(OLD_ALERTS + 3, timeout=10_000)
                expect(older).to_be_hidden()
                expect(page.get_by_test_id("history-note")).to_contain_text("(all of them)")
                first = page.get_by_test_id(f"history-alert-{old_ids[0]}")
                expect(first).to_contain_text("old shift case 0")
                expect(first).to_contain_text("resolved by night-operator")

                # One vehicle's history, from the journal.
                page.get_by_test_id("history-vehicle").fill("shuttle-003")
                page.get_by_test_id("history-vehicle").press("Enter")
                expect(rows).to_have_count(len(range(3, OLD_ALERTS, 10)), timeout=10_000)
                page.set_viewport_size({"width": 1920, "height": 1080})
                page.wait_for_timeout(500)
                page.screenshot(path=str(ARTIFACTS / "02-history-vehicle-1920x1080.png"))
            finally:
                browser.close()
    finally:
        stop_hub(hub)
    assert not errors, f"JavaScript errors on the page: {errors}"
