"""``weak_link_ahead`` warnings gathered per stretch of road: one incident
per weak stretch, with the vehicles approaching or inside it, not one card per vehicle.

The hand-made drives of tests/test_linkmap.py (east at 10 m/s; uplink short in cell 2, no
service in cells 4 and 5) are built into a map: two weak stretches, cell 2 alone and cells
4-5 touching, with cell 3 fine between them. Five vehicles stand on the road in a real hub
with that map: two before cell 2, one before cells 4-5, one in cell 4, one in cell 5. The
last three name different weak cells ahead, yet share one stretch.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from l4mon.assembly import build_hub
from l4mon.config import config_from_dict
from l4mon.hub import Hub
from scenarios.linkmap_build import build_map
from telemetry.linkmap import write_map
from telemetry.wire import VehicleState
from tests.test_linkmap import FRAME, START, _drive

DAY = 86_400.0
#: metres east of the map's origin each vehicle stands at (heading east, 10 m/s).
STANDING = {"v1": 0.5, "v2": 30.0, "v3": 80.0, "v4": 110.0, "v5": 135.0}
NEAR_CELL_2 = {"v1", "v2"}
NEAR_CELLS_4_5 = {"v3", "v4", "v5"}


@pytest.fixture(scope="module")
def linkmap() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built, _ = build_map([_drive(root / f"d{i}", start=START + i * DAY) for i in (1, 2)])
        write_map(root / "map", built)
        yield root / "map"


def _hub_on_the_road(linkmap: Path, standing: dict[str, float], rules: str | None = None) -> Hub:
    settings = {"path": str(linkmap), "weather": "snow", "light": "daylight"}
    alerts = {"journal": ":memory:", **({"rules": rules} if rules else {})}
    hub = build_hub(config_from_dict({"alerts": alerts, "linkmap": settings}))
    t = START + 5 * DAY
    for k in range(30):  # 3 s of state and link samples: the links are judged ok
        now = t + k / 10
        batch = []
        for vehicle, x in standing.items():
            lat, lon = FRAME.to_latlon(x, 12.5)
            batch.append((f"l4mon/v1/test/vehicle/{vehicle}/state", msgspec.json.encode(
                VehicleState(ts=now, seq=k, lat=lat, lon=lon, speed_mps=10.0, heading_deg=90.0,
                             mode="autonomous")), None))
            batch.append((f"l4mon/v1/test/vehicle/{vehicle}/link/l5g", json.dumps(
                {"ts": now, "seq": k, "rat": "nr", "rtt_ms": 20.0, "ul_kbps": 12_000.0}).encode(),
                None))
        hub.ingest(batch, now)
        hub.tick(now)
    return hub


def _warnings(hub: Hub) -> dict[str, object]:
    assert hub.alerts is not None
    return {a.vehicle: a for a in hub.alerts.open.values() if a.rule == "weak_link_ahead"}


def test_one_incident_per_weak_stretch_with_its_vehicles(linkmap: Path) -> None:
    hub = _hub_on_the_road(linkmap, STANDING)
    warned = _warnings(hub)
    assert set(warned) == set(STANDING), "every vehicle is before or in a weak stretch"
    assert hub.lookahead is not None
    spots = {v: hub.lookahead._last[v][1]["l5g"].outlook.spot.cell for v in STANDING}
    assert spots["v4"] != spots["v5"], "v4 and v5 name different weak cells ahead"
    incidents = {v: a.incident for v, a in warned.items()}  # type: ignore[attr-defined]
    assert None not in incidents.values(), incidents
    assert len({incidents[v] for v in NEAR_CELL_2}) == 1
    assert len({incidents[v] for v in NEAR_CELLS_4_5}) == 1
    assert incidents["v1"] != incidents["v3"], "two stretches are two incidents"
    for a in warned.values():
        assert a.incident_group == "weak_stretch"  # type: ignore[attr-defined]
        assert str(a.incident_cause).startswith("stretch ")  # type: ignore[attr-defined]
    assert warned["v3"].incident_cause == warned["v5"].incident_cause  # type: ignore[attr-defined]
    assert warned["v1"].incident_cause != warned["v3"].incident_cause  # type: ignore[attr-defined]
    book = hub.alerts.incidents  # type: ignore[union-attr]
    assert sorted(book.open[incidents["v3"]].vehicles()) == sorted(NEAR_CELLS_4_5)


def test_a_lone_warning_stays_its_own_card(linkmap: Path) -> None:
    """One vehicle, one link before a stretch: nothing to gather (min_members 2)."""
    hub = _hub_on_the_road(linkmap, {"v1": 0.5})
    (warning,) = _warnings(hub).values()
    assert warning.incident is None  # type: ignore[attr-defined]


def test_by_stretch_takes_link_rules_only(tmp_path: Path) -> None:
    from l4mon.alerts.rules import RulesError, parse_rules

    text = """
[[rule]]
name = "asked"
title = "asked"
scope = "event"
when = "kind == 'takeover_request'"
severity = "takeover"
[[group]]
name = "g"
title = "g"
by = "stretch"
rules = ["asked"]
"""
    with pytest.raises(RulesError, match="only link rules can be grouped by stretch"):
        parse_rules(text)
