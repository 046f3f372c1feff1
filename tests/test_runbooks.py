"""A next step on every alert: each rule's runbook (what to do, whom to call) is validated with
the rules file, every shipped rule and grouping has one, and the API and the console's snapshot
give it with the alert.

The real shipped rules, a real SQLite journal and engine (tests/test_alert_engine.py's rig),
the real HTTP routes in-process.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from l4mon.alerts.rules import RulesError, load_rules, parse_rules
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.faces.api.app import create_app
from l4mon.runtime import Runtime
from tests.test_alert_engine import T0, Rig

TOKEN = "runbook-operator"

RULE = """
[[rule]]
name = "asked"
title = "Asked"
scope = "event"
when = "kind == 'takeover_request'"
severity = "takeover"
"""


def _with(runbook: str) -> str:
    return RULE + textwrap.dedent(runbook)


def test_a_rule_carries_its_runbook_in_the_rules_file() -> None:
    rules = parse_rules(_with("""
        [rule.runbook]
        steps = ["Look at the cameras.", "Talk to the passengers."]
        call = "The site's field staff"
    """))
    (rule,) = rules
    assert rule.runbook is not None
    assert rule.runbook.to_dict() == {"steps": ["Look at the cameras.",
                                                "Talk to the passengers."],
                                      "call": "The site's field staff"}


@pytest.mark.parametrize(("runbook", "message"), [
    ('[rule.runbook]\nsteps = ["Look."]\ncall = "Staff"\nphone = "0776"\n', "phone"),
    ('[rule.runbook]\nsteps = []\ncall = "Staff"\n', "steps"),
    ('[rule.runbook]\nsteps = ["Look."]\n', "call"),
    ('[rule.runbook]\ncall = "Staff"\n', "steps"),
    ('[rule.runbook]\nsteps = ["   "]\ncall = "Staff"\n', "steps"),
    ('[rule.runbook]\nsteps = ["Look."]\ncall = ""\n', "call"),
    ('[rule.runbook]\nsteps = ["x"]\ncall = "Staff"\n'.replace('"x"', '"' + "x" * 301 + '"'),
     "steps"),
    ('[rule.runbook]\nsteps = [' + ", ".join(['"a"'] * 13) + ']\ncall = "Staff"\n', "steps"),
    ('runbook = "Look at the cameras."\n', "runbook"),
])
def test_a_runbook_is_validated_before_the_rule_runs(runbook: str, message: str) -> None:
    """Unknown keys, empty or blank steps, too many or too long, no one to call, a bare
    string: refused, naming the file and the field."""
    with pytest.raises(RulesError) as caught:
        parse_rules(_with(runbook), source="rules.toml")
    assert message in str(caught.value)
    assert "rules.toml" in str(caught.value)


def test_a_rule_without_a_runbook_still_runs() -> None:
    """A site's own rules file written before runbooks existed keeps working; the card says
    there is no runbook rather than refusing the rule."""
    (rule,) = parse_rules(RULE)
    assert rule.runbook is None


def test_every_shipped_rule_and_grouping_says_what_to_do_and_whom_to_call() -> None:
    rules = load_rules()
    assert [r.name for r in rules if r.runbook is None] == []
    assert [g.name for g in rules.groups if g.runbook is None] == []
    by_name = {r.name: r.runbook for r in rules}
    # the situations a remote operator of a rural shuttle meets most, said as such
    takeover = by_name["takeover_requested"]
    assert takeover is not None
    assert any("camera" in s for s in takeover.steps)
    assert any("passengers" in s for s in takeover.steps)
    assert "field staff" in takeover.call
    unreachable = by_name["both_links_down"]
    assert unreachable is not None
    assert any("minimal risk manoeuvre" in s for s in unreachable.steps)
    assert any(s.startswith("Dispatch") for s in unreachable.steps)
    groups = {g.name: g.runbook for g in rules.groups}
    assert groups["cell_outage"] is not None and "NOC" in groups["cell_outage"].call


def _call(runtime: Runtime, method: str, path: str, body: Any = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            return await client.request(method, path, json=body)
    return asyncio.run(call())


def test_the_api_and_the_snapshot_give_the_runbook_with_the_alert(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "j.sqlite")
    rig.state(T0)
    rig.step(T0 + 0.25, rig.event_msg(T0 + 0.25, "v1"))
    alert = rig.one("takeover_requested", "v1")
    expected = load_rules()
    (shipped,) = [r.runbook for r in expected if r.name == "takeover_requested"]
    assert shipped is not None
    runtime = Runtime(hub=rig.hub, clock=ManualClock(T0 + 1),
                      tokens=TokenStore([("op", "operator", hash_token(TOKEN))]))

    listed = _call(runtime, "GET", "/api/alerts?state=open").json()
    (found,) = [a for a in listed if a["id"] == alert.id]
    assert found["runbook"] == shipped.to_dict()
    one = _call(runtime, "GET", f"/api/alerts/{alert.id}").json()
    assert one["alert"]["runbook"] == shipped.to_dict()
    acked = _call(runtime, "POST", f"/api/alerts/{alert.id}/ack", {"note": ""})
    assert acked.status_code == 200 and acked.json()["runbook"] == shipped.to_dict()

    snapshot = runtime.snapshot()
    assert snapshot["runbooks"]["takeover_requested"] == shipped.to_dict()
    assert set(snapshot["runbooks"]) == {r.name for r in expected}
    assert snapshot["incident_groups"]["takeover_then_mrm"]["runbook"]["steps"]
