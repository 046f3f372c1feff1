"""One card per vehicle and cause: a takeover request and the minimal risk manoeuvre it
triggers on the same vehicle are one incident (the shipped ``takeover_then_mrm`` grouping,
``by = "vehicle"``), acknowledged once, with both alerts kept in the journal.

Real wire messages into a real hub and engine with the shipped rules and a real SQLite
journal (tests/test_alert_engine.py's rig).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from l4mon.alerts.engine import AlertEngine
from l4mon.alerts.rules import RulesError, parse_rules
from l4mon.store.journal import SqliteJournal
from tests.test_alert_engine import T0, Rig

GROUP = "takeover_then_mrm"


def _on_duty(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path / "j.sqlite")
    rig.duty.go_on("op-a", T0 - 100)
    for v in ("v1", "v2"):
        rig.state(T0 - 1, v)
    return rig


def _request(rig: Rig, at: float, vehicle: str = "v1") -> None:
    rig.step(at, rig.event_msg(at, vehicle), rig.state_msg(at, vehicle))


def _mrm(rig: Rig, at: float, vehicle: str = "v1") -> None:
    rig.step(at, rig.state_msg(at, vehicle, mode="mrm"))


def test_a_takeover_request_and_its_mrm_are_one_card_acknowledged_once(tmp_path: Path) -> None:
    rig = _on_duty(tmp_path)
    _request(rig, T0)
    request = rig.one("takeover_requested", "v1")
    assert request.incident is None  # alone until the MRM comes
    _mrm(rig, T0 + 0.5)
    mrm = rig.one("mrm_active", "v1")
    assert request.incident == mrm.incident == request.id  # the card is the request's
    assert request.incident_group == mrm.incident_group == GROUP
    incident = rig.engine.incidents.open[request.id]
    assert incident.vehicles() == ["v1"] and incident.state == "raised"
    assert sorted(incident.members) == sorted([request.id, mrm.id])

    rig.engine.acknowledge_incident(request.id, "op-a", T0 + 3)
    assert request.state == mrm.state == "acknowledged"
    assert request.acknowledged_by == mrm.acknowledged_by == "op-a"
    # the journal keeps both alerts, each with its own transitions
    assert rig.kinds(request.id) == ["raised", "grouped", "acknowledged"]
    assert rig.kinds(mrm.id) == ["raised", "grouped", "acknowledged"]
    for alert in (request, mrm):
        assert rig.journal.alert(alert.id) is not None
        assert rig.journal.alert(alert.id).incident == request.id  # type: ignore[union-attr]


def test_the_mrm_after_an_acknowledged_request_joins_covered(tmp_path: Path) -> None:
    """The operator took the request; the vehicle starts its MRM 20 s later: it joins the card
    acknowledged in the operator's name (said so in the journal), not as a new alarm."""
    rig = _on_duty(tmp_path)
    _request(rig, T0)
    request = rig.one("takeover_requested", "v1")
    rig.engine.acknowledge(request.id, "op-a", T0 + 4)
    _mrm(rig, T0 + 20)
    mrm = rig.one("mrm_active", "v1")
    assert mrm.incident == request.id
    assert mrm.state == "acknowledged" and mrm.acknowledged_by == "op-a"
    assert not mrm.escalated
    last = rig.journal.history(mrm.id)[-1]
    assert last.kind == "acknowledged" and last.actor is None  # the hub did it ...
    assert "covered by op-a's acknowledgement of alert" in last.detail  # ... in whose name
    rig.step(T0 + 60)
    assert not mrm.escalated


def test_an_unrelated_mrm_stays_its_own_card(tmp_path: Path) -> None:
    """Another vehicle's MRM, and an MRM long after the request, are not the request's."""
    rig = _on_duty(tmp_path)
    _request(rig, T0)
    _mrm(rig, T0 + 1, "v2")
    assert rig.one("mrm_active", "v2").incident is None
    request = rig.one("takeover_requested", "v1")
    assert request.incident is None
    _mrm(rig, T0 + 61.5)  # past the group's 60 s window
    assert rig.one("mrm_active", "v1").incident is None
    assert request.incident is None


def test_the_card_survives_a_restart(tmp_path: Path) -> None:
    rig = _on_duty(tmp_path)
    _request(rig, T0)
    _mrm(rig, T0 + 0.25)
    request = rig.one("takeover_requested", "v1")
    rig.journal.close()
    journal = SqliteJournal(tmp_path / "j.sqlite")
    engine = AlertEngine(rules=rig.engine.rules, journal=journal, duty=rig.duty,
                         ul_required_kbps=lambda _: None)
    (incident,) = engine.incidents.open.values()
    assert incident.id == request.id and incident.group == GROUP
    assert {a.rule for a in incident.members.values()} == {"takeover_requested", "mrm_active"}
    journal.close()


BY_VEHICLE = textwrap.dedent("""
    [[rule]]
    name = "asked"
    title = "Asked"
    scope = "event"
    when = "kind == 'takeover_request'"
    severity = "takeover"

    [[rule]]
    name = "hub_down"
    title = "Hub down"
    scope = "hub"
    when = "journal == 'down'"
    severity = "warning"
""")


@pytest.mark.parametrize(("group", "message"), [
    ('rules = ["asked", "hub_down"]\n', "only event, vehicle, link, handover rules can be "
                                        "grouped by vehicle"),
    ('rules = ["asked"]\n', "min_members counts rules"),
])
def test_a_grouping_by_vehicle_is_validated(group: str, message: str) -> None:
    text = BY_VEHICLE + '[[group]]\nname = "g"\ntitle = "G"\nby = "vehicle"\n' + group
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="rules.toml")
    assert message in str(caught.value)
