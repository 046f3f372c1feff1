"""The report page in a real headless Chromium: it renders, its charts are there, it prints.

Screenshots land in ``test-artifacts/report/`` for a human to look at: the top of the page
(verdict and budgets), the charts, the handover map, and the print layout; plus the PDF the
CLI's ``--pdf`` makes with the same browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from l4mon.config import HubConfig, ReportSettings
from l4mon.faces.report import ReportOptions, build_report, print_pdf, render
from testing.demo import CHROMIUM, CHROMIUM_ARGS
from tests.parts import import_part, needs
from tests.report_logs import simulated

sync_playwright = import_part("playwright.sync_api").sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "report"

pytestmark = needs("chromium")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    logs = [simulated(base / "day", "daylight", vehicles=4, seconds=150),
            simulated(base / "snow", "snow-night", vehicles=4, seconds=150, seed=8)]
    # 150 s drives: graded with a 1-minute threshold, so the page shows PASS / FAIL cells
    lenient = HubConfig(report=ReportSettings(min_drive_s=60.0, min_samples=100))
    report = build_report(logs, ReportOptions(title="Eiheiji shuttle links — test report",
                                              config=lenient))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / "report.html"
    out.write_text(render(report), encoding="utf-8")
    return out


def test_report_renders_in_chromium(page_file: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            assert page.locator(".verdict b.big").inner_text() in ("PASS", "FAIL")
            assert page.locator("h2").count() == 10
            # the route's measure is chosen without a script: one measure's maps at a time
            assert page.locator(".mv-rsrp").is_visible()
            page.locator("label[for='m-rtt']").click()
            assert page.locator(".mv-rtt").is_visible()
            assert not page.locator(".mv-rsrp").is_visible()
            assert page.locator(".mv-rtt svg.rmap rect").count() > 10
            page.locator(".mv-rtt").screenshot(path=str(ARTIFACTS / "route-rtt.png"))
            charts = page.locator("svg.chart")
            assert charts.count() >= 5
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
            assert page.locator("svg[aria-label^='Handovers on the site plot'] circle").count()
            page.screenshot(path=str(ARTIFACTS / "top.png"))
            page.locator("svg[aria-label^='RTT']").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "charts.png"))
            page.locator("svg[aria-label^='Handovers on the site plot']").screenshot(
                path=str(ARTIFACTS / "handover-map.png"))
            page.screenshot(path=str(ARTIFACTS / "full.png"), full_page=True)
            page.emulate_media(media="print")
            page.screenshot(path=str(ARTIFACTS / "print.png"), full_page=True)
            assert not errors
            assert all(u.startswith("file://") for u in requests), requests
        finally:
            browser.close()


def test_pdf_is_printed_by_chromium(page_file: Path) -> None:
    pdf = print_pdf(page_file, ARTIFACTS / "report.pdf", chromium=CHROMIUM)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20_000
