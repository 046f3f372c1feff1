"""The default warning sees latency (issue 25, item 4): a stretch where the link's RTT climbs on
every pass, never down and never short of uplink, is warned of under the default measure
(``impaired``), and the card and the facts say it was impaired, by RTT; under ``unfit``
(the old default) the same drive is not warned of at all.

Drives are made by hand (east at 10 m/s, as tests/test_linkmap.py's) and replayed through the
hub's own pipeline (scenarios/scenario.py), so the map's pass counters, the look-ahead and
the rule engine are the ones ``serve`` runs.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from l4mon.config import config_from_dict
from scenarios.linkmap_build import build_map
from scenarios.scenario import prepare, run_prepared
from telemetry.drivelog import Conditions, DriveLogWriter, Manifest
from telemetry.linkmap import write_map
from telemetry.linkmap.cause import DOWN, IMPAIRED, SHORT, cause_of
from telemetry.linkmap.cellstats import CellStats
from telemetry.site import LocalFrame
from telemetry.topics import Route
from telemetry.wire import LinkSample, VehicleState

START = 1_767_225_600.0
DAY = 86_400.0
FRAME = LocalFrame.at(35.0, 136.0)
#: Metres east where RTT is 400 ms (limit 150): cells 6-8.
SLOW = (150.0, 225.0)


def _slow_drive(path: Path, start: float) -> Path:
    """East at 10 m/s for 40 s, one link: RTT 20 ms but 400 ms from 150 m to 225 m; signal
    good and uplink 12 Mbit/s everywhere (over the 8 Mbit/s requirement)."""
    writer = DriveLogWriter(path, manifest=Manifest(
        site="test", conditions=Conditions(weather="clear", light="daylight"),
        source={"kind": "generator"}))
    for k in range(400):
        t = start + k / 10
        x = k + 0.5
        lat, lon = FRAME.to_latlon(x, 12.5)
        writer.add(t, Route("state", "test", "shuttle-01"), VehicleState(
            ts=t, seq=k, lat=lat, lon=lon, speed_mps=10.0, heading_deg=90.0,
            mode="autonomous"))
        rtt = 400.0 if SLOW[0] <= x < SLOW[1] else 20.0
        writer.add(t, Route("link", "test", "shuttle-01", "l5g"), LinkSample(
            ts=t, seq=k, rat="nr", cell_id="A", rsrp_dbm=-80.0, sinr_db=12.0, rtt_ms=rtt,
            ul_kbps=12_000.0))
    writer.close()
    return path


@pytest.fixture(scope="module")
def slow_map() -> Iterator[tuple[Path, Path]]:
    """(a map of two drives with the recurring RTT climb, a third such drive)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = [_slow_drive(root / f"d{i}", START + i * DAY) for i in (1, 2)]
        linkmap, _ = build_map(logs)
        write_map(root / "map", linkmap)
        yield root / "map", _slow_drive(root / "d3", START + 3 * DAY)


def _warnings(log: Path, linkmap: Path, **settings: Any) -> list[dict[str, Any]]:
    config = config_from_dict({"linkmap": settings}) if settings else None
    doc = run_prepared(prepare(log, config=config, linkmap=str(linkmap)))
    return [a for a in doc["alerts"] if a["rule"] == "weak_link_ahead"]


def test_a_recurring_rtt_climb_is_warned_of_by_default_and_the_card_says_impaired(
        slow_map: tuple[Path, Path]) -> None:
    linkmap, log = slow_map
    [warning] = _warnings(log, linkmap)
    detail = warning["detail"]
    assert warning["link"] == "l5g" and warning["severity"] == "warning"
    # Warned before the climb: the first slow cell (x 150 m) is 15 s ahead at t = 0, inside
    # the 20 s horizon, so the warning comes before the vehicle gets there.
    assert warning["raised_at"] - (START + 3 * DAY) < 15.0
    assert "l5g weak in" in detail
    assert "impaired by RTT p95 " in detail and "(limit 150)" in detail
    assert "on 2 of 2 past passes" in detail
    assert "down on" not in detail and "short of uplink" not in detail


def test_the_old_default_measure_misses_it(slow_map: tuple[Path, Path]) -> None:
    linkmap, log = slow_map
    assert _warnings(log, linkmap, measure="unfit") == []


def _stats(passes: int, **counts: int) -> CellStats:
    stats = CellStats()
    stats.passes = passes
    for name, value in counts.items():
        setattr(stats, name, value)
    return stats


def test_the_cause_is_the_most_frequent_failure_and_a_tie_goes_to_the_worst() -> None:
    down = _stats(4, passes_down=3, passes_unfit=3, passes_impaired=3, passes_degraded=1)
    assert (cause_of(down, "passes_impaired").kind, cause_of(down, "passes_impaired").passes) \
        == (DOWN, 3)
    assert cause_of(down, "passes_impaired").words(4) == \
        "down on 3 of 4 past passes; also impaired on 1"
    short = _stats(4, passes_unfit=4, passes_impaired=4, passes_ul_short=4)
    assert cause_of(short, "passes_impaired").words(4) == "short of uplink on 4 of 4 past passes"
    tie = _stats(2, passes_down=1, passes_unfit=2, passes_impaired=2)
    assert cause_of(tie, "passes_impaired").kind == DOWN  # 1 down, 1 short: down is worse
    slow = _stats(3, passes_impaired=3, passes_degraded=3, probes=100, probe_timeouts=5)
    for _ in range(20):
        slow.rtt.add(300.0)
    cause = cause_of(slow, "passes_impaired")
    assert cause.kind == IMPAIRED and cause.loss_ratio == pytest.approx(0.05)
    # the sketch keeps RTT to its bin (~1 %): 300 ms reads back as 29x-30x ms
    assert re.fullmatch(r"impaired by RTT p95 (29\d|30\d) ms \(limit 150\), loss 5\.0% "
                        r"\(limit 2%\) on 3 of 3 past passes", cause.words(3)), cause.words(3)
    # Under ``unfit`` a degraded pass is no failure: the cause is one of its own.
    assert cause_of(down, "passes_unfit").others == ()
    assert cause_of(short, "passes_unfit").kind == SHORT
