"""One incident per cause: several vehicles' alerts on one cell (or in one junction) are one
incident, journaled on each member, acknowledged as a whole, rebuilt after a restart; the
scenario library's cell outage raises one incident, not one alert per shuttle.

Real wire messages into a real hub and engine (tests/test_alert_engine.py's rig), the real
shipped rules, the real HTTP routes in-process, and the real scenario replay.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from l4mon.alerts.actions import AlertClosed
from l4mon.alerts.engine import AlertEngine
from l4mon.alerts.rules import RulesError, parse_rules
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.faces.api.app import create_app
from l4mon.runtime import Runtime
from l4mon.store.journal import SqliteJournal
from scenarios.scenario import run_scenario
from scenarios.sim import SimFleet
from telemetry.site import DEMO_SITE_PATH, load_site
from telemetry.topics import link_topic
from telemetry.wire import LinkSample
from tests.test_alert_engine import FAST_LINKS, SITE, T0, Rig

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "scenarios" / "library"

#: v1..v4 are served by one mast (a 5G and an LTE cell); v5 by another.
CELLS = {"v1": ("mast1-5g", "mast1-lte"), "v2": ("mast1-5g", "mast1-lte"),
         "v3": ("mast1-5g", "mast1-lte"), "v4": ("mast1-5g", "mast1-lte"),
         "v5": ("mast2-5g", "mast2-lte")}


class CellRig(Rig):
    """The rig with two links per vehicle, each on its own cell."""

    def sample(self, now: float, vehicle: str, link: str, *, service: bool) -> tuple[str, Any]:
        topic = link_topic(SITE, vehicle, link)
        cell = CELLS[vehicle][0 if link == "l5g" else 1]
        if not service:
            return topic, LinkSample(ts=now - 0.01, seq=self._next(topic), rat="none")
        return topic, LinkSample(ts=now - 0.01, seq=self._next(topic), rat="nr",
                                 cell_id=cell, rsrp_dbm=-80.0, rtt_ms=20.0, ul_kbps=10_000.0)

    def drive(self, now: float, vehicles: dict[str, bool]) -> None:
        """One tick: each vehicle's state and both links, served or not."""
        messages = []
        for vehicle, served in vehicles.items():
            messages.append(self.state_msg(now, vehicle))
            messages += [self.sample(now, vehicle, link, service=served)
                         for link in ("l5g", "lte")]
        self.step(now, *messages)


def _all(served: bool, *vehicles: str) -> dict[str, bool]:
    return {v: served for v in vehicles}


def _run_to_outage(rig: CellRig) -> float:
    """Everyone served for 3 s; then v1, v2, v3 and v5 lose both links at once; 2 s later v4
    does too. Returns the time of the outage."""
    t = T0
    for _ in range(12):
        rig.drive(t, _all(True, *CELLS))
        t += 0.25
    outage = t
    rig.drive(t, {**_all(False, "v1", "v2", "v3", "v5"), "v4": True})
    for _ in range(8):
        t += 0.25
        rig.drive(t, {**_all(False, "v1", "v2", "v3", "v5"), "v4": True})
    for _ in range(4):
        t += 0.25
        rig.drive(t, _all(False, *CELLS))
    return outage


def test_vehicles_losing_one_mast_together_are_one_incident(tmp_path: Path) -> None:
    """Three vehicles losing the same two cells within the window form one incident naming
    both cells; a fourth joins it from its first transition; a vehicle on another mast and a
    vehicle's own takeover request stay alerts of their own."""
    rig = CellRig(tmp_path / "j.sqlite", config=FAST_LINKS)
    _run_to_outage(rig)
    down = {a.vehicle: a for a in rig.alerts("both_links_down")}
    assert sorted(down) == ["v1", "v2", "v3", "v4", "v5"]
    incident_id = down["v1"].incident
    assert incident_id is not None
    members = {v for v, a in down.items() if a.incident == incident_id}
    assert members == {"v1", "v2", "v3", "v4"}
    assert down["v5"].incident is None  # another mast: its own alert
    incident = rig.engine.incidents.open[incident_id]
    assert incident.causes == ("cell mast1-5g", "cell mast1-lte")
    assert incident.id == min(a.id for v, a in down.items() if v != "v5")
    assert incident.severity == "takeover" and incident.state == "raised"
    assert down["v1"].incident_group == "cell_outage"
    assert down["v1"].incident_cause == "cell mast1-5g, cell mast1-lte"

    # the founders were raised alone, then grouped; the latecomer was raised inside it
    founders = [v for v in ("v1", "v2", "v3") if "grouped" in rig.kinds(down[v].id)]
    assert founders == ["v1", "v2", "v3"]
    assert rig.kinds(down["v4"].id)[0] == "raised"
    assert "grouped" not in rig.kinds(down["v4"].id)
    first_v4 = next(a for t, a in rig.heard if t.alert_id == down["v4"].id)
    assert first_v4.incident == incident_id  # the console never sees it alone

    # a vehicle's own request is never grouped, even while its links are in the incident
    rig.step(T0 + 6, rig.event_msg(T0 + 6, "v2", "takeover_request"))
    request = rig.one("takeover_requested", "v2")
    assert request.incident is None


def test_an_incident_is_acknowledged_as_a_whole_and_closes_with_its_last_member(
        tmp_path: Path) -> None:
    rig = CellRig(tmp_path / "j.sqlite", config=FAST_LINKS)
    t = _run_to_outage(rig) + 3.25
    incident_id = rig.one("both_links_down", "v1").incident
    assert incident_id is not None
    incident = rig.engine.acknowledge_incident(incident_id, "op-a", t, "calling the depot")
    assert incident.state == "acknowledged"
    for alert in incident.members.values():
        assert alert.state == "acknowledged" and alert.acknowledged_by == "op-a"
        history = rig.engine.journal.history(alert.id)
        assert history[-1].kind == "acknowledged"
        assert history[-1].detail == f"with incident {incident_id}: calling the depot"
    assert rig.one("both_links_down", "v5").state == "raised"  # not a member

    # service returns: members resolve one by one; the incident closes with the last
    for _ in range(30):
        t += 0.25
        rig.drive(t, _all(True, *CELLS))
    assert not rig.alerts("both_links_down")
    assert incident_id not in rig.engine.incidents.open
    closed = rig.engine.incident(incident_id)
    assert closed.state == "resolved" and closed.closed_at is not None
    with pytest.raises(AlertClosed):
        rig.engine.acknowledge_incident(incident_id, "op-a", t)


def test_a_restarted_engine_rebuilds_the_open_incident_from_the_journal(tmp_path: Path) -> None:
    rig = CellRig(tmp_path / "j.sqlite", config=FAST_LINKS)
    _run_to_outage(rig)
    before = rig.engine.incidents.open
    assert len(before) == 1
    (incident_id, incident), = before.items()
    rig.journal.close()

    journal = SqliteJournal(tmp_path / "j.sqlite")
    engine = AlertEngine(rules=rig.engine.rules, journal=journal, duty=rig.duty,
                         ul_required_kbps=lambda _: None)
    after = engine.incidents.open
    assert list(after) == [incident_id]
    assert sorted(after[incident_id].members) == sorted(incident.members)
    assert after[incident_id].causes == incident.causes
    assert after[incident_id].title == incident.title
    journal.close()


def _rules(groups: str) -> str:
    return textwrap.dedent("""
        [[rule]]
        name = "down"
        title = "Down"
        scope = "vehicle"
        when = "links_down >= 1"
        severity = "takeover"

        [[rule]]
        name = "asked"
        title = "Asked"
        scope = "event"
        when = "kind == 'takeover_request'"
        severity = "takeover"
    """) + textwrap.dedent(groups)


@pytest.mark.parametrize(("groups", "message"), [
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "cell"\nrules = ["nope"]\n',
     "group g: rules names unknown rule 'nope'"),
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "cell"\nrules = ["asked"]\n',
     "a vehicle's own request stays its own alert"),
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "cell"\nrules = ["down"]\nmin_members = 1\n',
     "min_members"),
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "street"\nrules = ["down"]\n', "by"),
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "cell"\nrules = ["down"]\n' * 2,
     "group names must be unique: g"),
    ('[[group]]\nname = "g"\ntitle = "G"\nby = "cell"\nrules = ["down"]\nwindow = 3\n',
     "window"),
])
def test_groupings_are_validated_before_they_run(groups: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(_rules(groups), source="rules.toml")
    assert message in str(caught.value)
    assert "rules.toml" in str(caught.value)


def test_the_shipped_groupings_fit_the_shipped_rules() -> None:
    rules = parse_rules((ROOT / "l4mon" / "alerts" / "default_rules.toml").read_text())
    groups = {g.name: g for g in rules.groups}
    assert set(groups) == {"takeover_then_mrm", "cell_outage", "intersection_trouble",
                           "weak_stretch"}
    # the link map's warnings gather per stretch of road, and only there
    assert groups["weak_stretch"].by == "stretch"
    assert groups["weak_stretch"].rules == {"weak_link_ahead"}
    across = [g for g in groups.values() if g.by != "vehicle"]
    grouped = set().union(*(g.rules for g in across))
    # a vehicle's own request and MRM are never another vehicle's cause ...
    assert "takeover_requested" not in grouped and "mrm_active" not in grouped
    # ... but they are one card of their own vehicle, tried first
    assert groups["takeover_then_mrm"].by == "vehicle"
    assert groups["takeover_then_mrm"].rules == {"takeover_requested", "mrm_active"}
    assert rules.groups[0].name == "takeover_then_mrm"
    assert "hub_feed_lost" not in grouped  # the hub's own blindness is one alert already
    assert "both_links_down" in groups["cell_outage"].rules


@pytest.mark.parametrize("conditions", ["daylight", "snow"])
def test_a_cell_outage_over_eight_of_twenty_shuttles_is_one_incident(
        conditions: str, tmp_path: Path) -> None:
    """The library scenario: one mast goes dark under 20 shuttles. One incident holds every
    vehicle it hit (at least eight); at most one alert of its rules stays outside (a shuttle
    driving into the dark area never reported the dead cells)."""
    results = run_scenario(LIBRARY / f"cell-outage-{conditions}.toml")
    assert results["verdict"] == "pass", results["expectations"]
    incidents = [i for i in results["incidents"] if i["group"] == "cell_outage"]
    assert len(incidents) == 1
    (incident,) = incidents
    assert len(incident["vehicles"]) >= 8
    assert incident["cause"] == "cell l5g-araya, cell lte-matsuoka-w"
    grouped_rules = {"both_links_down", "link_down_other_degraded", "telemetry_stale",
                     "rtt_over_budget", "uplink_below_requirement",
                     "handover_failure_in_intersection"}
    loose = [a for a in results["alerts"] if a["rule"] in grouped_rules and a["incident"] is None]
    assert len(loose) <= 1
    takeovers = [a for a in results["alerts"] if a["severity"] == "takeover"]
    assert len(takeovers) >= 8  # what an operator would otherwise have seen as separate cues
    assert json.dumps(results, sort_keys=True) == json.dumps(
        run_scenario(LIBRARY / f"cell-outage-{conditions}.toml"), sort_keys=True)


def test_the_simulated_cell_outage_darkens_the_modems_it_serves() -> None:
    """A dark cell: modems it serves report no service (the report leaves on the other link);
    a vehicle whose both modems are dark sends nothing at all."""
    site = load_site(DEMO_SITE_PATH)
    start = 1_767_225_600.0
    sim = SimFleet(site=site, vehicles=20, seed=5, start=start)
    assert "l5g-araya" in sim.cell_ids and "lte-matsuoka-w" in sim.cell_ids
    sim.advance(start + 10)
    with pytest.raises(ValueError, match="unknown cell"):
        sim.cell_outage("no-such-cell", start + 10, 5)
    sim.cell_outage("l5g-araya", start + 10, 5)
    sim.cell_outage("lte-matsuoka-w", start + 10, 5)
    during = sim.advance(start + 14)
    no_service, states, cells = set(), set(), set()
    for topic, payload in during:
        parts = topic.split("/")
        body = msgspec.json.decode(payload)
        if parts[-1] == "state":
            states.add(parts[4])
        elif len(parts) == 7:
            if body["rat"] == "none":
                no_service.add(parts[4])
            cells.add(body.get("cell_id"))
    assert no_service  # some modems lost the cell ...
    assert "l5g-araya" not in cells and "lte-matsuoka-w" not in cells  # ... and nobody has it
    cut_off = set(sim.vehicle_ids) - states
    assert cut_off  # both modems dark: nothing arrives
    after = sim.advance(start + 20)
    assert {t.split("/")[4] for t, _ in after if t.endswith("/state")} == set(sim.vehicle_ids)
    assert any(b"l5g-araya" in p for _, p in after)


TOKEN = "incident-operator"


def _call(runtime: Runtime, method: str, path: str, body: Any = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            return await client.request(method, path, json=body)
    return asyncio.run(call())


def test_the_api_lists_shows_and_acknowledges_incidents(tmp_path: Path) -> None:
    rig = CellRig(tmp_path / "j.sqlite", config=FAST_LINKS)
    t = _run_to_outage(rig)
    runtime = Runtime(hub=rig.hub, clock=ManualClock(t + 4),
                      tokens=TokenStore([("op", "operator", hash_token(TOKEN))]))
    listed = _call(runtime, "GET", "/api/incidents").json()
    assert [g["name"] for g in listed["groups"]] == ["takeover_then_mrm", "cell_outage",
                                                     "intersection_trouble", "weak_stretch"]
    assert "NOC" in listed["groups"][1]["runbook"]["call"]  # the carrier runs the cell
    (incident,) = listed["open"]
    assert incident["vehicles"] == ["v1", "v2", "v3", "v4"]
    assert incident["state"] == "raised" and incident["severity"] == "takeover"
    assert {a["incident"] for a in incident["alerts"]} == {incident["id"]}
    assert {a["runbook"]["call"] for a in incident["alerts"]} == {
        rig.engine.runbooks["both_links_down"]["call"]}
    assert _call(runtime, "GET", f"/api/incidents/{incident['id']}").json()["id"] == \
        incident["id"]
    assert _call(runtime, "GET", "/api/incidents/999").status_code == 404
    assert _call(runtime, "GET", "/api/incidents/0").status_code == 422
    assert _call(runtime, "POST", f"/api/incidents/{incident['id']}/ack",
                 {"note": "x" * 501}).status_code == 422
    acked = _call(runtime, "POST", f"/api/incidents/{incident['id']}/ack", {"note": ""})
    assert acked.status_code == 200
    assert acked.json()["state"] == "acknowledged"
    assert {a["acknowledged_by"] for a in acked.json()["alerts"]} == {"op"}
    snapshot = runtime.snapshot()
    assert snapshot["incident_groups"]["cell_outage"]["by"] == "cell"

