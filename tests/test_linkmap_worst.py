"""The link-map layer never shows the map's worst stretches as fine. Under the default measure
(``impaired``: degraded, down or short of uplink, issue 25 item 4) a stretch whose link was
degraded on every pass but never down is warned on and drawn weak; under ``unfit`` (down or
short of uplink), which passes it, it is drawn as strongly as a warned one anyway, outlined
and said to be "not warned on".

``GET /api/linkmap`` in-process on a map made by hand, then the console's layer in a real
headless Chromium against ``l4mon demo --linkmap`` on the same map. Screenshots land in
``test-artifacts/console-linkmap-worst/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from l4mon.assembly import build_hub
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.runtime import Runtime
from telemetry.linkmap import Grid, LinkMap, write_map
from testing.asgi import request
from testing.demo import ROOT, DemoProcess, chromium_page
from tests.parts import import_part, needs

NOW = 1_767_225_600.0
TOKEN = "linkmap-worst-token"
ARTIFACTS = ROOT / "test-artifacts" / "console-linkmap-worst"
#: The demo site's origin (telemetry/site.py DEMO_SITE_PATH): the cells lie on its plot.
ORIGIN = (36.06, 136.34)


def _map() -> LinkMap:
    """Three stretches of two l5g cells on the site's south road, under clear daylight: down
    on 3 of 4 passes (warned); degraded on all 4, never down (the worst, not warned); degraded
    on 1 of 4 (fine by either)."""
    lm = LinkMap(Grid(*ORIGIN, 25.0))
    for x in (0, 1):
        down = lm.row((x, 8), "l5g", "clear", "daylight")
        down.passes, down.passes_unfit, down.passes_down, down.passes_impaired = 4, 3, 3, 3
    for x in (3, 4):
        slow = lm.row((x, 8), "l5g", "clear", "daylight")
        slow.passes, slow.passes_impaired = 4, 4
    for x in (6, 7):
        fine = lm.row((x, 8), "l5g", "clear", "daylight")
        fine.passes, fine.passes_impaired = 4, 1
    return lm


@pytest.fixture
def map_dir(tmp_path: Path) -> Path:
    write_map(tmp_path / "map", _map())
    return tmp_path / "map"


def _cells(body: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    cols = body["cells"]
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    return {(r["x"], r["y"]): r for r in rows}


def _layer(map_dir: Path, tmp_path: Path, **linkmap: str) -> dict[str, Any]:
    config = config_from_dict({
        "alerts": {"journal": str(tmp_path / "journal.sqlite")},
        "linkmap": {"path": str(map_dir), "weather": "clear", "light": "daylight", **linkmap}})
    hub = build_hub(config)
    try:
        runtime = Runtime(hub=hub, clock=ManualClock(NOW),
                          tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))
        body: dict[str, Any] = request(runtime, "GET", "/api/linkmap", token=TOKEN).json()
    finally:
        assert hub.alerts is not None
        hub.alerts.journal.close()
    return body


def test_the_default_measure_warns_of_the_degraded_stretch_and_names_itself(
        map_dir: Path, tmp_path: Path) -> None:
    body = _layer(map_dir, tmp_path)
    assert body["rule"]["measure"] == "impaired"
    assert body["rule"]["measure_words"] == "impaired, down or short of uplink"
    assert body["weak_cells"] == 4 and body["unwarned_cells"] == 0
    cells = _cells(body)
    assert cells[(3, 8)]["risk"] == 1.0 and cells[(0, 8)]["risk"] == 0.75
    assert cells[(6, 8)]["risk"] == 0.25


def test_each_cell_says_its_worst_measure_and_the_layer_counts_the_unwarned(
        map_dir: Path, tmp_path: Path) -> None:
    body = _layer(map_dir, tmp_path, measure="unfit")
    assert body["rule"]["measure"] == "unfit"
    assert body["rule"]["measure_words"] == "down or short of uplink"
    assert body["weak_cells"] == 2 and body["unwarned_cells"] == 2
    cells = _cells(body)
    down, slow, fine = cells[(0, 8)], cells[(3, 8)], cells[(6, 8)]
    # a tie between measures goes to the one the hub warns on
    assert (down["risk"], down["worst"], down["worst_measure"]) == (0.75, 0.75, "unfit")
    assert (slow["risk"], slow["worst"], slow["worst_measure"]) == (0.0, 1.0, "impaired")
    assert (fine["risk"], fine["worst"], fine["worst_measure"]) == (0.0, 0.25, "impaired")


UNWARNED_JS = """() => [...document.querySelectorAll('[data-testid=linkmap-layer] rect')]
  .map((r) => ({cls: r.getAttribute('class'), unwarned: r.dataset.unwarned ?? null,
                weak: r.dataset.weak ?? null,
                opacity: Number(getComputedStyle(r).fillOpacity)}))"""


@needs("chromium")
def test_the_layer_draws_the_degraded_stretch_as_weak_under_the_default_measure(
        map_dir: Path) -> None:
    """The worst stretch (degraded on every pass, never down) is one the hub warns on by
    default, so the console draws it weak, as strongly as the down one."""
    expect = import_part("playwright.sync_api").expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    demo = DemoProcess(vehicles=2, duration=90, extra=["--linkmap", str(map_dir)])
    try:
        link = demo.login_link()
        with chromium_page(1280, 800) as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(link)
            expect(page.get_by_test_id("live-status")).to_have_text("LIVE", timeout=15_000)
            layer = page.get_by_test_id("linkmap-layer")
            expect(layer).to_have_attribute("data-state", "shown", timeout=10_000)
            expect(layer).to_have_attribute("data-weak", "4")
            expect(layer).to_have_attribute("data-unwarned", "0")
            rects = page.evaluate(UNWARNED_JS)
            weak = [r for r in rects if r["weak"] == "true"]
            faint = [r for r in rects if "r-ok" in r["cls"]]
            assert len(weak) == 4 and len(faint) == 2
            assert {r["opacity"] for r in weak} == {weak[0]["opacity"]}
            assert weak[0]["opacity"] > faint[0]["opacity"]
            for width, height in ((1280, 800), (1920, 1080)):
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(400)
                page.screenshot(path=str(ARTIFACTS / f"layer-{width}x{height}.png"))
            assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        demo.stop()
