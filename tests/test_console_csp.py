"""The console under its Content-Security-Policy in a real headless Chromium: the policy the
hub sends (l4mon/faces/api/headers.py) blocks nothing the console itself does, so tightening it
never silently breaks a panel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from testing.demo import DemoProcess, chromium_page, running_demo
from tests.parts import import_part, needs

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = import_part("playwright.sync_api").expect

pytestmark = needs("chromium")

#: Collects every violation the page reports, from before its first script runs.
_RECORD = ("window.__csp = []; document.addEventListener('securitypolicyviolation', e => "
           "window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:"
           "${e.lineNumber}`));")


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    with running_demo(vehicles=3, duration=60) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(1600, 900) as opened:
        yield opened


def test_the_console_runs_under_its_policy_without_a_violation(demo: DemoProcess,
                                                               page: Page) -> None:
    """Log in, let the fleet, plot, charts and both tabs render: no violation reported, and
    the page did get the policy (an inline script it forbids is refused)."""
    page.add_init_script(_RECORD)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(demo.login_link())
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_test_id("whoami")).to_contain_text("demo-operator", timeout=10_000)
    expect(page.get_by_test_id("live-status")).to_contain_text("LIVE", timeout=10_000)
    page.locator("#tab-ix").click()
    page.locator("#tab-fleet").click()
    page.wait_for_timeout(2_000)  # a few state frames: charts and plot redrawn
    assert page.evaluate("window.__csp") == []
    assert errors == []
    page.evaluate("() => { const s = document.createElement('script');"
                  " s.textContent = 'window.__ran = 1'; document.head.append(s); }")
    assert page.evaluate("window.__ran") is None  # inline script refused: the policy holds
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
