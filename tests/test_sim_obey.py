"""The simulated shuttles obey the operator's commands as docs/protocol.md asks a vehicle to:
each id executed once however often it arrives, every step answered, refusals with a reason."""

from __future__ import annotations

from scenarios.sim import Fault, SimFleet
from telemetry.commands import (
    ANSWER,
    Command,
    CommandAnswer,
    decode_answer,
    encode,
    parse_command_topic,
)
from telemetry.site import DEMO_SITE_PATH, load_site

START = 1_000_000.0


def _fleet() -> SimFleet:
    return SimFleet(site=load_site(DEMO_SITE_PATH), vehicles=2, rate_hz=10.0, seed=3,
                    start=START)


def _answers(out: list[tuple[str, bytes]], vehicle: str) -> list[CommandAnswer]:
    found = []
    for topic, payload in out:
        route = parse_command_topic(topic)
        if route is not None and route.kind == ANSWER and route.vehicle == vehicle:
            found.append(decode_answer(payload))
    return found


def _run(fleet: SimFleet, until: float) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    t = fleet.now
    while t < until:
        t = round(t + 0.1, 6)
        out += fleet.advance(t)
    return out


def _send(fleet: SimFleet, vehicle: str, command_id: str, kind: str) -> None:
    assert fleet.command(vehicle, encode(Command(id=command_id, kind=kind,  # type: ignore[arg-type]
                                                 ts=fleet.now, by="op")))


def test_a_stop_sent_twice_is_executed_once() -> None:
    """stop s1, resumed by r1; s1 arriving again (a QoS 1 resend) is answered with how far it
    got, and the shuttle keeps driving."""
    fleet = _fleet()
    _run(fleet, START + 5)
    _send(fleet, "shuttle-01", "s1", "stop")
    out = _run(fleet, START + 25)
    assert [(a.id, a.status) for a in _answers(out, "shuttle-01")] == [
        ("s1", "received"), ("s1", "executing"), ("s1", "done")]
    assert fleet.mode("shuttle-01") == "mrm"
    _send(fleet, "shuttle-01", "r1", "resume")
    _run(fleet, START + 26)
    assert fleet.mode("shuttle-01") == "autonomous"
    _send(fleet, "shuttle-01", "s1", "stop")
    out = _run(fleet, START + 30)
    assert [(a.id, a.status) for a in _answers(out, "shuttle-01")] == [("s1", "done")]
    assert fleet.mode("shuttle-01") == "autonomous"
    assert _answers(out, "shuttle-02") == []


def test_resume_is_refused_while_a_link_is_down_and_then_obeyed() -> None:
    """A stopped shuttle with its 5G link down refuses to resume, saying why; once the link is
    back, a new resume is obeyed."""
    fleet = _fleet()
    _run(fleet, START + 2)
    _send(fleet, "shuttle-02", "s2", "stop")
    _run(fleet, START + 20)
    fleet.inject(Fault(kind="link_down", vehicle="shuttle-02", link="l5g", start=START + 20,
                       duration=5.0))
    _run(fleet, START + 21)
    _send(fleet, "shuttle-02", "r2", "resume")
    out = _run(fleet, START + 22)
    (refusal,) = [a for a in _answers(out, "shuttle-02") if a.status == "refused"]
    assert refusal.id == "r2" and refusal.reason is not None and "link is down" in refusal.reason
    assert fleet.mode("shuttle-02") == "mrm"
    _run(fleet, START + 26)
    _send(fleet, "shuttle-02", "r3", "resume")
    out = _run(fleet, START + 27)
    assert [a.status for a in _answers(out, "shuttle-02")] == ["received", "executing", "done"]
    assert fleet.mode("shuttle-02") == "autonomous"


def test_a_command_waits_while_both_links_are_down() -> None:
    """Both links down: nothing reaches the shuttle (the broker keeps the command); it is
    taken and answered once a link is back."""
    fleet = _fleet()
    _run(fleet, START + 2)
    fleet.inject(Fault(kind="both_links_down", vehicle="shuttle-01", start=START + 2,
                       duration=3.0))
    _send(fleet, "shuttle-01", "m1", "message")
    assert _answers(_run(fleet, START + 4.5), "shuttle-01") == []
    out = _run(fleet, START + 6)
    assert [(a.id, a.status) for a in _answers(out, "shuttle-01")] == [
        ("m1", "received"), ("m1", "done")]
