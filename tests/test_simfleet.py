"""The simulated fleet: wire validity, determinism, rates, handovers and faults."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import pairwise
from typing import Any

import msgspec
import pytest

from scenarios.conditions import model_for
from scenarios.sim import Fault, SimFleet
from telemetry.site import DEMO_SITE_PATH, Site, load_site
from telemetry.topics import parse_topic
from telemetry.wire import LinkSample, RsuStatus, ServiceStatus, VehicleEvent, VehicleState

T0 = 1_700_000_000.0
V1 = "shuttle-01"
_TYPES: dict[str, type[Any]] = {
    "state": VehicleState,
    "link": LinkSample,
    "event": VehicleEvent,
    "rsu": RsuStatus,
    "service": ServiceStatus,
}


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(DEMO_SITE_PATH)


def decode(messages: list[tuple[str, bytes]]) -> dict[tuple[str, str], list[Any]]:
    """Decode every message strictly by its topic; group by (source, stream)."""
    streams: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for topic, payload in messages:
        route = parse_topic(topic)
        assert route is not None, topic
        assert route.site == "eiheiji-demo"
        msg = msgspec.json.decode(payload, type=_TYPES[route.kind])
        streams[(route.source, route.link or route.kind)].append(msg)
    return streams


def run(fleet: SimFleet, until: float, step: float = 0.1) -> list[tuple[str, bytes]]:
    """Advance like a live loop would, in small steps."""
    out: list[tuple[str, bytes]] = []
    n = 1
    while fleet.now < until:
        out += fleet.advance(min(until, T0 + n * step))
        n += 1
    return out


def test_every_payload_decodes_and_rates_hold(site: Site) -> None:
    """10 s at 10 Hz: 100 ±1 per vehicle stream, 10 ±1 per RSU, all valid, seq 0,1,2..."""
    fleet = SimFleet(site=site, vehicles=4, seed=3, start=T0)
    assert fleet.vehicle_ids == ["shuttle-01", "shuttle-02", "shuttle-03", "shuttle-04"]
    streams = decode(run(fleet, T0 + 10.0))
    for vid in fleet.vehicle_ids:
        for stream in ("state", "l5g", "lte"):
            msgs = streams[(vid, stream)]
            assert abs(len(msgs) - 100) <= 1, (vid, stream)
            assert [m.seq for m in msgs] == list(range(len(msgs)))
            assert all(T0 < m.ts <= T0 + 10.0 for m in msgs)
            assert all(b.ts - a.ts == pytest.approx(0.1, abs=1e-6) for a, b in pairwise(msgs))
        assert {m.rat for m in streams[(vid, "l5g")]} == {"nr"}
        assert {m.rat for m in streams[(vid, "lte")]} == {"lte"}
        assert {m.mode for m in streams[(vid, "state")]} == {"autonomous"}
        assert (vid, "event") not in streams  # no fault, no event
        # announced once, before anything else the vehicle sent
        (said,) = streams[(vid, "service")]
        assert said.status == "in_service" and said.ts <= streams[(vid, "state")][0].ts
    for rsu in fleet.rsu_ids:
        msgs = streams[(rsu, "rsu")]
        assert abs(len(msgs) - 10) <= 1
        assert [m.seq for m in msgs] == list(range(len(msgs)))
        assert all(b.tx_msgs - a.tx_msgs in (9, 10, 11) for a, b in pairwise(msgs))


def test_messages_are_in_time_order_and_only_once(site: Site) -> None:
    """advance returns (prev, now] only, sorted by ts; a repeated now returns nothing."""
    fleet = SimFleet(site=site, vehicles=3, seed=1, start=T0)
    assert fleet.advance(T0) == []
    first = fleet.advance(T0 + 1.0)
    assert fleet.advance(T0 + 1.0) == [] and fleet.advance(T0 + 0.5) == []
    ts = [msgspec.json.decode(p)["ts"] for _, p in first + fleet.advance(T0 + 2.0)]
    assert ts == sorted(ts) and ts[0] > T0 and ts[-1] <= T0 + 2.0


def test_deterministic_and_independent_of_call_pattern(site: Site) -> None:
    """Same seed gives identical bytes, however the timeline is split; another seed differs."""
    a = SimFleet(site=site, vehicles=4, seed=7, start=T0)
    b = SimFleet(site=site, vehicles=4, seed=7, start=T0)
    c = SimFleet(site=site, vehicles=4, seed=8, start=T0)
    one = a.advance(T0 + 5.0)
    assert one == run(b, T0 + 5.0, step=0.037)
    assert one != c.advance(T0 + 5.0)


def test_a_vehicle_leaves_service_then_returns(site: Site) -> None:
    """end_service: the vehicle says so at its next tick and then sends nothing at all;
    start_service: it says so and reports again, its sequence numbers carrying on."""
    fleet = SimFleet(site=site, vehicles=2, seed=0, start=T0)
    run(fleet, T0 + 5.0)
    fleet.end_service(V1, "end of shift")
    off = decode(run(fleet, T0 + 15.0))
    said = off[(V1, "service")]
    assert [(m.status, m.reason) for m in said] == [("out_of_service", "end of shift")]
    assert set(off) & {(V1, "state"), (V1, "l5g"), (V1, "lte")} == set()
    assert not fleet.in_service(V1) and fleet.in_service("shuttle-02")
    assert len(off[("shuttle-02", "state")]) >= 99  # the other vehicle carries on
    fleet.start_service(V1)
    back = decode(run(fleet, T0 + 20.0))
    assert [m.status for m in back[(V1, "service")]] == ["in_service"]
    assert back[(V1, "state")][0].seq == 50 and len(back[(V1, "state")]) >= 49
    with pytest.raises(ValueError, match="unknown vehicle"):
        fleet.end_service("shuttle-99")


def test_serving_cells_change_over_a_lap(site: Site) -> None:
    """Driving one ~1.9 km lap hands over on both links, with a probe lost at the handover."""
    fleet = SimFleet(site=site, vehicles=1, seed=0, start=T0)
    streams = decode(fleet.advance(T0 + 330.0))
    for link in ("l5g", "lte"):
        samples = streams[(V1, link)]
        changes = [
            i for i in range(1, len(samples)) if samples[i].cell_id != samples[i - 1].cell_id
        ]
        assert 1 <= len(changes) <= 6, link
        assert all(samples[i].rtt_ms is None for i in changes)
    states = streams[(V1, "state")]
    assert 5.0 <= max(s.speed_mps for s in states) <= 8.0
    in_junction = [s for s in states if site.intersection_at(s.lat, s.lon)]
    assert in_junction and max(s.speed_mps for s in in_junction) <= 3.5
    rx = [s.v2i_rx for s in states if s.v2i_rx]
    assert rx and max(n for d in rx for n in d.values()) > 100


def test_link_down_silences_that_link_then_it_resumes(site: Site) -> None:
    """A dead modem sends nothing for the fault's duration; its seq carries on without a gap."""
    fleet = SimFleet(site=site, vehicles=2, seed=0, start=T0)
    fleet.inject(Fault(kind="link_down", vehicle=V1, link="l5g", start=T0 + 2.0, duration=3.0))
    streams = decode(fleet.advance(T0 + 8.0))
    l5g = streams[(V1, "l5g")]
    assert not [m for m in l5g if T0 + 2.0 <= m.ts < T0 + 5.0]
    assert [m for m in l5g if m.ts < T0 + 2.0] and [m for m in l5g if m.ts >= T0 + 5.0]
    assert [m.seq for m in l5g] == list(range(len(l5g)))
    assert abs(len(l5g) - 50) <= 1
    for other in ((V1, "lte"), (V1, "state"), ("shuttle-02", "l5g")):
        assert abs(len(streams[other]) - 80) <= 1


def test_both_links_down_and_stall(site: Site) -> None:
    """Both links down: state is lost (seq gap); a stall: nothing produced (no gap)."""
    fleet = SimFleet(site=site, vehicles=2, seed=0, start=T0)
    fleet.inject(Fault(kind="both_links_down", vehicle=V1, start=T0 + 1.0, duration=2.0))
    fleet.inject(Fault(kind="telemetry_stall", vehicle="shuttle-02", start=T0 + 1.0, duration=2.0))
    streams = decode(fleet.advance(T0 + 5.0))
    for vid in fleet.vehicle_ids:
        for stream in ("state", "l5g", "lte"):
            msgs = streams[(vid, stream)]
            assert not [m for m in msgs if T0 + 1.0 <= m.ts < T0 + 3.0]
            assert abs(len(msgs) - 30) <= 1
    seqs = [m.seq for m in streams[(V1, "state")]]
    assert seqs[-1] - seqs[0] + 1 == pytest.approx(50, abs=1)  # 20 lost in transit
    assert [m.seq for m in streams[("shuttle-02", "state")]] == list(range(len(seqs)))
    for link in ("l5g", "lte"):  # dead modems measure nothing, so nothing is lost
        assert [m.seq for m in streams[(V1, link)]] == list(range(len(streams[(V1, link)])))


def test_takeover_request_emits_events_and_mrm(site: Site) -> None:
    """A takeover fault: takeover_request + mrm_started, mode mrm and a stop, then mrm_finished."""
    fleet = SimFleet(site=site, vehicles=2, seed=0, start=T0)
    fleet.inject(Fault(kind="takeover_request", vehicle=V1, start=T0 + 1.0, duration=10.0))
    streams = decode(fleet.advance(T0 + 12.0))
    events = streams[(V1, "event")]
    assert [e.kind for e in events] == ["takeover_request", "mrm_started", "mrm_finished"]
    assert [e.seq for e in events] == [0, 1, 2]
    assert T0 + 1.0 <= events[0].ts < T0 + 1.1 and T0 + 11.0 <= events[2].ts < T0 + 11.1
    states = streams[(V1, "state")]
    mrm = [s for s in states if T0 + 1.0 <= s.ts < T0 + 11.0]
    assert {s.mode for s in mrm} == {"mrm"} and mrm[-1].speed_mps == 0.0
    assert states[-1].mode == "autonomous"
    assert ("shuttle-02", "event") not in streams


def test_rtt_spike_bandwidth_cap_and_clock_skew(site: Site) -> None:
    """Degradations change the numbers only inside their window and only where aimed."""
    fleet = SimFleet(site=site, vehicles=2, seed=0, start=T0)
    w = {"start": T0 + 1.0, "duration": 2.0}
    fleet.inject(Fault(kind="rtt_spike", vehicle=V1, link="lte", value=400.0, **w))
    fleet.inject(Fault(kind="bandwidth_cap", vehicle=V1, value=800.0, **w))
    fleet.inject(Fault(kind="clock_skew", vehicle="shuttle-02", value=-30.0, **w))
    streams = decode(fleet.advance(T0 + 4.0))

    def inside(msgs: list[Any]) -> list[Any]:
        return [m for m in msgs if T0 + 1.0 <= m.ts < T0 + 3.0]

    lte, l5g = streams[(V1, "lte")], streams[(V1, "l5g")]
    assert all(m.rtt_ms > 400.0 for m in inside(lte) if m.rtt_ms is not None)
    untouched = [m for m in lte if not T0 + 1.0 <= m.ts < T0 + 3.0] + l5g
    assert all(m.rtt_ms < 400.0 for m in untouched if m.rtt_ms is not None)
    assert all(m.ul_kbps <= 800.0 for m in inside(lte) + inside(l5g))
    assert max(m.ul_kbps for m in l5g) > 800.0
    skewed = [m for m in streams[("shuttle-02", "state")] if m.ts < T0]
    assert abs(len(skewed) - 20) <= 1 and all(m.ts >= T0 - 29.0 for m in skewed)


def test_fault_validation(site: Site) -> None:
    """Bad faults are rejected when built or injected."""
    with pytest.raises(ValueError, match="link_down needs link"):
        Fault(kind="link_down", vehicle=V1, start=T0, duration=1.0)
    with pytest.raises(ValueError, match="whole vehicle"):
        Fault(kind="telemetry_stall", vehicle=V1, link="lte", start=T0, duration=1.0)
    with pytest.raises(ValueError, match="positive duration"):
        Fault(kind="rtt_spike", vehicle=V1, start=T0, duration=0.0)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="meteor", vehicle=V1, start=T0, duration=1.0)  # type: ignore[arg-type]
    fault = msgspec.convert(
        {"kind": "rtt_spike", "vehicle": V1, "start": T0, "duration": 1.0}, type=Fault
    )
    assert fault.amount == 250.0 and fault.end == T0 + 1.0
    with pytest.raises(ValueError, match="unknown vehicle"):
        SimFleet(site=site, vehicles=1, start=T0).inject(
            Fault(kind="clock_skew", vehicle="shuttle-09", start=T0, duration=1.0)
        )
    with pytest.raises(ValueError):
        SimFleet(site=site, rate_hz=0.0, start=T0)


# -- pinned output ---------------------------------------------------------------------------

#: Exact bytes of a few messages of ``_pinned_run`` (topics without "l4mon/v1/eiheiji-demo/"):
#: the first tick of every vehicle and of one RSU, the takeover's events, and the first
#: no-service report from the dark cell.
PINNED_MESSAGES: list[tuple[str, bytes]] = [
    ("vehicle/shuttle-03/service",
     b'{"ts":1700000000.0187469,"status":"in_service"}'),
    ("vehicle/shuttle-03/state",
     b'{"ts":1700000000.0187469,"seq":0,"lat":36.0651089,"lon":136.3425441,'
     b'"speed_mps":5.92,"heading_deg":267.0,"mode":"autonomous","v2i_rx":{"rsu-shihi":1}}'),
    ("vehicle/shuttle-03/link/l5g",
     b'{"ts":1700000000.0187469,"seq":0,"rat":"nr","cell_id":"l5g-shihi","rsrp_dbm":-75.0,'
     b'"rsrq_db":-7.7,"sinr_db":20.3,"rtt_ms":22.3,"ul_kbps":46924.5,"dl_kbps":87833.0}'),
    ("vehicle/shuttle-03/link/lte",
     b'{"ts":1700000000.0187469,"seq":0,"rat":"lte","cell_id":"lte-yamanoue-n",'
     b'"rsrp_dbm":-91.9,"rsrq_db":-8.8,"sinr_db":13.4,"rtt_ms":35.1,"ul_kbps":11261.8,'
     b'"dl_kbps":25851.1}'),
    ("vehicle/shuttle-01/service",
     b'{"ts":1700000000.028407,"status":"in_service"}'),
    ("vehicle/shuttle-01/state",
     b'{"ts":1700000000.028407,"seq":0,"lat":36.0619995,"lon":136.3390057,"speed_mps":5.13,'
     b'"heading_deg":95.7,"mode":"autonomous","v2i_rx":{"rsu-araya":1}}'),
    ("vehicle/shuttle-01/link/l5g",
     b'{"ts":1700000000.028407,"seq":0,"rat":"nr","cell_id":"l5g-araya","rsrp_dbm":-84.2,'
     b'"rsrq_db":-7.4,"sinr_db":17.1,"rtt_ms":16.3,"ul_kbps":43274.5,"dl_kbps":73889.3}'),
    ("vehicle/shuttle-01/link/lte",
     b'{"ts":1700000000.028407,"seq":0,"rat":"lte","cell_id":"lte-matsuoka-w",'
     b'"rsrp_dbm":-71.3,"rsrq_db":-10.1,"sinr_db":17.7,"rtt_ms":32.4,"ul_kbps":15929.7,'
     b'"dl_kbps":34439.8}'),
    ("vehicle/shuttle-02/service",
     b'{"ts":1700000000.043579,"status":"in_service"}'),
    ("vehicle/shuttle-02/state",
     b'{"ts":1700000000.043579,"seq":0,"lat":36.0622026,"lon":136.3459579,"speed_mps":5.0,'
     b'"heading_deg":75.4,"mode":"autonomous"}'),
    ("vehicle/shuttle-01/event",
     b'{"ts":1700000002.028407,"kind":"takeover_request","seq":0,'
     b'"detail":"system asked a remote operator to take over (simulated fault)"}'),
    ("vehicle/shuttle-01/event",
     b'{"ts":1700000002.028407,"kind":"mrm_started","seq":1,'
     b'"detail":"minimal risk manoeuvre: controlled stop in lane"}'),
    ("vehicle/shuttle-01/event",
     b'{"ts":1700000005.028407,"kind":"mrm_finished","seq":2,'
     b'"detail":"minimal risk manoeuvre ended; autonomous driving resumed"}'),
    ("vehicle/shuttle-01/link/lte",
     b'{"ts":1700000010.028407,"seq":90,"rat":"none","probe":false}'),
]
#: How many messages ``_pinned_run`` sends, and the SHA-256 of all of them in order
#: (topic, NUL, payload, newline each).
PINNED_COUNT = 1306
PINNED_DIGEST = "57cf92216103864fb2441a52a0de5f8cab4764dd5b2f85fe42f6886ea23cfd26"


def _pinned_run(site: Site) -> list[tuple[str, bytes]]:
    """15 s of three shuttles in snow (fades, slower driving), every fault kind and a cell
    outage: driving, V2I, both radio links, RSUs, events and outages all have their say."""
    fleet = SimFleet(site=site, vehicles=3, seed=5, start=T0, conditions=model_for("snow"))
    for fault in (
        Fault(kind="takeover_request", vehicle=V1, start=T0 + 2, duration=3),
        Fault(kind="link_down", vehicle="shuttle-02", link="l5g", start=T0 + 2, duration=2),
        Fault(kind="rtt_spike", vehicle="shuttle-02", link="lte", start=T0 + 5, duration=2),
        Fault(kind="bandwidth_cap", vehicle="shuttle-03", start=T0 + 3, duration=2),
        Fault(kind="clock_skew", vehicle="shuttle-03", value=-1.5, start=T0 + 6, duration=2),
        Fault(kind="telemetry_stall", vehicle=V1, start=T0 + 8, duration=1),
        Fault(kind="both_links_down", vehicle="shuttle-02", start=T0 + 9, duration=1),
    ):
        fleet.inject(fault)
    fleet.cell_outage("lte-matsuoka-w", T0 + 10, 3)
    return run(fleet, T0 + 15.0, step=0.25)


def test_same_seed_same_bytes_as_pinned(site: Site) -> None:
    """A fixed run gives the pinned bytes: refactoring the simulator must not change them.

    Only rounded figures go through libm, so last-bit differences between machines do not
    show. What does show is a change to the simulator, the demo site, the wire schema or the
    condition models; if that change is meant to alter the simulated data, re-pin (and say so).
    """
    out = _pinned_run(site)
    picked = (
        out[:10]
        + [m for m in out if m[0].endswith("/event")]
        + [next(m for m in out if b'"rat":"none"' in m[1])]
    )
    prefix = "l4mon/v1/eiheiji-demo/"
    assert [(topic.removeprefix(prefix), payload) for topic, payload in picked] == PINNED_MESSAGES
    digest = hashlib.sha256(b"".join(t.encode() + b"\0" + p + b"\n" for t, p in out))
    assert (len(out), digest.hexdigest()) == (PINNED_COUNT, PINNED_DIGEST)
