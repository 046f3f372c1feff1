"""Fleet and vehicle picture: connectivity, table limits, staleness through the Hub, floods."""

from __future__ import annotations

import json

import msgspec
import pytest

from l4mon.config import HubConfig
from l4mon.hub import Hub
from l4mon.store.journal import open_journal
from telemetry.fleet import CAPACITY, SITE_CONFLICT, Fleet, FleetLimits, Refused
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE, UNKNOWN
from telemetry.sequence import URGENT
from telemetry.topics import Route, event_topic, link_topic, state_topic
from telemetry.vehicle import (
    ALL_LINKS_DOWN,
    CONNECTED,
    CONNECTED_DEGRADED,
    FRESH,
    ONE_LINK_DOWN,
    connectivity,
)
from telemetry.wire import LinkSample, RsuStatus, VehicleEvent, VehicleState

T0 = 1_700_000_000.0


def link_msg(seq: int, ts: float, rtt: float | None = 20.0) -> LinkSample:
    return LinkSample(ts=ts, seq=seq, rat="nr", cell_id="c1", rsrp_dbm=-80.0, sinr_db=20.0,
                      rtt_ms=rtt)


def state_msg(seq: int, ts: float) -> VehicleState:
    return VehicleState(ts=ts, seq=seq, lat=36.0, lon=136.0, speed_mps=5.0, heading_deg=90.0,
                        mode="autonomous")


def link_json(seq: int, ts: float, rtt: float | None = 20.0) -> bytes:
    return json.dumps({"ts": ts, "seq": seq, "rat": "nr", "cell_id": "c1", "rsrp_dbm": -80.0,
                       "sinr_db": 20.0, "rtt_ms": rtt}).encode()


def state_json(seq: int, ts: float) -> bytes:
    return json.dumps({"ts": ts, "seq": seq, "lat": 36.0, "lon": 136.0, "speed_mps": 5.0,
                       "heading_deg": 90.0, "mode": "autonomous"}).encode()


# -- connectivity ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("states", "expected"), [
    ([OK, OK], CONNECTED),
    ([OK], CONNECTED),
    ([OK, UNKNOWN], CONNECTED),
    ([OK, DEGRADED], CONNECTED_DEGRADED),
    ([DEGRADED, DEGRADED], CONNECTED_DEGRADED),
    ([OK, DOWN], ONE_LINK_DOWN),
    ([DEGRADED, STALE], ONE_LINK_DOWN),
    ([OK, OK, STALE], ONE_LINK_DOWN),
    ([DOWN, STALE], ALL_LINKS_DOWN),
    ([DOWN], ALL_LINKS_DOWN),
    ([DOWN, UNKNOWN], ALL_LINKS_DOWN),
    ([], UNKNOWN),
    ([UNKNOWN, UNKNOWN], UNKNOWN),
])
def test_connectivity(states: list[str], expected: str) -> None:
    """Connectivity is derived from every link: one dead link is not the same as all."""
    assert connectivity(states) == expected


# -- limits ----------------------------------------------------------------------------------------

def test_max_vehicles_refuses_and_creates_nothing() -> None:
    """At max_vehicles, with no newcomer to let go (both vehicles expected, so vouched for),
    a new vehicle is refused with 'capacity' and no track is created."""
    fleet = Fleet(limits=FleetLimits(max_vehicles=2))
    fleet.expect("v1", "s1")
    fleet.expect("v2", "s1")
    fleet.apply(Route("state", "s1", "v1"), state_msg(0, T0), T0)
    fleet.apply(Route("link", "s1", "v2", "a"), link_msg(0, T0), T0)
    with pytest.raises(Refused) as info:
        fleet.bind(Route("link", "s1", "v3", "a"))
    assert info.value.reason == CAPACITY
    with pytest.raises(Refused):
        fleet.bind(Route("state", "s1", "v3"))
    assert sorted(fleet.vehicles) == ["v1", "v2"]
    # Known vehicles still take new streams.
    assert fleet.apply(Route("link", "s1", "v1", "b"), link_msg(0, T0), T0) is True
    assert sorted(fleet.vehicles["v1"].links) == ["b"]


def test_max_rsus_refuses() -> None:
    """At max_rsus a new RSU is refused with 'capacity'."""
    fleet = Fleet(limits=FleetLimits(max_rsus=1))
    msg = RsuStatus(ts=T0, seq=0, intersection="ix")
    assert fleet.apply(Route("rsu", "s1", "r1"), msg, T0) is True
    with pytest.raises(Refused) as info:
        fleet.apply(Route("rsu", "s1", "r2"), msg, T0)
    assert info.value.reason == CAPACITY
    assert list(fleet.rsus) == ["r1"]


def test_site_conflict() -> None:
    """A vehicle or RSU id already seen under another site is refused as site_conflict."""
    fleet = Fleet()
    fleet.apply(Route("state", "s1", "v1"), state_msg(0, T0), T0)
    for route in (Route("state", "s2", "v1"), Route("link", "s2", "v1", "a"),
                  Route("event", "s2", "v1")):
        with pytest.raises(Refused) as info:
            fleet.bind(route)
        assert info.value.reason == SITE_CONFLICT
    fleet.apply(Route("rsu", "s1", "r1"), RsuStatus(ts=T0, seq=0, intersection="ix"), T0)
    with pytest.raises(Refused) as info:
        fleet.bind(Route("rsu", "s2", "r1"))
    assert info.value.reason == SITE_CONFLICT
    assert fleet.vehicles["v1"].site == "s1"
    assert fleet.vehicles["v1"].links == {}


def test_max_links_per_vehicle() -> None:
    """A vehicle takes max_links_per_vehicle links; the next one is refused, the others stay."""
    fleet = Fleet(limits=FleetLimits(max_links_per_vehicle=2))
    fleet.apply(Route("link", "s1", "v1", "a"), link_msg(0, T0), T0)
    fleet.apply(Route("link", "s1", "v1", "b"), link_msg(0, T0), T0)
    with pytest.raises(Refused) as info:
        fleet.bind(Route("link", "s1", "v1", "c"))
    assert info.value.reason == CAPACITY
    assert sorted(fleet.vehicles["v1"].links) == ["a", "b"]
    assert fleet.apply(Route("link", "s1", "v1", "a"), link_msg(1, T0), T0) is True


def test_apply_reports_duplicates() -> None:
    """apply returns False for a redelivered state, event or RSU status."""
    fleet = Fleet()
    state = Route("state", "s1", "v1")
    assert fleet.apply(state, state_msg(0, T0), T0) is True
    assert fleet.apply(state, state_msg(0, T0), T0 + 0.1) is False
    ev = VehicleEvent(ts=T0, kind="door_open", seq=4)
    assert fleet.apply(Route("event", "s1", "v1"), ev, T0) == URGENT  # new, for the alert rules
    assert fleet.apply(Route("event", "s1", "v1"), ev, T0) is False
    assert len(fleet.vehicles["v1"].events) == 1
    no_seq = VehicleEvent(ts=T0, kind="door_open")
    assert fleet.apply(Route("event", "s1", "v1"), no_seq, T0) == URGENT
    assert fleet.apply(Route("event", "s1", "v1"), no_seq, T0) == URGENT  # cannot be told apart
    rsu = RsuStatus(ts=T0, seq=5, intersection="ix")
    assert fleet.apply(Route("rsu", "s1", "r1"), rsu, T0) is True
    assert fleet.apply(Route("rsu", "s1", "r1"), rsu, T0) is False


def test_late_state_keeps_newest_pose() -> None:
    """A late vehicle state is accepted but does not replace the newer pose."""
    fleet = Fleet()
    route = Route("state", "s1", "v1")
    fleet.apply(route, state_msg(0, T0), T0)
    fleet.apply(route, state_msg(2, T0 + 0.2), T0 + 0.2)
    assert fleet.apply(route, state_msg(1, T0 + 0.1), T0 + 0.3) is True
    vehicle = fleet.vehicles["v1"]
    assert vehicle.state is not None and vehicle.state.seq == 2
    assert vehicle.state_rx == T0 + 0.2
    assert vehicle.state_seq.reordered == 1


# -- through the Hub ------------------------------------------------------------------------------

class Sim:
    """One vehicle with two links and state at 10 Hz into a Hub, ticking after every batch."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.step = 0
        self.seq = {"state": 0, "a": 0, "b": 0}

    @property
    def now(self) -> float:
        return T0 + self.step * 0.1

    def run(self, seconds: float, streams: tuple[str, ...] = ("state", "a", "b")) -> None:
        for _ in range(round(seconds * 10)):
            self.step += 1
            now = self.now
            batch: list[tuple[str, bytes, str | None]] = []
            for name in streams:
                seq = self.seq[name]
                self.seq[name] += 1
                if name == "state":
                    batch.append((state_topic("s1", "v1"), state_json(seq, now - 0.02), None))
                else:
                    batch.append((link_topic("s1", "v1", name), link_json(seq, now - 0.02),
                                  None))
            self.hub.ingest(batch, now)
            self.hub.tick(now)


def test_hub_all_links_stop_while_state_continues() -> None:
    """Both links silent but state flowing: all_links_down once stale_after_s has passed."""
    hub = Hub(store=open_journal(":memory:"))
    sim = Sim(hub)
    sim.run(3.0)
    vehicle = hub.fleet.vehicles["v1"]
    assert (vehicle.connectivity, vehicle.telemetry) == (CONNECTED, FRESH)
    last_link = sim.now
    sim.run(0.9, streams=("state",))
    assert vehicle.connectivity == CONNECTED
    changed = hub.tick(last_link + hub.config.links.stale_after_s + 0.05)
    assert vehicle.connectivity == ALL_LINKS_DOWN
    assert vehicle.telemetry == FRESH
    assert {link.health.state for link in vehicle.links.values()} == {STALE}
    assert set(changed) == {("v1", "a"), ("v1", "b"), ("v1", None)}


def test_hub_one_link_stops() -> None:
    """One link silent, the other fine: one_link_down."""
    hub = Hub(store=open_journal(":memory:"))
    sim = Sim(hub)
    sim.run(3.0)
    sim.run(1.5, streams=("state", "a"))
    vehicle = hub.fleet.vehicles["v1"]
    assert vehicle.connectivity == ONE_LINK_DOWN
    assert (vehicle.links["a"].health.state, vehicle.links["b"].health.state) == (OK, STALE)
    assert hub.fleet.link_state_counts()[STALE] == 1
    assert hub.fleet.link_state_counts()[OK] == 1


def test_hub_state_stops_makes_telemetry_stale() -> None:
    """State silent, links fine: telemetry stale, connectivity still ok."""
    hub = Hub(store=open_journal(":memory:"))
    sim = Sim(hub)
    sim.run(3.0)
    vehicle = hub.fleet.vehicles["v1"]
    sim.run(0.9, streams=("a", "b"))
    assert vehicle.telemetry == FRESH
    sim.run(0.3, streams=("a", "b"))
    assert vehicle.telemetry == STALE
    assert vehicle.connectivity == CONNECTED


def test_hub_quarantines_capacity_and_site_conflict() -> None:
    """Refusals by the fleet are quarantined with their reason and nothing is created."""
    hub = Hub(store=open_journal(":memory:"), config=HubConfig(fleet=FleetLimits(max_vehicles=1)))
    hub.fleet.expect("v1", "s1")  # vouched for: no newcomer to let go for v2 and v3
    batch = [
        (state_topic("s1", "v1"), state_json(0, T0), None),
        (state_topic("s1", "v2"), state_json(0, T0), None),
        (link_topic("s1", "v3", "a"), link_json(0, T0), None),
        (event_topic("s2", "v1"), b'{"ts": 1700000000, "kind": "door_open"}', None),
    ]
    hub.ingest(batch, T0 + 0.05)
    assert list(hub.fleet.vehicles) == ["v1"]
    assert (hub.received, hub.accepted, hub.duplicates) == (4, 1, 0)
    assert hub.quarantine.counts == {"capacity": 2, "site_conflict": 1}
    newest = list(hub.quarantine.newest())
    assert [q.reason for q in newest] == ["site_conflict", "capacity", "capacity"]
    assert newest[1].topic == link_topic("s1", "v3", "a")
    # Refused again on the next batch: the refusal is not cached as a binding.
    hub.ingest([(state_topic("s1", "v2"), state_json(1, T0), None)], T0 + 0.1)
    assert hub.quarantine.counts["capacity"] == 3


def test_hub_flood_of_malformed_interleaved_with_valid() -> None:
    """10,000 bad messages among 1,000 good ones: all good accepted, none lost, bad quarantined."""
    hub = Hub(store=open_journal(":memory:"))
    now = T0 + 0.5
    bad_kinds = [
        (link_topic("s1", "v1", "a"), b"{", None),  # malformed on a live topic
        (link_topic("s1", "v2", "b"), b'{"ts": 1700000000, "seq": 1, "rat": "x"}', None),
        ("l4mon/v1/s1/vehicle/+/state", state_json(0, T0), None),
        (state_topic("s1", "v1"), b"\xc1", "application/msgpack"),
        (link_topic("s1", "v1", "b"), link_json(0, T0), "text/plain"),
        (link_topic("s1", "v2", "a"), link_json(0, T0 + 10_000.0), None),
        (link_topic("s1", "v1", "a"), b"[]", None),
        (link_topic("s1", "v2", "a"), b'{"ts": 1e999, "seq": 0, "rat": "nr"}', None),
        (link_topic("s1", "v1", "b"), b" " * 20_000, None),
        (state_topic("s1", "v2"), state_json(0, T0 - 100_000.0), None),
    ]
    good = [(v, a) for v in ("v1", "v2") for a in ("a", "b")]
    batch: list[tuple[str, bytes, str | None]] = []
    for i in range(1_000):
        vehicle, link = good[i % 4]
        batch.append((link_topic("s1", vehicle, link), link_json(i // 4, T0 + (i // 4) * 0.001),
                      None))
        for j in range(10):
            batch.append(bad_kinds[(i + j) % len(bad_kinds)])
    hub.ingest(batch, now)
    assert hub.received == 11_000
    assert hub.accepted == 1_000
    assert hub.duplicates == 0
    assert hub.quarantine.total == 10_000
    assert len(hub.quarantine) == hub.config.ingest.quarantine_capacity
    assert hub.quarantine.counts == {
        "malformed": 2_000, "out_of_range": 1_000, "bad_name": 1_000,
        "unsupported_encoding": 1_000, "ts_future": 1_000, "schema": 1_000,
        "non_finite": 1_000, "oversize": 1_000, "ts_past": 1_000,
    }
    for vehicle, link in good:
        seq = hub.fleet.vehicles[vehicle].links[link].seq
        assert (seq.received, seq.lost, seq.duplicates, seq.high) == (250, 0, 0, 249)


def test_a_bug_in_a_handler_costs_one_message_not_the_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside state handling quarantines that message; the rest of the batch lands."""
    from l4mon.hub import INTERNAL_ERROR, Hub
    from telemetry.vehicle import VehicleTrack
    from telemetry.wire import VehicleState

    def broken(self: VehicleTrack, msg: VehicleState, now: float) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(VehicleTrack, "add_state", broken)
    now = 1_700_000_000.0
    hub = Hub(store=open_journal(":memory:"))
    state = msgspec.json.encode(VehicleState(ts=now, seq=0, lat=36.0, lon=136.0, speed_mps=1.0,
                                             heading_deg=0.0, mode="autonomous"))
    link = msgspec.json.encode(LinkSample(ts=now, seq=0, rat="nr", rtt_ms=20.0))
    hub.ingest([("l4mon/v1/s/vehicle/v1/state", state, None),
                ("l4mon/v1/s/vehicle/v1/link/l5g", link, None)], now)
    assert hub.accepted == 1
    assert hub.quarantine.counts == {INTERNAL_ERROR: 1}
    assert hub.fleet.vehicles["v1"].links["l5g"].seq.received == 1


def test_clock_offset_is_warned_in_log_and_metrics(caplog: pytest.LogCaptureFixture) -> None:
    """A vehicle whose clock runs 5 s behind is logged once and counted in /metrics."""
    from l4mon.metrics import HubCollector, exposition, make_registry

    now = 1_700_000_000.0
    hub = Hub(store=open_journal(":memory:"))
    for seq in range(20):
        t = now + seq * 0.1
        hub.ingest([(link_topic("s", "skewed", "l5g"), msgspec.json.encode(
            LinkSample(ts=t - 5.0, seq=seq, rat="nr", rtt_ms=20.0)), None)], t)
    with caplog.at_level("WARNING", logger="l4mon.fleet"):
        hub.tick(now + 2.0)
        hub.tick(now + 2.25)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "skewed" in warnings[0] and "clock offset implausible" in warnings[0]
    text = exposition(make_registry(HubCollector(hub, buffer=lambda: None, mqtt=lambda: None)))
    assert b"l4mon_links_clock_suspect 1.0" in text
