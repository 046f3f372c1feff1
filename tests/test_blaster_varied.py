"""The blaster's varied load (testing/blaster.py): what it sends decodes without quarantine,
and driven through the hub's real pipeline it makes handovers, alerts that are raised and
resolved, events and RSU status, as the soak needs."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from pathlib import Path

import msgspec
import pytest

from l4mon.assembly import build_hub
from l4mon.config import config_from_dict
from telemetry.decode import Decoder
from telemetry.site import DEMO_SITE_PATH, load_site
from telemetry.topics import parse_topic
from telemetry.wire import LinkSample, RsuStatus, VehicleEvent, VehicleState
from testing.blaster import Variation, VariedCycle, blast, parse_publishes
from testing.broker import Broker
from testing.hub import HubProcess

VEHICLES = 20
#: Short cycles and frequent happenings, so that 100 s show everything more than once.
VARIATION = Variation(cycle_rounds=50, handover_every_s=30.0, spike_share=0.1,
                      spike_every_s=30.0, events_per_min=60.0, rsu_hz=2.0, mrm_rounds=20)
SECONDS = 100.0
ROUND_S = 0.1


def _drive(tmp_path: Path) -> dict[str, object]:
    """Send SECONDS of the varied load, round by round on a virtual clock, through a decoder
    and a hub built as ``serve`` builds it (on the demo site); return what both saw."""
    cycle = VariedCycle(VEHICLES, "bench", 0, VARIATION)
    decoder = Decoder()
    config = config_from_dict({"alerts": {"journal": str(tmp_path / "journal.sqlite")}})
    hub = build_hub(config, site=load_site(DEMO_SITE_PATH))
    start = float(int(time.time()))
    cells: dict[tuple[str, str], list[tuple[float, str | None]]] = defaultdict(list)
    rtts: dict[tuple[str, str], list[float]] = defaultdict(list)
    modes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    takeover_vehicles: set[str] = set()
    rsus: Counter[str] = Counter()
    rejected: list[str] = []
    next_tick = start
    sent = 0
    for round_no in range(int(SECONDS / ROUND_S)):
        now = start + round_no * ROUND_S
        first, count, _ = cycle.prepare(round_no, now, sent)
        sent += count
        data = cycle.buf[cycle.offset(first):cycle.offset(first + count)]
        batch = [(t, p, None) for t, p, _ in parse_publishes(data)]
        batch += [(t, p, None) for t, p, _ in cycle.side_messages(now, round_no + 1)]
        for topic, payload, _ in batch:
            try:
                route, msg, _ = decoder.decode(topic, payload, now)
            except Exception as error:
                rejected.append(f"{topic}: {error}")
                continue
            if isinstance(msg, LinkSample):
                cells[(route.source, route.link or "")].append((now, msg.cell_id))
                if msg.rtt_ms is not None:
                    rtts[(route.source, route.link or "")].append(msg.rtt_ms)
            elif isinstance(msg, VehicleState):
                modes[msg.mode] += 1
            elif isinstance(msg, VehicleEvent):
                kinds[msg.kind] += 1
                if msg.kind == "takeover_request":
                    takeover_vehicles.add(route.source)
            elif isinstance(msg, RsuStatus):
                rsus[route.source] += 1
        while next_tick <= now:  # the ticks due before this round arrives
            hub.tick(next_tick)
            next_tick += 0.25
        hub.ingest(batch, now)
    end = start + SECONDS
    assert hub.alerts is not None
    alerts = hub.alerts.journal.alerts(limit=1_000)
    histories = {a.id: [(t.kind, t.actor) for t in hub.alerts.journal.history(a.id)]
                 for a in alerts}
    out = {"cycle": cycle, "hub": hub, "cells": cells, "rtts": rtts, "modes": modes,
           "kinds": kinds, "takeover_vehicles": takeover_vehicles, "rsus": rsus,
           "rejected": rejected, "alerts": alerts, "histories": histories, "start": start,
           "end": end,
           "v2i": hub.intersections.snapshot(end)}
    hub.alerts.journal.close()
    return out


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return _drive(tmp_path_factory.mktemp("varied"))


def test_everything_it_sends_decodes(driven: dict) -> None:
    """Telemetry, events and RSU status all pass the decoder and the hub's ingest."""
    assert driven["rejected"] == []
    hub = driven["hub"]
    assert hub.quarantine.total == 0
    assert hub.accepted == hub.received > 0
    assert hub.duplicates == 0


def test_cells_change_and_every_change_is_a_successful_handover(driven: dict) -> None:
    """Each link's serving cell changes now and then (not every cycle: the cycle is 5 s);
    the hub's detector finds each change as a successful handover, some in a junction."""
    changes: list[float] = []
    for samples in driven["cells"].values():
        changes += [t for (_, a), (t, b) in itertools.pairwise(samples) if a != b]
    assert len(driven["cells"]) == 2 * VEHICLES
    links_changed = sum(len({c for _, c in s}) > 1 for s in driven["cells"].values())
    assert links_changed >= VEHICLES  # most links change within 100 s
    per_link_per_min = len(changes) / (2 * VEHICLES) / (SECONDS / 60)
    assert 0.5 < per_link_per_min < 4.0  # ~every 30 s, never more often than every 15 s
    hub = driven["hub"]
    counts = hub.handovers.counts
    # Records are final a few seconds after the change (the new cell's first probes).
    settled = sum(t <= driven["end"] - 7.0 for t in changes)
    assert counts.get("success", 0) >= settled
    assert sum(counts.values()) <= len(changes)
    assert set(counts) == {"success"}  # no failure, ping-pong or too-frequent
    in_junction = [e for e in hub.handovers.kept if e.intersection is not None]
    assert in_junction, "no handover happened inside an intersection zone"


def test_rtt_varies_and_spikes_raise_alerts_that_resolve(driven: dict) -> None:
    """RTT jitters on every link; a few links spike over the degraded threshold, which
    raises rtt_over_budget, and the alert resolves once the spike has passed."""
    rtts = driven["rtts"]
    assert all(len(set(values)) > 20 for values in rtts.values())
    spiked = [link for link, values in rtts.items() if max(values) > 150.0]
    assert len(spiked) == 2  # vehicles 5 and 15 (spike_share 0.1 of 20)
    normal = [link for link in rtts if link not in spiked]
    assert all(max(rtts[link]) < 150.0 for link in normal)
    rtt_alerts = [a for a in driven["alerts"] if a.rule == "rtt_over_budget"]
    assert {(a.vehicle, a.link) for a in rtt_alerts} == set(spiked)
    # Spikes 30 s apart: each resolves by itself (no actor) and the next one reopens it.
    for alert in rtt_alerts:
        history = driven["histories"][alert.id]
        kinds = [kind for kind, _ in history]
        assert kinds[0] == "raised" and ("resolved", None) in history
        assert kinds.count("reopened") == alert.flaps >= 1
        assert alert.state == "resolved" or alert.last_raised_at > driven["end"] - 30.0


def test_events_mrm_and_rsu_status_are_sent_at_a_bounded_rate(driven: dict) -> None:
    """Events at events_per_min (an MRM episode is two, and the state says "mrm" meanwhile,
    which raises mrm_active, resolved once it ends); RSU status at rsu_hz from each RSU."""
    kinds = driven["kinds"]
    assert 0 < sum(kinds.values()) <= VARIATION.events_per_min * SECONDS / 60 + 2
    assert kinds["takeover_request"] >= 5
    assert kinds["mrm_started"] >= 2 and kinds["mrm_finished"] >= kinds["mrm_started"] - 1
    assert driven["modes"]["mrm"] >= 2 * VARIATION.mrm_rounds
    rules = Counter((a.rule, a.state) for a in driven["alerts"])
    # One open alert per vehicle: a second request while it is open only keeps it open.
    assert rules[("takeover_requested", "raised")] == len(driven["takeover_vehicles"]) >= 5
    assert rules[("mrm_active", "resolved")] >= 2
    assert {rule for rule, _ in rules} == {"takeover_requested", "mrm_active",
                                           "rtt_over_budget"}  # nothing else fires
    assert dict(driven["rsus"]) == {"rsu-araya": pytest.approx(200, abs=2),
                                    "rsu-shihi": pytest.approx(200, abs=2)}
    hub = driven["hub"]
    assert set(hub.fleet.rsus) == {"rsu-araya", "rsu-shihi"}
    delivery = driven["v2i"]["ix-araya"]["v2i"]["delivery_ratio"]
    assert delivery is not None and 0.5 < delivery <= 1.0


def test_the_cycle_is_sized_by_its_buffer_and_events_keep_their_own_sequence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """100 rounds by default, fewer (never under MIN_CYCLE_ROUNDS) when the buffer would pass
    its cap; QoS 1 packets carry packet ids; events of one vehicle are numbered 0, 1, 2... so
    that a QoS 1 redelivery is told from a new event."""
    from testing import blaster

    plain = VariedCycle(VEHICLES, "bench", 0, Variation())
    assert plain.rounds == blaster.DEFAULT_CYCLE_ROUNDS
    assert plain.buffer_bytes == plain.rounds * plain.round_bytes
    monkeypatch.setattr(blaster, "MAX_CYCLE_BYTES", 60 * plain.round_bytes)
    assert VariedCycle(VEHICLES, "bench", 0, Variation()).rounds == 60
    monkeypatch.setattr(blaster, "MAX_CYCLE_BYTES", plain.round_bytes)
    assert VariedCycle(VEHICLES, "bench", 0, Variation()).rounds == blaster.MIN_CYCLE_ROUNDS
    monkeypatch.undo()
    cycle = VariedCycle(VEHICLES, "bench", 1, Variation(events_per_min=600.0))
    assert cycle.round_bytes == plain.round_bytes + 2 * cycle.streams  # the packet ids
    first, count, rounds = cycle.prepare(0, time.time(), 0)
    assert (first, count, rounds) == (0, 3 * VEHICLES, 1)
    publishes = list(parse_publishes(cycle.buf[:cycle.offset(count)]))
    assert len(publishes) == count and {q for _, _, q in publishes} == {1}
    seqs: dict[str, list[int]] = defaultdict(list)
    now = time.time()
    for i in range(400):
        for topic, payload, qos in cycle.side_messages(now + i * 0.5, i * 5):
            route = parse_topic(topic)
            assert route is not None
            if route.kind == "event":
                assert qos == 1
                seqs[route.source].append(msgspec.json.decode(payload, type=VehicleEvent).seq)
    assert sum(len(s) for s in seqs.values()) <= 600 * 200 / 60 + 2
    assert any(len(s) > 1 for s in seqs.values())
    assert all(s == list(range(len(s))) for s in seqs.values())


@pytest.mark.mqtt
def test_varied_blast_through_a_broker_is_all_accepted(broker: Broker,
                                                       hub_process: HubProcess) -> None:
    """Over a real broker and ``l4mon serve``: every message of the varied load accepted,
    events acknowledged (after processing), RSU status received, nothing quarantined."""
    result = blast(host=broker.host, port=broker.port, vehicles=VEHICLES, rate=600.0,
                   duration_s=3.0, varied=Variation(events_per_min=300.0, rsu_hz=2.0))
    assert result.sent >= 1_500 and result.cycle_rounds == 100
    assert result.events >= 5 and result.events_acked == result.events
    assert result.rsu_status >= 8
    total = result.sent + result.events + result.rsu_status
    hub_process.wait_for(lambda: hub_process.health()["ingest"]["received"] >= total,
                         what=f"{total} messages")
    ingest = hub_process.health()["ingest"]
    assert ingest["accepted"] == total and ingest["quarantined"] == 0
    assert len(hub_process.json("/api/rsus")) == 2
