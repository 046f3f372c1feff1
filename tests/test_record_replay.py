"""Record → replay is lossless, and replay is the live pipeline.

A live ``l4mon serve`` with a site plan and its own alert rules ingests a simulated fleet over
a real Mosquitto, half of it in MessagePack, with ``--record``. ``l4mon replay`` of that
recording, given nothing but the log, must come back with what the live hub decided: every
message accepted (none quarantined as malformed), the same alerts (custom rule and
intersection tags included), the same final handover records, the same sample counts. With a
link map configured, that includes the ``weak_link_ahead`` warnings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from l4mon.alerts.rules import DEFAULT_RULES_PATH
from l4mon.auth import hash_token
from scenarios.linkmap_build import build_map
from scenarios.scenario import run_log
from scenarios.sim import Fault, SimFleet
from telemetry.drivelog import read_manifest, read_table
from telemetry.linkmap import write_map
from telemetry.site import DEMO_SITE_PATH, load_site
from testing.broker import Broker, free_port
from testing.hub import TEST_TOKEN, launch_hub, stop_hub
from testing.linkmap_sim import SPOTS, PlacedSpot, sim_logs
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt

MSGPACK = "application/msgpack"
#: A rule of this test's own: only a replay that uses the recorded rules raises it.
EXTRA_RULE = '''
[[rule]]
name = "weak_signal_test"
title = "Weak signal (test rule)"
scope = "link"
when = "rsrp_dbm < -60 and state != 'stale'"
clear_when = "rsrp_dbm > -55"
severity = "info"
for_s = 1.0
'''
SECONDS = 24.0


def _config(tmp: Path, linkmap: Path | None = None) -> Path:
    rules = tmp / "rules.toml"
    rules.write_text(DEFAULT_RULES_PATH.read_text() + EXTRA_RULE)
    config = tmp / "hub.toml"
    config.write_text(
        f'[alerts]\njournal = "{tmp / "journal.sqlite"}"\nrules = "{rules}"\n'
        f'[site]\npath = "{DEMO_SITE_PATH}"\n'
        '[requirements]\nul_required_kbps = 6000.0\n'
        f'[[auth.tokens]]\nname = "tester"\nrole = "admin"\nsha256 = "{hash_token(TEST_TOKEN)}"\n'
        + (f'[linkmap]\npath = "{linkmap}"\nweather = "snow"\n' if linkmap else ""))
    return config


def _publish(broker: Broker, start: float) -> int:
    """The simulated fleet in real time; shuttle-02 and -04 speak MessagePack."""
    fleet = SimFleet(site=load_site(DEMO_SITE_PATH), vehicles=4, seed=7, start=start)
    fleet.inject(Fault(kind="both_links_down", vehicle="shuttle-02", start=start + 6.0,
                       duration=5.0))
    fleet.inject(Fault(kind="takeover_request", vehicle="shuttle-03", start=start + 9.0,
                       duration=1.0))
    fleet.inject(Fault(kind="bandwidth_cap", vehicle="shuttle-01", start=start + 4.0,
                       duration=14.0, value=800.0))
    sent = 0
    with Publisher(broker.host, broker.port) as pub:
        k = 0
        while (now := time.time()) < start + SECONDS:
            for topic, payload in fleet.advance(now):
                qos = 1 if topic.endswith("/event") else 0
                if "/shuttle-02/" in topic or "/shuttle-04/" in topic:
                    pub.publish(topic, msgspec.msgpack.encode(msgspec.json.decode(payload)),
                                qos=qos, content_type=MSGPACK)
                else:
                    pub.publish(topic, payload, qos=qos)
                sent += 1
            k += 1
            time.sleep(max(0.0, start + k * 0.1 - time.time()))
    return sent


def _alert_key(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["rule"], a["vehicle"], a["link"], a["intersection"])


def _linkmap(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A map of three simulated drives with a weak spot where the seed-7 fleet's shuttle-02
    is 18 s in (within 20 s of look-ahead from the start), and the drives."""
    spots = (*SPOTS, PlacedSpot("shuttle-02 at 18 s", 36.06212, 136.3455667, 30.0, 1.0,
                                "no_service"))
    logs = sim_logs(tmp_path / "drives", drives=3, laps_s=600.0, spots=spots)
    linkmap, _ = build_map(logs)
    write_map(tmp_path / "map", linkmap)
    return tmp_path / "map", logs


def test_replay_of_a_recording_decides_as_the_live_hub(broker: Broker, tmp_path: Path) -> None:
    """... and, with ``[linkmap] path``, its ``weak_link_ahead`` warnings come back
    too: the map found where it was, the condition with the log."""
    linkmap, drives = _linkmap(tmp_path)
    record = tmp_path / "rec"
    hub = launch_hub(broker, _config(tmp_path, linkmap), tmp_path / "hub.log", free_port(),
                     extra_args=["--record", str(record)])
    try:
        start = time.time()
        sent = _publish(broker, start)
        hub.wait_for(lambda: hub.json("/healthz")["ingest"]["received"] >= sent,
                     what=f"all {sent} messages")
        end = time.time()
        health = hub.json("/healthz")
        live_alerts = hub.json("/api/alerts", limit=1000)
        live_handovers = hub.json("/api/handovers", limit=10_000)["handovers"]
        live_samples = {v: {name: link["sequence"]["received"]
                            for name, link in hub.json(f"/api/vehicles/{v}")["links"].items()}
                        for v in ("shuttle-01", "shuttle-02", "shuttle-03", "shuttle-04")}
        briefs = hub.json("/api/vehicles")
    finally:
        stop_hub(hub)
    assert all(b["ahead"] is not None for b in briefs)  # a map, and a pose: known
    assert health["ingest"]["quarantined"] == 0  # type: ignore[index]

    manifest = read_manifest(record)
    assert manifest.site == "eiheiji-demo" and manifest.site_plan is not None
    # each vehicle said it entered service: recorded as received, with the rest
    service = [r for r in read_table(record).select(["kind", "source", "service"]).to_pylist()
               if r["kind"] == "service"]
    assert sorted((r["source"], r["service"]) for r in service) == [
        (v, "in_service") for v in ("shuttle-01", "shuttle-02", "shuttle-03", "shuttle-04")]
    assert manifest.rules is not None and "weak_signal_test" in manifest.rules
    assert manifest.hub_config is not None and "auth" not in manifest.hub_config  # no secrets
    assert "path" not in manifest.hub_config.get("linkmap", {})  # this machine's: kept apart
    assert manifest.conditions.weather == "snow" and manifest.linkmap is not None

    doc = run_log(record)  # nothing but the log: its site, config and rules come with it
    assert doc["quarantine"] == {}  # the MessagePack vehicles decode as they did live
    assert doc["input"]["context"] == {"config": "recorded", "site": "eiheiji-demo",
                                       "linkmap": f"recorded ({linkmap.resolve()})"}
    replay_samples = {v: {n: k["samples"] for n, k in kp["links"].items()}
                      for v, kp in doc["kpis"].items()}
    assert replay_samples == live_samples

    # Alerts raised while the fleet was still publishing (not the staleness after it stopped).
    settled = end - 2.0
    live = sorted(_alert_key(a) for a in live_alerts if a["raised_at"] < settled)
    replayed = sorted(_alert_key(a) for a in doc["alerts"] if a["raised_at"] < settled)
    assert live == replayed
    rules = {k[0] for k in live}
    assert {"both_links_down", "takeover_requested", "uplink_below_requirement"} <= rules
    assert "weak_signal_test" in rules  # the hub's own rule, recorded with the log
    assert "weak_link_ahead" in rules  # the fleet drives past the map's placed weak spot
    by_key = {(_alert_key(a), round(a["raised_at"])): a for a in doc["alerts"]}
    for a in live_alerts:
        if a["raised_at"] < settled:
            twin = [b for (k, _), b in by_key.items() if k == _alert_key(a)]
            assert any(abs(b["raised_at"] - a["raised_at"]) <= 1.0 for b in twin), a

    # Handover records depend on the samples and their times only: identical.
    fields = ("vehicle", "link", "intersection", "kind", "at", "from_cell", "to_cell",
              "interruption_ms")
    replay_records = {tuple(h[f] for f in fields) for h in doc["handovers"]}
    assert live_handovers
    for h in live_handovers:
        assert tuple(h[f] for f in fields) in replay_records, h

    # A map that is not the recorded one is said to differ; a recorded map that is gone is
    # said to be, and then nothing is warned rather than guessed.
    more = sim_logs(tmp_path / "more", drives=1, laps_s=300.0, first_seed=9)
    other, _ = build_map([*drives, *more])
    write_map(tmp_path / "map2", other)
    changed = run_log(record, linkmap=str(tmp_path / "map2"))
    assert "not the map the recording hub used" in changed["input"]["context"]["linkmap"]
    linkmap.rename(tmp_path / "map-moved")
    gone = run_log(record)
    assert "is gone or has changed" in gone["input"]["context"]["linkmap"]
    assert not [a for a in gone["alerts"] if a["rule"] == "weak_link_ahead"]
