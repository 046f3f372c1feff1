"""Two hubs on one broker sharing a fleet: a shared group splits messages, sites split vehicles.

A shared subscription gives each message to one hub of the group, so every message is ingested
exactly once, but one vehicle's samples land on both hubs: each sees gaps in every stream and
counts them as loss. Partitioning by site (``[mqtt] sites``) gives each hub whole vehicles;
that is the scale-out that keeps link health right (docs/scaling.md).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgspec
import pytest

from l4mon.auth import hash_token
from l4mon.ingest.mqtt import MqttSettings
from telemetry.topics import link_topic, state_topic
from telemetry.wire import LinkSample, VehicleState
from testing.broker import Broker, free_port
from testing.hub import TEST_TOKEN, HubProcess, launch_hub, stop_hub
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt

VEHICLES_PER_SITE = 10
SITES = ("north", "south")
ROUNDS = 25  # 2.5 s at 10 Hz: 2 sites x 10 vehicles x 3 streams x 25 = 1,500 messages


def _config(tmp_path: Path, name: str, mqtt: str) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[mqtt]\nclient_id = "{name}"\n{mqtt}\n'
        f'[alerts]\njournal = "{tmp_path / name}-journal.sqlite"\n'
        f'[[auth.tokens]]\nname = "tester"\nrole = "admin"\nsha256 = "{hash_token(TEST_TOKEN)}"\n')
    return config


@contextmanager
def _two_hubs(broker: Broker, tmp_path: Path,
              mqtt: tuple[str, str]) -> Iterator[tuple[HubProcess, HubProcess]]:
    with ExitStack() as stack:
        hubs = []
        for n, extra in enumerate(mqtt, 1):
            hub = launch_hub(broker, _config(tmp_path, f"hub-{n}", extra),
                             tmp_path / f"hub-{n}.log", free_port())
            stack.callback(stop_hub, hub)
            hubs.append(hub)
        time.sleep(0.3)  # SUBSCRIBE goes out right after CONNACK; let the broker apply it
        yield hubs[0], hubs[1]


def _publish_fleet(broker: Broker) -> dict[str, int]:
    """10 Hz state + two links per vehicle, QoS 1 so nothing is lost on the way; sent per site.

    Each round goes out in a fresh random order, as independent vehicles' messages do: in a
    fixed order a round-robin broker would hand each stream to the same hub every time.
    """
    sent = dict.fromkeys(SITES, 0)
    order = random.Random(7)
    streams = [(site, f"{site}-{v:02d}", link) for site in SITES
               for v in range(VEHICLES_PER_SITE) for link in ("state", "l5g", "lte")]
    with Publisher(broker.host, broker.port, client_id="scale-out-pub") as pub:
        start = time.monotonic()
        for seq in range(ROUNDS):
            now = time.time()
            order.shuffle(streams)
            for site, vehicle, link in streams:
                if link == "state":
                    pub.publish(state_topic(site, vehicle), msgspec.json.encode(VehicleState(
                        ts=now, seq=seq, lat=48.1, lon=11.5, speed_mps=5.0, heading_deg=90.0,
                        mode="autonomous")), qos=1)
                else:
                    pub.publish(link_topic(site, vehicle, link), msgspec.json.encode(LinkSample(
                        ts=now, seq=seq, rat="nr" if link == "l5g" else "lte", rtt_ms=20.0)),
                        qos=1)
                sent[site] += 1
            time.sleep(max(0.0, start + (seq + 1) * 0.1 - time.monotonic()))
    return sent


def _view(hub: HubProcess) -> dict[str, object]:
    """What one hub ingested: accepted count, its vehicles, and the loss its streams report."""
    vehicles = {v["id"]: v["site"] for v in hub.json("/api/vehicles")}  # type: ignore[union-attr]
    lost = received = 0
    for vid in vehicles:
        detail = hub.json(f"/api/vehicles/{vid}")
        streams = [detail["state_sequence"],  # type: ignore[index]
                   *(link["sequence"] for link in detail["links"].values())]  # type: ignore[index]
        lost += sum(s["lost"] for s in streams)
        received += sum(s["received"] for s in streams)
    health = hub.json("/healthz")
    states = [link["state"] for v in hub.json("/api/vehicles")  # type: ignore[union-attr]
              for link in v["links"].values()]
    return {"alerts": len(hub.json("/api/alerts")),  # type: ignore[arg-type]
            "links_not_ok": sum(state != "ok" for state in states),
            "accepted": health["ingest"]["accepted"],  # type: ignore[index]
            "duplicates": health["ingest"]["duplicates"],  # type: ignore[index]
            "quarantined": health["ingest"]["quarantined"],  # type: ignore[index]
            "vehicles": vehicles, "lost": lost, "received": received}


def _settle(hubs: tuple[HubProcess, HubProcess], total: int) -> None:
    hubs[0].wait_for(lambda: sum(h.json("/healthz")["ingest"]["received"]  # type: ignore[index]
                                 for h in hubs) >= total, what=f"{total} messages ingested")
    time.sleep(0.3)  # nothing more may arrive


def test_site_settings_subscribe_to_those_sites_only() -> None:
    """``sites`` narrows the subscriptions; with a group they are shared within each site."""
    assert MqttSettings(sites=("a", "b")).topics() == [
        "l4mon/v1/a/vehicle/#", "l4mon/v1/a/rsu/#", "l4mon/v1/b/vehicle/#", "l4mon/v1/b/rsu/#"]
    assert MqttSettings(sites=("a",), shared_group="g").topics() == [
        "$share/g/l4mon/v1/a/vehicle/#", "$share/g/l4mon/v1/a/rsu/#"]
    for bad in (("a/#",), ("+",), ("a", "a"), ("",)):
        with pytest.raises(ValueError, match="sites"):
            MqttSettings(sites=bad)


def test_shared_group_ingests_each_message_once_but_splits_vehicles(broker: Broker,
                                                                    tmp_path: Path) -> None:
    """Shared group: every message exactly once across the hubs, both take a share; but each
    vehicle's streams are split per message, so both hubs track it and count false loss."""
    group = 'shared_group = "hubs"'
    with _two_hubs(broker, tmp_path, (group, group)) as hubs:
        sent = sum(_publish_fleet(broker).values())
        _settle(hubs, sent)
        one, two = (_view(h) for h in hubs)
    assert one["accepted"] + two["accepted"] == sent  # type: ignore[operator]
    assert one["accepted"] > 0 and two["accepted"] > 0  # type: ignore[operator]
    assert one["duplicates"] == two["duplicates"] == one["quarantined"] == two["quarantined"] == 0
    both = set(one["vehicles"]) & set(two["vehicles"])  # type: ignore[call-overload]
    false_loss = one["lost"] + two["lost"]  # type: ignore[operator]
    print(f"\nshared group: {sent} sent, hub-1 {one['accepted']} + hub-2 {two['accepted']}; "
          f"{len(both)} of {len(SITES) * VEHICLES_PER_SITE} vehicles on both hubs; "
          f"{false_loss} samples counted lost that were not; links not ok: "
          f"{one['links_not_ok']} + {two['links_not_ok']}; "
          f"alerts {one['alerts']} + {two['alerts']}")
    # Mosquitto hands a group's messages out per message: a vehicle is no hub's whole.
    assert len(both) > len(SITES) * VEHICLES_PER_SITE // 2
    assert false_loss > sent // 4  # type: ignore[operator]


def test_site_partition_gives_each_hub_whole_vehicles(broker: Broker, tmp_path: Path) -> None:
    """Partition by site: each hub sees exactly its site's vehicles, every message once, loss 0."""
    with _two_hubs(broker, tmp_path, ('sites = ["north"]', 'sites = ["south"]')) as hubs:
        sent = _publish_fleet(broker)
        _settle(hubs, sum(sent.values()))
        views = [_view(h) for h in hubs]
    for view, site in zip(views, SITES, strict=True):
        assert view["accepted"] == view["received"] == sent[site]
        assert view["vehicles"] == {f"{site}-{v:02d}": site for v in range(VEHICLES_PER_SITE)}
        assert view["lost"] == view["duplicates"] == view["quarantined"] == 0
        assert view["alerts"] == view["links_not_ok"] == 0
