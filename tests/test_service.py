"""A vehicle's service lifecycle: it says when it enters and leaves; out of service nothing is
raised, silent in service it is a takeover as before, and the journal keeps which was which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from l4mon.alerts.lifecycle import SERVICE_ACTOR
from l4mon.assembly import build_runtime
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, IngestSettings
from telemetry.topics import service_topic
from telemetry.vehicle import IN_SERVICE, OUT_OF_SERVICE
from telemetry.wire import ServiceStatus
from tests.test_alert_engine import GOOD, NO_SERVICE, T0, Rig, both_links

SITE = "s1"
EVERY_TICK = HubConfig(ingest=IngestSettings(alert_interval_s=0.25))


def say(rig: Rig, at: float, vehicle: str, status: str, reason: str | None = None, *,
        ts: float | None = None) -> None:
    rig.send(at, (service_topic(SITE, vehicle),
                  ServiceStatus(ts=at if ts is None else ts, status=status, reason=reason)))  # type: ignore[arg-type]


def drive(rig: Rig, start: float, seconds: float, vehicles: tuple[str, ...] = ("v1",), *,
          links: dict[str, dict[str, Any]] | None = None, step: float = 0.1) -> float:
    """Every vehicle sends state and two good links at 10 Hz (ticking each step); returns the
    time of the last step."""
    at = start
    for k in range(round(seconds / step)):
        at = round(start + k * step, 6)
        for v in vehicles:
            rig.send(at, rig.state_msg(at, v))
            both_links(rig, at, v, *(links or {"a": GOOD, "b": GOOD}).values())
        rig.hub.tick(at)
    return at


def tick_until(rig: Rig, start: float, end: float, step: float = 0.25) -> None:
    at = start
    while at <= end + 1e-9:
        rig.hub.tick(at)
        at = round(at + step, 6)


def raised(rig: Rig, rule: str | None = None) -> list[tuple[str, str | None]]:
    return [(a.rule, a.vehicle) for a in rig.engine.journal.alerts(limit=1_000)
            if rule is None or a.rule == rule]


@pytest.fixture
def rig(journal_location: str) -> Rig:
    rig = Rig(journal_location, config=EVERY_TICK)
    rig.duty.go_on("alice", T0 - 100)
    return rig


def test_a_vehicle_that_leaves_service_and_falls_silent_raises_nothing(rig: Rig) -> None:
    """It says it leaves, then nothing for ten minutes: no alert, its links are unknown, not
    stale, it is not counted as the site going blind; the journal says so."""
    say(rig, T0, "v1", IN_SERVICE)
    say(rig, T0, "v2", IN_SERVICE)
    last = drive(rig, T0, 5.0, ("v1", "v2"))
    say(rig, last + 0.05, "v1", OUT_OF_SERVICE, "end of shift")
    say(rig, last + 0.05, "v2", OUT_OF_SERVICE, "end of shift")
    tick_until(rig, last + 0.25, last + 600)
    assert raised(rig) == []
    v1 = rig.hub.fleet.vehicles["v1"]
    assert (v1.service, v1.service_reason) == (OUT_OF_SERVICE, "end of shift")
    assert {link.health.state for link in v1.links.values()} == {"unknown"}
    assert rig.hub.feed.sites[SITE].state == "ok"  # two vehicles leaving is not a blind hub
    log = rig.journal.service_log(vehicle="v1")
    assert [(e["status"], e["reason"]) for e in log] == [(OUT_OF_SERVICE, "end of shift"),
                                                         (IN_SERVICE, None)]


@pytest.mark.parametrize("announced", [True, False])
def test_a_vehicle_silent_in_service_is_a_takeover_as_before(rig: Rig, announced: bool) -> None:
    """Silent without a word: both_links_down at the same moment whether the vehicle said it
    was in service or never said anything (as every vehicle before the protocol could)."""
    if announced:
        say(rig, T0, "v1", IN_SERVICE)
    last = drive(rig, T0, 5.0)
    tick_until(rig, last + 0.25, last + 5)
    (alert,) = rig.engine.journal.alerts(limit=10)
    assert alert.rule == "both_links_down" and alert.severity == "takeover"
    # stale 1 s after the last sample (10 Hz), judged at the next 0.25 s tick
    assert alert.raised_at == pytest.approx(last + 1.25)
    assert alert.title == "Both links down: vehicle unreachable"


def test_leaving_service_closes_its_alerts_with_the_reason(rig: Rig) -> None:
    """An open takeover closes when the vehicle leaves service, resolved by "service" with the
    reason; back in service, the same fault raises a new alert, not the old one reopened."""
    say(rig, T0, "v1", IN_SERVICE)
    last = drive(rig, T0, 3.0)
    drive(rig, last + 0.1, 2.0, links={"a": NO_SERVICE, "b": NO_SERVICE})
    first = rig.one("both_links_down", "v1")
    say(rig, last + 2.2, "v1", OUT_OF_SERVICE, "towed to the depot")
    assert rig.alerts() == []
    closed = rig.engine.journal.alert(first.id)
    assert closed is not None
    assert (closed.state, closed.resolved_by) == ("resolved", SERVICE_ACTOR)
    assert closed.resolve_reason == "vehicle left service: towed to the depot"
    say(rig, last + 30, "v1", IN_SERVICE)
    drive(rig, last + 30, 3.0, links={"a": NO_SERVICE, "b": NO_SERVICE})
    again = rig.one("both_links_down", "v1")
    assert again.id != first.id and again.flaps == 0


def test_a_will_is_journaled_and_the_takeover_still_comes_from_silence(rig: Rig) -> None:
    """The MQTT last will (offline) does not end the service: the vehicle is still expected,
    its silence is a takeover, and the journal says the connection dropped without a word."""
    say(rig, T0, "v1", IN_SERVICE)
    last = drive(rig, T0, 3.0)
    # the broker publishes the will with the payload fixed at connect time: an old ts
    say(rig, last + 0.5, "v1", "offline", "connection lost", ts=T0 - 3 * 86_400)
    tick_until(rig, last + 0.25, last + 5)
    assert raised(rig) == [("both_links_down", "v1")]
    assert rig.hub.fleet.vehicles["v1"].service == IN_SERVICE
    log = rig.journal.service_log(vehicle="v1")
    assert [e["status"] for e in log] == ["offline", IN_SERVICE]


def test_a_vehicle_that_enters_service_and_never_reports_is_a_takeover(rig: Rig) -> None:
    """Said it is in service, sent nothing else: its position is unknown, which is a takeover
    once its pace could have been anything l4mon expects (no learned pace yet)."""
    say(rig, T0, "v9", IN_SERVICE)
    unlearned = rig.config.links.unlearned_stale_after_s
    tick_until(rig, T0 + 0.25, T0 + unlearned + 1)
    (alert,) = rig.engine.journal.alerts(limit=10)
    assert (alert.rule, alert.vehicle) == ("telemetry_stale", "v9")
    assert T0 + unlearned < alert.raised_at <= T0 + unlearned + 0.25


def test_back_in_service_nothing_across_the_pause_counts(rig: Rig) -> None:
    """A vehicle that left and came back: the sequence gap across the pause is no loss, its
    links are judged afresh, and nothing is raised for the time it was away."""
    say(rig, T0, "v1", IN_SERVICE)
    last = drive(rig, T0, 3.0)
    say(rig, last + 0.1, "v1", OUT_OF_SERVICE)
    tick_until(rig, last + 0.25, last + 120)
    rig._seq.clear()  # powered off and on: its streams start again from 0
    say(rig, last + 121, "v1", IN_SERVICE, "second shift")
    drive(rig, last + 121, 3.0)
    v1 = rig.hub.fleet.vehicles["v1"]
    assert raised(rig) == []
    assert all(link.seq.lost == 0 for link in v1.links.values())
    assert v1.connectivity == "ok" and v1.service_reason == "second shift"


def test_an_old_retained_status_is_taken_not_quarantined(rig: Rig) -> None:
    """A hub starting late gets the broker's retained status, days old: it is the vehicle's
    status still (a sample that old would be refused as ts_past)."""
    say(rig, T0, "v1", OUT_OF_SERVICE, "weekend", ts=T0 - 3 * 86_400)
    assert rig.hub.quarantine.total == 0
    assert rig.hub.fleet.vehicles["v1"].service == OUT_OF_SERVICE
    say(rig, T0 + 1, "v1", OUT_OF_SERVICE, "weekend", ts=T0 - 3 * 86_400)  # again: no change
    assert len(rig.journal.service_log(vehicle="v1")) == 1


def test_a_restarted_hub_resumes_each_vehicles_service(tmp_path: Path) -> None:
    """After a restart the journal's lifecycle holds: the vehicle out of service stays apart
    and silent without an alert; the one in service that is not heard again is a takeover."""
    journal = str(tmp_path / "j.sqlite")
    rig = Rig(journal, config=EVERY_TICK)
    say(rig, T0, "v1", IN_SERVICE)
    say(rig, T0, "v2", IN_SERVICE)
    last = drive(rig, T0, 3.0, ("v1", "v2"))
    say(rig, last + 0.1, "v2", OUT_OF_SERVICE, "end of shift")
    rig.journal.close()
    config = msgspec.structs.replace(EVERY_TICK, alerts=msgspec.structs.replace(
        EVERY_TICK.alerts, journal=journal))
    clock = ManualClock(last + 60)
    runtime = build_runtime(config, clock=clock)
    hub = runtime.hub
    assert {v: t.service for v, t in hub.fleet.vehicles.items()} == {
        "v1": IN_SERVICE, "v2": OUT_OF_SERVICE}
    unlearned = config.links.unlearned_stale_after_s
    tick_until_hub(hub, last + 60.25, last + 60 + unlearned + 1)
    assert hub.alerts is not None
    assert [(a.rule, a.vehicle) for a in hub.alerts.open_alerts()] == [("telemetry_stale", "v1")]


def tick_until_hub(hub: Any, start: float, end: float) -> None:
    at = start
    while at <= end + 1e-9:
        hub.tick(at)
        at = round(at + 0.25, 6)


@pytest.mark.parametrize(("links", "title"), [
    (1, "Its only link down: vehicle unreachable"),
    (2, "Both links down: vehicle unreachable"),
    (3, "All 3 links down: vehicle unreachable"),
    (4, "All 4 links down: vehicle unreachable"),
])
def test_no_usable_link_is_said_for_one_to_four_links(rig: Rig, links: int, title: str) -> None:
    names = ["a", "b", "c", "d"][:links]
    at = T0
    for k in range(30):
        at = round(T0 + k * 0.1, 6)
        rig.send(at, rig.state_msg(at), *(rig.link_msg(at, link=n) for n in names))
        rig.hub.tick(at)
    for k in range(1, 20):
        t = round(at + k * 0.1, 6)
        rig.send(t, rig.state_msg(t), *(rig.link_msg(t, link=n, rat="none", rtt=None)
                                         for n in names))
        rig.hub.tick(t)
    alert = rig.one("both_links_down", "v1")
    assert alert.title == title


@pytest.mark.parametrize(("total", "down", "title"), [
    (2, 1, "One link down, the other degraded"),
    (3, 1, "1 of 3 links down, the other 2 degraded"),
    (3, 2, "2 of 3 links down, the remaining one degraded"),
    (4, 3, "3 of 4 links down, the remaining one degraded"),
])
def test_a_link_down_the_rest_degraded_is_said_for_any_count(rig: Rig, total: int, down: int,
                                                             title: str) -> None:
    names = ["a", "b", "c", "d"][:total]
    at = T0
    for k in range(80):
        at = round(T0 + k * 0.1, 6)
        rig.send(at, rig.state_msg(at), *(
            rig.link_msg(at, link=n, rat="none", rtt=None) if i < down
            else rig.link_msg(at, link=n, rsrp=-115.0) for i, n in enumerate(names)))
        rig.hub.tick(at)
    alert = rig.one("link_down_other_degraded", "v1")
    assert alert.title == title


# -- the timetable: "should be running but is not heard" -------------------------------------------

def planned_rig(journal: str, *, timetable: list[dict[str, Any]],
                zone: str = "Asia/Tokyo") -> Any:
    config = msgspec.convert({
        "ingest": {"alert_interval_s": 0.25},
        "alerts": {"journal": journal},
        "service": {"timezone": zone, "timetable": timetable},
    }, HubConfig)
    return build_runtime(config, clock=ManualClock(0.0)).hub


#: 2023-11-15 08:00 in Tokyo (a Wednesday), 23:00 UTC the day before.
TOKYO_8AM = 1_700_002_800.0


def test_a_timetable_says_when_a_vehicle_is_planned() -> None:
    from l4mon.timetable import ServiceSettings, Timetable

    table = Timetable(msgspec.convert({"timezone": "Asia/Tokyo", "timetable": [
        {"vehicle": "day", "start": "07:00", "end": "19:00", "days": ["mon", "wed"]},
        {"vehicle": "night", "start": "22:00", "end": "02:00", "days": ["tue"]},
    ]}, ServiceSettings))
    assert table.planned("day", TOKYO_8AM) is True
    assert table.planned("day", TOKYO_8AM - 3_600 * 1.5) is False  # 06:30
    assert table.planned("day", TOKYO_8AM + 86_400) is False  # Thursday
    assert table.planned("night", TOKYO_8AM - 3_600 * 7) is True  # Wednesday 01:00 (Tuesday's)
    assert table.planned("night", TOKYO_8AM + 3_600 * 14.5) is False  # Wednesday 22:30
    assert table.planned("nobody", TOKYO_8AM) is None
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        msgspec.convert({"timezone": "Mars/Olympus"}, ServiceSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"timetable": [{"vehicle": "v", "start": "25:00", "end": "02:00"}]},
                        ServiceSettings)


def test_a_planned_vehicle_not_running_is_a_warning_after_the_grace(tmp_path: Path) -> None:
    """Planned 07:00-19:00: at 08:00 one shuttle never heard and one that left service are
    warned of after 5 min (leaving service does not close it); the one that is in service
    is not; once the first enters service its warning clears."""
    hub = planned_rig(str(tmp_path / "j.sqlite"), timetable=[
        {"vehicle": v, "start": "07:00", "end": "19:00", "site": SITE}
        for v in ("late", "left", "on-time")])
    assert set(hub.fleet.vehicles) == {"late", "left", "on-time"}  # expected before heard
    encode = msgspec.json.encode

    def send(at: float, vehicle: str, status: str) -> None:
        hub.ingest([(service_topic(SITE, vehicle),
                     encode(ServiceStatus(ts=at, status=status)), None)], at)  # type: ignore[arg-type]

    send(TOKYO_8AM, "on-time", IN_SERVICE)
    send(TOKYO_8AM, "left", IN_SERVICE)
    send(TOKYO_8AM + 60, "left", OUT_OF_SERVICE)
    tick_until_hub(hub, TOKYO_8AM, TOKYO_8AM + 299)
    assert [a.rule for a in hub.alerts.open_alerts()
            if a.rule == "not_running_as_planned"] == []  # within the grace
    # (on-time said it is in service and then sent nothing: that is a takeover of its own)
    assert {(a.vehicle, a.rule) for a in hub.alerts.open_alerts()} == {
        ("on-time", "telemetry_stale")}
    tick_until_hub(hub, TOKYO_8AM + 299.25, TOKYO_8AM + 370)
    warned = {(a.vehicle, a.rule, a.severity) for a in hub.alerts.open_alerts()
              if a.rule == "not_running_as_planned"}
    assert warned == {("late", "not_running_as_planned", "warning"),
                      ("left", "not_running_as_planned", "warning")}
    send(TOKYO_8AM + 371, "late", IN_SERVICE)
    tick_until_hub(hub, TOKYO_8AM + 371, TOKYO_8AM + 372)
    assert {a.vehicle for a in hub.alerts.open_alerts()
            if a.rule == "not_running_as_planned"} == {"left"}


@pytest.mark.parametrize("links", [1, 3, 4])
def test_every_connectivity_rule_for_one_three_and_four_links(rig: Rig, links: int) -> None:
    """All links usable: nothing. One link down of several: connectivity one_link_down and no
    takeover (another carries the vehicle). The usable links' uplink together is what the
    camera requirement (8 Mbit/s) is judged on: 3 Mbit/s per link is enough on three, short
    on one."""
    names = ["a", "b", "c", "d"][:links]
    at = T0
    for k in range(150):  # 4 s all up, then 11 s (past the uplink rule's 5 s hold)
        at = round(T0 + k * 0.1, 6)
        down = k >= 40 and links > 1
        rig.send(at, rig.state_msg(at), *(
            rig.link_msg(at, link=n, ul=3_000.0, rat="none" if down and i == 0 else "nr",
                         rtt=None if down and i == 0 else 20.0)
            for i, n in enumerate(names)))
        rig.hub.tick(at)
    vehicle = rig.hub.fleet.vehicles["v1"]
    raised = {(a.rule, a.severity) for a in rig.engine.journal.alerts(limit=100)}
    assert not {r for r, severity in raised if severity == "takeover"}
    assert vehicle.connectivity == ("one_link_down" if links > 1 else "ok")
    short = ("uplink_below_requirement", "warning") in raised
    # one link: 3 of 8 Mbit/s; three or four, then one down: 6 or 9 of 8
    assert short == (links < 4), (links, raised)
