"""The live and replay warning of a link map: rule ``weak_link_ahead``.

A hand-made drive (tests/test_linkmap.py's: east at 10 m/s, one link, uplink short of the
requirement in cell 2, no service in cells 4-5) is driven twice into a map; a third drive
replayed with ``--linkmap`` must be warned before it reaches the weak stretch, say how far
and how sure, clear once past it, and come out the same every time. Without a map nothing
is known ahead (None), not "safe".
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from l4mon.alerts.facts import LinkFacts
from l4mon.assembly import build_hub
from l4mon.config import config_from_dict
from scenarios.linkmap_build import build_map
from scenarios.scenario import prepare, run_prepared
from telemetry.daylight import light_at, sun_elevation_deg
from telemetry.linkmap import write_map
from telemetry.linkmap.outlook import POSE_MAX_AGE_S
from telemetry.wire import VehicleState
from tests.test_linkmap import FRAME, START, _drive

DAY = 86_400.0


@pytest.fixture(scope="module")
def mapped() -> Iterator[tuple[Path, Path, Path]]:
    """(map of two snow drives, a third snow drive, the third drive tagged clear)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = [_drive(root / f"d{i}", start=START + i * DAY) for i in (1, 2)]
        linkmap, _ = build_map(logs)
        write_map(root / "map", linkmap)
        held_out = _drive(root / "d3", start=START + 3 * DAY)
        clear = _drive(root / "d3-clear", start=START + 3 * DAY, weather="clear")
        yield root / "map", held_out, clear


def _replay(log: Path, linkmap: Path | None, **linkmap_settings: Any) -> dict[str, Any]:
    config = config_from_dict({"linkmap": linkmap_settings}) if linkmap_settings else None
    return run_prepared(prepare(log, config=config,
                                linkmap=None if linkmap is None else str(linkmap)))


def _warnings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in doc["alerts"] if a["rule"] == "weak_link_ahead"]


def test_a_replay_is_warned_before_the_weak_stretch_and_the_warning_clears_past_it(
        mapped: tuple[Path, Path, Path]) -> None:
    linkmap, log, _ = mapped
    doc = _replay(log, linkmap)
    assert doc["input"]["context"]["linkmap"] == f"given ({linkmap})"
    [warning] = _warnings(doc)
    start = doc["span"]["start"]
    # Cell 2 (x 50-75 m, uplink short on both past passes) is 49.5 m ahead at the first
    # pose: inside the 20 s × 10 m/s horizon, so the first evaluation warns, 5 s ahead.
    assert warning["link"] == "l5g" and warning["severity"] == "warning"
    assert warning["raised_at"] - start <= 1.5
    assert "l5g weak in 5 s (50 m ahead)" in warning["detail"]
    assert "on 2 of 2 past passes (under snow/daylight)" in warning["detail"]
    # It holds through the outage (x 100-150 m, 10-15 s) and clears once the road ahead is
    # fine: past the stretch the hub judged down (its 5 s recovery hold puts that a few
    # cells past the outage), before the drive ends.
    assert warning["resolved_at"] is not None
    assert 15.0 <= warning["resolved_at"] - start <= 28.0
    assert warning["resolved_by"] is None  # cleared by its condition, not by an operator


def test_the_horizon_decides_how_early(mapped: tuple[Path, Path, Path]) -> None:
    linkmap, log, _ = mapped
    [warning] = _warnings(_replay(log, linkmap, horizon_s=3.0))
    # 30 m of horizon: cell 2 (from x = 50 m) comes into it at x = 20 m, t = 2 s; a quiet
    # vehicle's rules run once a second.
    assert 1.5 <= warning["raised_at"] - START - 3 * DAY <= 3.6
    assert "in 3 s" in warning["detail"] or "in 2 s" in warning["detail"]


def test_replays_warn_at_the_same_times(mapped: tuple[Path, Path, Path]) -> None:
    linkmap, log, _ = mapped
    fields = ("rule", "vehicle", "link", "raised_at", "resolved_at", "detail")
    first, second = (_replay(log, linkmap) for _ in range(2))
    assert [[a[f] for f in fields] for a in _warnings(first)] == \
        [[a[f] for f in fields] for a in _warnings(second)] != []


def test_another_condition_falls_back_to_every_condition_pooled_and_says_so(
        mapped: tuple[Path, Path, Path]) -> None:
    linkmap, _, clear = mapped
    [warning] = _warnings(_replay(clear, linkmap))
    assert "(all conditions pooled)" in warning["detail"]


def test_too_few_passes_or_no_map_warns_of_nothing(mapped: tuple[Path, Path, Path]) -> None:
    linkmap, log, _ = mapped
    assert _warnings(_replay(log, linkmap, min_passes=3)) == []  # two passes: not known
    doc = _replay(log, None)
    assert doc["input"]["context"]["linkmap"] == "none" and _warnings(doc) == []


def test_the_facts_are_unknown_without_a_map_or_a_recent_pose(
        mapped: tuple[Path, Path, Path], tmp_path: Path) -> None:
    linkmap, _, _ = mapped
    hub = build_hub(config_from_dict({"alerts": {"journal": ":memory:"},
                                      "linkmap": {"path": str(linkmap), "weather": "snow",
                                                  "light": "daylight"}}))
    bare = build_hub(config_from_dict({"alerts": {"journal": ":memory:"}}))
    t = START + 5 * DAY
    lat, lon = FRAME.to_latlon(0.5, 12.5)
    state = msgspec.json.encode(VehicleState(ts=t, seq=1, lat=lat, lon=lon, speed_mps=10.0,
                                             heading_deg=90.0, mode="autonomous"))
    link = json.dumps({"ts": t, "seq": 1, "rat": "nr", "rtt_ms": 20.0}).encode()
    for h in (hub, bare):
        h.ingest([("l4mon/v1/test/vehicle/v1/state", state, None),
                  ("l4mon/v1/test/vehicle/v1/link/l5g", link, None)], t)
    vehicle = hub.fleet.vehicles["v1"]
    assert hub.lookahead is not None and bare.lookahead is None
    ahead = hub.lookahead.links(vehicle, t + 1.0)
    assert ahead is not None and ahead["l5g"].weak and ahead["l5g"].outlook.mapped
    facts = LinkFacts(vehicle, vehicle.links["l5g"], t + 1.0, ahead["l5g"])
    assert facts.weak_ahead is True and facts.weak_ahead_passes == 2
    assert facts.weak_ahead_in_s == pytest.approx(4.95, abs=0.1)  # 49.5 m at 10 m/s
    # A pose older than 3 s says nothing of where the vehicle is: unknown, not "clear".
    assert hub.lookahead.links(vehicle, t + POSE_MAX_AGE_S + 0.5) is None
    unknown = LinkFacts(vehicle, vehicle.links["l5g"], t + 1.0, None)
    assert unknown.weak_ahead is None and unknown.ahead_mapped is None
    # A road the map never saw: nothing weak, and said to be unmapped.
    far = VehicleState(ts=t + 2, seq=2, lat=lat + 0.05, lon=lon, speed_mps=10.0,
                       heading_deg=0.0, mode="autonomous")
    hub.ingest([("l4mon/v1/test/vehicle/v1/state", msgspec.json.encode(far), None)], t + 2)
    outlook = hub.lookahead.links(vehicle, t + 2.0)
    assert outlook is not None and not outlook["l5g"].weak
    assert outlook["l5g"].outlook.mapped is False


def test_light_follows_the_sun() -> None:
    noon_jst = 1_781_924_400.0  # 2026-06-20 03:00 UTC, 12:00 in Tokyo
    assert sun_elevation_deg(noon_jst, 35.68, 139.77) == pytest.approx(77.3, abs=0.5)
    assert light_at(noon_jst, 35.68, 139.77) == "daylight"
    assert light_at(noon_jst + 12 * 3600, 35.68, 139.77) == "night"
    # Tokyo, 3 December 2026: sunset 16:28 JST (07:28 UTC); civil dusk until ~16:56.
    sunset = 1_796_282_880.0
    assert light_at(sunset - 600, 35.68, 139.77) == "daylight"
    assert light_at(sunset + 900, 35.68, 139.77) == "dusk"
    assert light_at(sunset + 3600, 35.68, 139.77) == "night"


def test_the_command_line_replays_with_a_map_and_refuses_a_bad_one(
        mapped: tuple[Path, Path, Path], tmp_path: Path) -> None:
    linkmap, log, _ = mapped
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "l4mon", "replay", str(log), "--linkmap",
                          str(linkmap), "--out", str(out)], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"link map: given ({linkmap})" in run.stderr
    assert len(_warnings(json.loads(out.read_text()))) == 1
    bad = subprocess.run([sys.executable, "-m", "l4mon", "replay", str(log), "--linkmap",
                          str(tmp_path)], capture_output=True, text=True, check=False,
                         timeout=120)
    assert bad.returncode == 2 and "not a link map" in bad.stderr


def test_the_sites_rsus_say_the_weather_until_their_report_is_old(
        mapped: tuple[Path, Path, Path]) -> None:
    """An RSU's road weather sensor (``RsuStatus.weather``) picks the map's rows; without
    a report from the last ``weather_max_age_s`` the configured weather stands again. A
    weather the protocol does not know is quarantined, never guessed."""
    linkmap, _, _ = mapped
    hub = build_hub(config_from_dict({"alerts": {"journal": ":memory:"},
                                      "linkmap": {"path": str(linkmap), "weather": "clear",
                                                  "light": "daylight",
                                                  "weather_max_age_s": 600.0}}))
    t = START + 5 * DAY
    lat, lon = FRAME.to_latlon(0.5, 12.5)

    def pose(at: float, seq: int) -> None:
        state = VehicleState(ts=at, seq=seq, lat=lat, lon=lon, speed_mps=10.0,
                             heading_deg=90.0, mode="autonomous")
        link = json.dumps({"ts": at, "seq": seq, "rat": "nr", "rtt_ms": 20.0}).encode()
        hub.ingest([("l4mon/v1/test/vehicle/v1/state", msgspec.json.encode(state), None),
                    ("l4mon/v1/test/vehicle/v1/link/l5g", link, None)], at)

    def rsu(at: float, seq: int, weather: str) -> None:
        status = json.dumps({"ts": at, "seq": seq, "intersection": "ix-1",
                             "weather": weather}).encode()
        hub.ingest([("l4mon/v1/test/rsu/r1/status", status, None)], at)

    assert hub.lookahead is not None
    pose(t, 1)
    before = hub.lookahead.links(hub.fleet.vehicles["v1"], t)
    assert before is not None and before["l5g"].weather == "clear"
    assert before["l5g"].outlook.spot is not None and before["l5g"].outlook.spot.pooled
    rsu(t + 1, 1, "snow")
    pose(t + 2, 2)
    snowing = hub.lookahead.links(hub.fleet.vehicles["v1"], t + 2)
    assert snowing is not None and snowing["l5g"].weather == "snow"
    assert snowing["l5g"].outlook.spot is not None and not snowing["l5g"].outlook.spot.pooled
    pose(t + 700, 3)  # the report is 699 s old: past weather_max_age_s
    later = hub.lookahead.links(hub.fleet.vehicles["v1"], t + 700)
    assert later is not None and later["l5g"].weather == "clear"
    quarantined = len(hub.quarantine)
    rsu(t + 701, 2, "sleet")
    assert len(hub.quarantine) == quarantined + 1
