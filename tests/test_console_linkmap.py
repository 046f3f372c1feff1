"""The link map seen by people: ``GET /api/linkmap`` in-process on a small map made by hand,
then the console's map layer in a real headless Chromium against ``l4mon demo --linkmap``
on a map built from simulated drives with a weak spot on the east leg.

Screenshots land in ``test-artifacts/console-linkmap/`` for a human to look at.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import l4mon.faces.api.linkmap as linkmap_api
from l4mon.assembly import build_hub
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.hub import Hub
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from telemetry.linkmap import Grid, LinkMap, write_map
from telemetry.site import distance_m
from testing.asgi import request
from testing.demo import CHROMIUM, CHROMIUM_ARGS, DemoProcess
from tests.parts import needs

NOW = 1_767_225_600.0
TOKEN = "linkmap-test-token"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console-linkmap"


# ---------------------------------------------------------------- the API, in-process

def _small_map() -> LinkMap:
    """Four l5g cells east of the origin and one lte cell, under two conditions: each row
    below says what it is there to show."""
    lm = LinkMap(Grid(36.06, 136.34, 25.0))
    own = lm.row((0, 0), "l5g", "snow", "daylight")  # weak in its own condition: 3 of 4
    own.passes, own.passes_unfit, own.outage_starts = 4, 3, 2
    own.passes_impaired = 3  # a v4 map: impaired counts every unfit pass
    own.time_ok_s, own.time_down_s = 30.0, 10.0
    for rtt in (20.0, 40.0, 60.0, 400.0):
        own.rtt.add(rtt)
    for kbps in (2_000.0, 9_000.0, 9_000.0, 9_000.0):
        own.ul.add(kbps)
    thin = lm.row((1, 0), "l5g", "snow", "daylight")  # 1 pass by snow: pooled with rain
    thin.passes, thin.passes_unfit, thin.passes_impaired = 1, 1, 1
    rain = lm.row((1, 0), "l5g", "rain", "night")
    rain.passes = 3
    lone = lm.row((2, 0), "l5g", "rain", "night")  # one pass in all: not enough
    lone.passes = 1
    far = lm.row((40, 0), "l5g", "snow", "daylight")  # a kilometre east
    far.passes, far.passes_unfit, far.passes_impaired = 2, 2, 2
    lte = lm.row((0, 1), "lte", "snow", "daylight")
    lte.passes = 2
    return lm


@pytest.fixture
def map_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A hub looking ahead on ``_small_map`` under snow by day (fixed, not from the sun)."""
    write_map(tmp_path / "map", _small_map())
    config = config_from_dict({
        "alerts": {"journal": str(tmp_path / "journal.sqlite")},
        "linkmap": {"path": str(tmp_path / "map"), "weather": "snow", "light": "daylight"}})
    hub = build_hub(config)
    yield Runtime(hub=hub, clock=ManualClock(NOW),
                  tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))
    assert hub.alerts is not None
    hub.alerts.journal.close()


def _get(runtime: Runtime, path: str, *, token: str | None = TOKEN,
         **params: object) -> httpx.Response:
    return request(runtime, "GET", path, token=token, params=params)


def _cells(body: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """The columns as one dict per cell, by index."""
    cols = body["cells"]
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    return {(r["x"], r["y"]): r for r in rows}


def test_no_map_is_404_and_says_how_to_get_one() -> None:
    """A hub without [linkmap] path has nothing to draw: 404 with the setting to use."""
    runtime = Runtime(hub=Hub(store=open_journal(":memory:")), clock=ManualClock(NOW),
                      tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))
    response = _get(runtime, "/api/linkmap")
    assert response.status_code == 404
    assert "[linkmap] path" in response.json()["detail"]
    assert _get(runtime, "/api/linkmap", token=None).status_code == 401
    assert _get(runtime, "/healthz").json()["linkmap"] is None


def test_healthz_says_which_map_without_saying_where(map_runtime: Runtime) -> None:
    """An operator checking a hub sees the map it looks ahead on (its fingerprint, as a
    replay compares it), with no path on the hub's disk; a stranger sees neither."""
    assert "linkmap" not in _get(map_runtime, "/healthz", token=None).json()
    health = _get(map_runtime, "/healthz").json()
    lookahead = map_runtime.hub.lookahead
    assert lookahead is not None
    assert health["linkmap"] == {"fingerprint": lookahead.fingerprint, "rows": 6, "drives": 0}


def test_cells_risks_and_the_pooled_flag(map_runtime: Runtime) -> None:
    """Default link (the map's first) and condition (the hub's current): each cell's risk
    by the warning's own rule, own rows where they have min_passes, else pooled."""
    response = _get(map_runtime, "/api/linkmap")
    assert response.status_code == 200
    body = response.json()
    assert body["link"] == "l5g" and body["links"] == ["l5g", "lte"]
    assert body["conditions"] == [{"weather": "rain", "light": "night"},
                                  {"weather": "snow", "light": "daylight"}]
    assert body["condition"] == {"weather": "snow", "light": "daylight", "current": True,
                                 "in_map": True}
    assert body["current"] == {"weather": "snow", "light": "daylight"}
    assert body["grid"] == {"cell_m": 25.0, "origin": {"lat": 36.06, "lon": 136.34}}
    assert body["rule"] == {"threshold": 0.5, "min_passes": 2, "measure": "impaired",
                            "horizon_s": 20.0,
                            "measure_words": "impaired, down or short of uplink"}
    assert body["total_cells"] == 4 and not body["truncated"]
    assert body["max_cells"] == linkmap_api.MAX_CELLS
    assert body["pooled_cells"] == 2 and body["weak_cells"] == 2
    assert body["fingerprint"] == map_runtime.hub.lookahead.fingerprint  # type: ignore[union-attr]
    cells = _cells(body)
    assert list(cells) == [(0, 0), (1, 0), (2, 0), (40, 0)]  # nearest the map's origin first
    weak = cells[(0, 0)]
    assert (weak["passes"], weak["risk"], weak["pooled"]) == (4, 0.75, False)
    assert weak["share_down"] == 0.25 and weak["outage_starts"] == 2
    assert weak["rtt_p95_ms"] == pytest.approx(349.0, rel=0.02)
    assert weak["ul_p05_kbps"] == pytest.approx(3_050.0, rel=0.02)
    assert weak["south"] < weak["lat"] < weak["north"] and weak["west"] < weak["lon"] < weak["east"]
    assert distance_m(weak["south"], weak["lon"], weak["north"], weak["lon"]) == \
        pytest.approx(25.0, abs=1e-3)  # on the ground, to a millimetre
    pooled = cells[(1, 0)]  # 1 pass by snow: all conditions, 1 of 4 failed
    assert (pooled["passes"], pooled["risk"], pooled["pooled"]) == (4, 0.25, True)
    assert pooled["rtt_p95_ms"] is None and pooled["ul_p05_kbps"] is None  # not measured
    thin = cells[(2, 0)]
    assert (thin["passes"], thin["risk"], thin["pooled"]) == (1, None, True)  # too few
    assert cells[(40, 0)]["risk"] == 1.0

    lte = _cells(_get(map_runtime, "/api/linkmap", link="lte").json())
    assert list(lte) == [(0, 1)] and lte[(0, 1)]["risk"] == 0.0


def test_another_condition_uses_its_own_rows_where_it_has_enough(map_runtime: Runtime) -> None:
    """Rain at night: its own three passes decide (1, 0); (0, 0), never driven in the rain,
    is judged on every condition pooled."""
    body = _get(map_runtime, "/api/linkmap", weather="rain", light="night").json()
    assert body["condition"] == {"weather": "rain", "light": "night", "current": False,
                                 "in_map": True}
    cells = _cells(body)
    assert (cells[(1, 0)]["risk"], cells[(1, 0)]["pooled"]) == (0.0, False)
    assert (cells[(0, 0)]["risk"], cells[(0, 0)]["pooled"]) == (0.75, True)


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"link": "umts"}, 400, "no link 'umts' in the map (it has: l5g, lte)"),
    ({"weather": "fog"}, 400, "no condition fog/daylight in the map"),
    ({"weather": "rain", "light": "dusk"}, 400, "rain/night, snow/daylight"),
    ({"link": "l5g lte"}, 422, None),
    ({"weather": "Snow!"}, 422, None),
])
def test_a_link_or_condition_the_map_does_not_hold_is_refused(
        map_runtime: Runtime, params: dict[str, str], status: int, words: str | None) -> None:
    """Well-formed but not in the map: 400 naming what the map has; malformed: 422."""
    response = _get(map_runtime, "/api/linkmap", **params)
    assert response.status_code == status
    if words is not None:
        assert words in response.json()["detail"]


def test_cached_per_link_and_condition_and_capped_nearest_first(
        map_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer is built once per (link, condition, map); past MAX_CELLS the nearest cells
    are kept and the answer says it was cut."""
    built: list[str] = []
    real = linkmap_api.layer

    async def counting(*args: Any, **kwargs: Any) -> linkmap_api.Layer:
        built.append(kwargs["link"])
        return await real(*args, **kwargs)

    monkeypatch.setattr(linkmap_api, "layer", counting)
    monkeypatch.setattr(linkmap_api, "MAX_CELLS", 2)

    async def calls() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=create_app(map_runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            out = []
            for params in ({}, {}, {"link": "l5g"}, {"link": "lte"}):
                response = await client.get("/api/linkmap", params=params)
                out.append(response.json())
            return out

    first, again, named, lte = asyncio.run(calls())
    assert built == ["l5g", "lte"]
    assert first == again == named
    assert first["truncated"] and first["total_cells"] == 4 and first["max_cells"] == 2
    assert list(_cells(first)) == [(0, 0), (1, 0)]
    assert not lte["truncated"]


# ---------------------------------------------------------------- the console, in Chromium

EAST_LEG = (36.063349, 136.346398)  # testing/linkmap_sim.py: no service on 80 % of passes


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return distance_m(*a, *b)


@pytest.fixture(scope="module")
def sim_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A map of three simulated 10-minute drives of the demo loop in snow (~3 s)."""
    from scenarios.linkmap_build import build_map
    from testing.linkmap_sim import sim_logs

    tmp = tmp_path_factory.mktemp("linkmap-sim")
    linkmap, _report = build_map(sim_logs(tmp, drives=3, laps_s=600))
    write_map(tmp / "map", linkmap)
    return tmp / "map"


@pytest.fixture
def linkmap_demo(sim_map: Path) -> Iterator[DemoProcess]:
    # Six shuttles spread round the loop: one is within 20 s of the east leg's weak stretch
    # from the start, so the warning comes at once rather than after a lap's quarter.
    demo = DemoProcess(vehicles=6, duration=150, extra=["--linkmap", str(sim_map)])
    try:
        yield demo
    finally:
        demo.stop()


#: Every visible text on the site plot with its box (as tests/test_console_fleet100.py).
LABELS_JS = """() => [...document.querySelectorAll('#plot text')].filter((t) => {
    const s = getComputedStyle(t);
    return s.display !== 'none' && s.visibility !== 'hidden' && t.textContent.trim() &&
      t.getClientRects().length > 0;
  }).map((t) => { const r = t.getBoundingClientRect();
    return [t.textContent, r.left, r.top, r.right, r.bottom]; })"""
#: The layer's weak cells: [lat, lon] each.
WEAK_JS = """() => [...document.querySelectorAll('[data-testid=linkmap-layer] rect[data-weak]')]
  .map((r) => [Number(r.dataset.lat), Number(r.dataset.lon)])"""
#: A code where words belong: snake_case, a link id, a condition as weather/light, no value.
CODE = re.compile(r"\b[a-z]+_[a-z_]+\b|\bl5g\b|\blte\b|\b[a-z]+/[a-z]+\b|\bnull\b|"
                  r"\bundefined\b|\bNaN\b|\btrue\b|\bfalse\b")


def _overlapping(labels: list[list[Any]]) -> list[tuple[str, str]]:
    bad = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5 and a[2] < b[4] - 0.5 and b[2] < a[4] - 0.5:
                bad.append((a[0], b[0]))
    return bad


def _words_only(text: str, where: str) -> None:
    assert not CODE.search(text), f"{where} shows a code: {CODE.search(text)!r} in {text!r}"


browser_only = needs("chromium", "playwright")


@browser_only
def test_console_draws_the_map_and_the_warned_stretch(linkmap_demo: DemoProcess) -> None:
    """Layer with weak cells on the east leg for l5g; another link redraws; the hidden layer
    without a map; a weak_link_ahead alert's stretch outlined and emphasised; the vehicle
    panel says the outlook in words; screenshots at 1280x800 and 1920x1080."""
    import playwright.sync_api as pw_api
    expect = pw_api.expect
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    link = linkmap_demo.login_link()
    errors: list[str] = []
    with pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(link)
            expect(page.get_by_test_id("live-status")).to_have_text("LIVE", timeout=15_000)

            # -- the layer: drawn for the map's first link under the hub's current condition
            controls = page.get_by_test_id("linkmap-controls")
            expect(controls).to_be_visible(timeout=10_000)
            layer = page.get_by_test_id("linkmap-layer")
            expect(layer).to_have_attribute("data-link", "l5g")
            expect(layer).to_have_attribute("data-state", "shown")
            now = (layer.get_attribute("data-weather"), layer.get_attribute("data-light"))
            weak = page.evaluate(WEAK_JS)
            assert weak, "no weak cell drawn for l5g"
            assert min(_metres(tuple(c), EAST_LEG) for c in weak) < 60.0, weak
            assert int(layer.get_attribute("data-cells") or 0) > 50
            assert page.get_by_test_id("linkmap-link").locator("option").all_text_contents() \
                == ["Local 5G", "LTE"]
            conditions = page.get_by_test_id("linkmap-condition")
            options = conditions.locator("option").all_text_contents()
            assert options[0].startswith("now: ") and "snow, daylight" in options
            legend = page.get_by_test_id("linkmap-legend").text_content() or ""
            # the legend names the measure the hub warns on (its words are the console's:
            # ui/static/words.js; the API gives them as rule.measure_words)
            assert "share of past passes " in legend and "(what the hub warns on)" in legend
            for text in [*options, legend]:
                _words_only(text, "the map's control")

            # -- another link: the layer is drawn again, for it; then the map's own condition
            #    (the demo's weather is clear, so "now" is never the map's snow by day)
            page.get_by_test_id("linkmap-link").select_option("lte")
            expect(layer).to_have_attribute("data-link", "lte", timeout=5_000)
            assert page.evaluate(WEAK_JS) != weak  # the placed spots are on l5g only
            page.get_by_test_id("linkmap-condition").select_option("snow/daylight")
            expect(layer).to_have_attribute("data-weather", "snow", timeout=5_000)
            page.get_by_test_id("linkmap-link").select_option("l5g")
            page.get_by_test_id("linkmap-condition").select_option("")
            expect(layer).to_have_attribute("data-link", "l5g", timeout=5_000)
            expect(layer).to_have_attribute("data-weather", now[0] or "")
            expect(layer).to_have_attribute("data-light", now[1] or "")
            page.get_by_test_id("linkmap-toggle").uncheck()
            expect(layer).to_have_attribute("data-state", "hidden")
            page.get_by_test_id("linkmap-toggle").check()
            expect(layer).to_have_attribute("data-state", "shown")

            # -- a weak_link_ahead warning: its stretch outlined, tied to its vehicle
            alert = page.get_by_test_id("alert-queue").locator(
                "[data-rule='weak_link_ahead']").first
            expect(alert).to_be_visible(timeout=45_000)
            vehicle = alert.get_attribute("data-vehicle") or ""
            # A card of its own, or a member of its stretch's card (the weak_stretch grouping:
            # several vehicles' warnings of one stretch are one card).
            testid = alert.get_attribute("data-testid") or ""
            member = testid.startswith("incident-member-")
            alert_id = testid.removeprefix("incident-member-").removeprefix("alert-")
            marked = page.locator(f"[data-testid='weak-ahead-layer'] [data-alert='{alert_id}']")
            expect(marked).to_have_count(1, timeout=5_000)
            stretch = marked.first
            link_id = stretch.get_attribute("data-link") or ""
            assert stretch.get_attribute("data-vehicle") == vehicle and link_id in {"l5g", "lte"}
            detail = (alert.get_by_test_id("member-title").get_attribute("title") or "") \
                if member else (alert.locator(".alert-detail").text_content() or "")
            assert "weak" in detail and "past passes" in detail, detail
            _words_only(detail, "the alert's detail")
            if member:  # a member's line picks its vehicle, which emphasises its stretch
                alert.get_by_test_id("member-vehicle").click()
            else:
                alert.get_by_test_id("alert-title").click()  # the operator picks the alert
            expect(stretch).to_have_attribute("data-emphasis", "true")
            if not member:
                alert.locator(".alert-where").click()  # and its vehicle
            outlook = page.get_by_test_id("vehicle-outlook")
            expect(outlook).to_be_visible()
            expect(outlook).to_have_attribute("data-vehicle", vehicle)
            words = {"l5g": "Local 5G", "lte": "LTE"}[link_id]
            line = outlook.locator(f"[data-link='{link_id}']")
            expect(line).to_contain_text(re.compile(
                rf"{words}: (weak stretch (here|in \d+ s), \d+ of \d+ past passes|"
                r"no weak stretch ahead|not mapped ahead)"))
            _words_only(outlook.text_content() or "", "the vehicle's outlook")
            labels = page.evaluate(LABELS_JS)
            assert not _overlapping(labels), _overlapping(labels)[:5]
            page.screenshot(path=str(ARTIFACTS / "01-linkmap-1280x800.png"))
            shots = {"01-linkmap-1280x800.png"}

            # -- the same at 1920x1080
            big = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
            big.on("pageerror", lambda exc: errors.append(str(exc)))
            big.goto(link)
            expect(big.get_by_test_id("linkmap-layer")).to_have_attribute(
                "data-state", "shown", timeout=15_000)
            big.get_by_test_id(f"vehicle-row-{vehicle}").click()
            expect(big.get_by_test_id("vehicle-outlook")).to_have_attribute(
                "data-vehicle", vehicle)
            labels = big.evaluate(LABELS_JS)
            assert not _overlapping(labels), _overlapping(labels)[:5]
            big.screenshot(path=str(ARTIFACTS / "02-linkmap-1920x1080.png"))
            shots.add("02-linkmap-1920x1080.png")

            # -- a hub without a map (its 404): no control, no layer, no outlook
            bare = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            bare.on("pageerror", lambda exc: errors.append(str(exc)))
            bare.route("**/api/linkmap*", lambda route: route.fulfill(
                status=404, content_type="application/json",
                body='{"detail": "this hub has no link map"}'))
            bare.route("**/api/vehicles*", lambda route: route.continue_())
            bare.goto(link)
            expect(bare.get_by_test_id("live-status")).to_have_text("LIVE", timeout=15_000)
            expect(bare.get_by_test_id("linkmap-layer")).to_have_attribute("data-state", "none")
            expect(bare.get_by_test_id("linkmap-controls")).to_be_hidden()
            assert bare.get_by_test_id("linkmap-layer").locator("rect").count() == 0
        finally:
            browser.close()
    assert not errors, errors
    assert {p.name for p in ARTIFACTS.iterdir()} >= shots
    assert time.monotonic() - started < 90.0, "the walk took too long"
