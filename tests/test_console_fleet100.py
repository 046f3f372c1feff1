"""A console that holds a real fleet: 100 vehicles on one site.

In a real headless Chromium against a real ``l4mon demo --vehicles 100``, at 1280x800 and
1920x1080: the fleet table puts whoever needs a human first and keeps its order otherwise,
the plot's labels never overlap and it has a scale bar, the charts of a vehicle opened later
reach back before the page was loaded (the hub's own history), with labelled threshold and
requirement lines, codes appear as operator words, toasts stay off the figures, no text is
cut off without a tooltip, and the console's own per-frame cost is measured. Screenshots land
in ``test-artifacts/console-100/``. The hub's history itself is checked in-process first.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from itertools import pairwise

import httpx
import msgspec
import pytest

from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.faces.api.app import create_app
from l4mon.history import History
from l4mon.hub import Hub
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from telemetry.topics import link_topic, state_topic
from telemetry.wire import LinkSample, VehicleState
from testing.demo import CHROMIUM, CHROMIUM_ARGS, ROOT, DemoProcess, running_demo
from tests.parts import needs

ARTIFACTS = ROOT / "test-artifacts" / "console-100"
VEHICLES = 100
VICTIM = "shuttle-073"
NOW = 1_700_000_000.0
TOKEN = "fleet100-token"

browser_only = needs("chromium", "playwright")


# ---------------------------------------------------------------- the hub's history, in-process

def _hub_with(vehicles: int, now: float) -> Hub:
    hub = Hub(store=open_journal(":memory:"))
    batch = []
    for v in range(vehicles):
        vid = f"veh-{v}"
        for seq in range(20):
            ts = now - 2 + seq * 0.1
            batch.append((state_topic("s", vid), msgspec.json.encode(VehicleState(
                ts=ts, seq=seq, lat=36.06, lon=136.34, speed_mps=5.0, heading_deg=0.0,
                mode="autonomous")), None))
            for link in ("l5g", "lte"):
                batch.append((link_topic("s", vid, link), msgspec.json.encode(LinkSample(
                    ts=ts, seq=seq, rat="nr" if link == "l5g" else "lte", cell_id="c1",
                    rsrp_dbm=-80.0, rtt_ms=20.0 + seq % 3, ul_kbps=9_000.0)), None))
    hub.ingest(batch, now)
    hub.tick(now)
    return hub


def test_history_is_one_point_a_second_for_ten_minutes_and_bounded() -> None:
    """Fed at every 0.25 s tick for 15 minutes: one point a second per link, only the last
    10 minutes served, and each link's ring never grows past its fixed capacity."""
    hub = _hub_with(3, NOW)
    history = History(max_vehicles=3)
    now = NOW
    for _ in range(15 * 60 * 4):
        history.record(now, hub.fleet, ["veh-0", "veh-1"])  # the tick loop's chunks
        history.record(now, hub.fleet, ["veh-2"])
        now += 0.25
    small = History(max_vehicles=2)
    small.record(now, hub.fleet)
    assert len(history) == 3 and len(small) == 2  # never more vehicles than max_vehicles
    view = history.view("veh-2", now)
    for link in ("l5g", "lte"):
        t = view["links"][link]["t"]
        assert now - 600.5 <= t[0] and t[-1] <= now
        steps = {round(b - a, 2) for a, b in pairwise(t)}
        assert steps == {1.0}, steps
        assert len(t) == 600
        assert view["links"][link]["rtt_p95_ms"][-1] is not None
        assert view["links"][link]["ul_kbps"][-1] == 9_000.0
        assert set(view["links"][link]["state"]) <= {"ok", "degraded", "down", "stale"}
    ring = history._vehicles["veh-2"].links["l5g"]
    assert len(ring.t) == history.capacity and ring.size == history.capacity
    assert history.view("nobody", now)["links"] == {}


def test_history_route_is_documented_shape_404_and_token() -> None:
    """GET /api/vehicles/{id}/history: the points, the uplink requirement and the RTT lines;
    404 for a vehicle the hub never heard of; 401 without a token."""
    clock = ManualClock(NOW)
    hub = _hub_with(1, NOW)
    runtime = Runtime(hub=hub, clock=clock, tokens=TokenStore([("t", "viewer",
                                                                 hash_token(TOKEN))]))
    for _ in range(30):
        runtime.history.record(clock.now(), hub.fleet)
        clock.advance(1.0)

    async def get(path: str, token: str | None = TOKEN) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers=headers) as client:
            return await client.get(path)

    body = asyncio.run(get("/api/vehicles/veh-0/history")).json()
    assert body["vehicle"] == "veh-0" and body["span_s"] == 600.0
    assert body["ul_required_kbps"] == 8_000.0
    assert body["thresholds"] == {"rtt_p95_ms": {"degraded": 150.0, "down": 1000.0}}
    assert set(body["links"]) == {"l5g", "lte"}
    assert len(body["links"]["l5g"]["t"]) == 30
    assert set(body["links"]["l5g"]) == {"t", "rtt_p95_ms", "ul_kbps", "state"}
    missing = asyncio.run(get("/api/vehicles/nobody/history"))
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert asyncio.run(get("/api/vehicles/veh-0/history", token=None)).status_code == 401


# ---------------------------------------------------------------- the console, in Chromium

@pytest.fixture
def fleet_demo() -> Iterator[DemoProcess]:
    """``l4mon demo --vehicles 100`` as a child process."""
    with running_demo(vehicles=VEHICLES, duration=150) as running:
        yield running


#: The table's rows in order, with the rank each carries (0 = open takeover alert).
ORDER_JS = """() => [...document.querySelectorAll('table.fleet tbody.vrow')]
  .map((tb) => [tb.dataset.vehicle, Number(tb.dataset.rank)])"""

#: Bounding boxes of every visible text on the site plot (vehicle, site and scale-bar labels).
LABELS_JS = """() => [...document.querySelectorAll('#plot text')].filter((t) => {
    const s = getComputedStyle(t);
    return s.display !== 'none' && s.visibility !== 'hidden' && t.textContent.trim() &&
      t.getClientRects().length > 0;
  }).map((t) => { const r = t.getBoundingClientRect();
    return [t.textContent, t.getAttribute('class') || '', r.left, r.top, r.right, r.bottom]; })"""

#: Text cut off (ellipsis or clipped by its box) with no tooltip on it or around it.
TRUNCATED_JS = """() => {
  const out = [];
  for (const e of document.querySelectorAll('#app *')) {
    if (!e.childNodes.length || e.closest('[hidden]') || e.closest('svg')) continue;
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.data.trim());
    if (!own) continue;
    const s = getComputedStyle(e);
    if (s.display === 'none' || s.overflowX === 'visible') continue;
    if (e.scrollWidth <= e.clientWidth + 1) continue;
    if (e.closest('[title]') && e.closest('[title]').title) continue;
    out.push(`${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 60)}`);
  }
  return out;
}"""


def _overlaps(labels: list[list]) -> list[tuple[str, str]]:
    bad = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if a[2] < b[4] - 0.5 and b[2] < a[4] - 0.5 and a[3] < b[5] - 0.5 and b[3] < a[5] - 0.5:
                bad.append((a[0], b[0]))
    return bad


def _check_plot(page, where: str) -> list[list]:
    labels = page.evaluate(LABELS_JS)
    assert not _overlaps(labels), f"{where}: plot labels overlap: {_overlaps(labels)[:5]}"
    vehicle_labels = [lb for lb in labels if "veh-label" in lb[1]]
    assert len(vehicle_labels) >= 15, f"{where}: only {len(vehicle_labels)} vehicle labels shown"
    bar = page.get_by_test_id("plot-scale-bar")
    assert re.fullmatch(r"\d+ k?m", bar.locator(".sb-text").text_content() or ""), where
    return labels


def _check_order(samples: list[list[list]]) -> None:
    for order in samples:
        assert len(order) == VEHICLES
        assert order == sorted(order, key=lambda r: (r[1], r[0])), "rows not by (need, id)"
    for a, b in pairwise(samples):
        rank_a, rank_b = dict(map(tuple, a)), dict(map(tuple, b))
        same = [v for v, _ in a if rank_a[v] == rank_b[v]]
        kept = set(same)
        assert [v for v, _ in a if v in kept] == [v for v, _ in b if v in kept], \
            "vehicles whose need did not change moved between frames"


def _apply_p95(page) -> tuple[int, float]:
    perf = page.evaluate("window.l4monPerf()")
    times = sorted(perf["apply_ms"][3:])  # after the first frames (page start-up)
    return len(times), times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0


def _panels_clear_of_toasts(page) -> None:
    """Every toast's box lies outside the plot, alert list, fleet table and charts."""
    boxes = page.evaluate("""() => {
      const box = (e) => {
        const r = e.getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom];
      };
      const figs = ['#plot', '#alert-queue', '#fleet-view', '#chart-rtt', '#chart-ul',
                    '#ho-timeline'].map((s) => document.querySelector(s)).filter(Boolean).map(box);
      return { toasts: [...document.querySelectorAll('.toast')].map(box), figs };
    }""")
    for t in boxes["toasts"]:
        for f in boxes["figs"]:
            assert not (t[0] < f[2] and f[0] < t[2] and t[1] < f[3] and f[1] < t[3]), (t, f)


@browser_only
def test_console_holds_a_fleet_of_100(fleet_demo: DemoProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    link = fleet_demo.login_link()
    demo_up = time.time()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # -- 1280x800: the whole fleet, ordered by need, labels that never overlap
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(link)
            expect(page.locator("table.fleet tbody.vrow")).to_have_count(VEHICLES, timeout=20_000)
            expect(page.get_by_test_id("live-status")).to_have_text("LIVE", timeout=10_000)
            page.get_by_test_id("duty-on").click()
            expect(page.get_by_test_id("duty-list")).to_contain_text("demo-operator")
            samples = []
            frames0 = page.evaluate("window.l4monPerf().frames")
            for _ in range(6):
                page.wait_for_timeout(600)
                samples.append(page.evaluate(ORDER_JS))
            assert page.evaluate("window.l4monPerf().frames") >= frames0 + 4, "no state frames"
            _check_order(samples)
            _check_plot(page, "1280x800")
            assert page.evaluate(TRUNCATED_JS) == []
            page.screenshot(path=str(ARTIFACTS / "01-fleet-1280x800.png"))

            # -- a fault from the demo controls: the vehicle goes to the top of the table
            page.get_by_test_id("fault-vehicle").select_option(VICTIM)
            page.get_by_test_id("fault-duration").fill("25")
            page.get_by_test_id("fault-both_links_down").click()
            first = page.locator("table.fleet tbody.vrow").first
            expect(first).to_have_attribute("data-vehicle", VICTIM, timeout=10_000)
            expect(first).to_have_attribute("data-rank", "0")
            order = page.evaluate(ORDER_JS)
            ranks = [r for _, r in order]
            assert ranks == sorted(ranks) and ranks[0] == 0
            assert order == sorted(order, key=lambda r: (r[1], r[0]))
            expect(page.locator(f"#plot text.veh-label[data-vehicle='{VICTIM}']")).to_be_visible()
            # Operator words, not codes: the alert's detail, the link reasons.
            alert = page.get_by_test_id("alert-queue").locator(
                f"[data-rule='both_links_down'][data-vehicle='{VICTIM}']").first
            expect(alert).to_contain_text("both links down", timeout=10_000)
            expect(alert).not_to_contain_text("all_links_down")
            first.click()
            reasons = page.get_by_test_id("vehicle-panel").get_by_test_id("link-reasons")
            expect(reasons.first).to_contain_text(
                re.compile("no service|no sample for|no probe answer"), timeout=8_000)
            assert "_" not in (reasons.first.text_content() or "")
            page.wait_for_timeout(600)
            _check_plot(page, "1280x800 with a takeover")
            _panels_clear_of_toasts(page)
            assert page.evaluate(TRUNCATED_JS) == []
            page.screenshot(path=str(ARTIFACTS / "02-takeover-1280x800.png"))
            n, p95 = _apply_p95(page)
            print(f"1280x800: state-frame apply p95 {p95:.2f} ms over {n} frames")
            assert n >= 5
            # The bench (bench/console_frames.py) holds the 8 ms target; here a wide margin,
            # since this machine also runs the hub and the browser's start-up.
            assert p95 < 25.0, f"applying a state frame took {p95:.1f} ms (p95)"
            context.close()

            # -- 1920x1080, loaded once the demo has run ~20 s: the charts reach back before
            # the page was loaded, with the threshold and requirement lines labelled.
            time.sleep(max(0.0, demo_up + 20.0 - time.time()))
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            loaded_at = time.time()
            page.goto(link)
            expect(page.locator("table.fleet tbody.vrow")).to_have_count(VEHICLES, timeout=20_000)
            opened = "shuttle-010"
            page.get_by_test_id(f"vehicle-row-{opened}").click()
            rtt = page.get_by_test_id("chart-rtt")
            expect(rtt).to_have_attribute("data-vehicle", opened)
            expect(rtt).to_have_attribute("data-first-t", re.compile(r"\d"), timeout=8_000)
            deadline = time.monotonic() + 8
            first_t = float(rtt.get_attribute("data-first-t") or "inf")
            while first_t > loaded_at - 10 and time.monotonic() < deadline:
                page.wait_for_timeout(250)
                first_t = float(rtt.get_attribute("data-first-t") or "inf")
            assert first_t < loaded_at - 10, (first_t, loaded_at)
            lines = {kind: rtt.locator(f"[data-testid='chart-threshold'][data-kind='{kind}']")
                     for kind in ("rtt_degraded", "rtt_down")}
            expect(lines["rtt_degraded"].locator("line")).to_have_count(1)
            expect(lines["rtt_degraded"]).to_contain_text("150 ms")
            expect(lines["rtt_down"]).to_contain_text("1000 ms")
            ul = page.get_by_test_id("chart-ul").locator(
                "[data-testid='chart-threshold'][data-kind='ul_required']")
            expect(ul.locator("line")).to_have_count(1)
            expect(ul).to_contain_text("8.0 Mbit/s")
            page.wait_for_timeout(1200)
            _check_plot(page, "1920x1080")
            assert page.evaluate(TRUNCATED_JS) == []
            _panels_clear_of_toasts(page)
            page.screenshot(path=str(ARTIFACTS / "03-history-1920x1080.png"))
            n, p95 = _apply_p95(page)
            print(f"1920x1080: state-frame apply p95 {p95:.2f} ms over {n} frames")
            context.close()
        finally:
            browser.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert time.monotonic() - started < 60, "the walk took far longer than it should"
