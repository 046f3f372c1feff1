"""The link map (docs/linkmap.md): per-cell figures from a hand-made drive, merging without
counting a drive twice, bounded memory, its Parquet form, the command's errors."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from scenarios.linkmap_build import build_map
from telemetry.drivelog import Conditions, DriveLogWriter, Manifest
from telemetry.linkmap import Grid, LinkMap, LinkMapError, WeakAhead, read_map, write_map
from telemetry.linkmap.sketch import DB, LOG, MAX_BINS, Sketch
from telemetry.linkmap.store import CELL_SCHEMA
from telemetry.site import LocalFrame
from telemetry.topics import Route
from telemetry.wire import LinkSample, VehicleState
from tests import drive_truth
from tests.parts import shared_data

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600.0
FRAME = LocalFrame.at(35.0, 136.0)  # the grid's origin: the first position rounded to 0.01°
OUTAGE = (10.0, 15.0)  # seconds of no service: x 100..150 m, cells 4 and 5


def _drive(path: Path, *, vehicle: str = "shuttle-01", start: float = START,
           seconds: int = 30, weather: str = "snow") -> Path:
    """A vehicle driving east at 10 m/s, 10 Hz state and link: RTT 20 ms and RSRP -80 dBm,
    uplink 12 Mbit/s but 5 Mbit/s in cell 2 (under the default 8 Mbit/s requirement), no
    service from 10 s to 15 s."""
    writer = DriveLogWriter(path, manifest=Manifest(
        site="test", conditions=Conditions(weather=weather, light="daylight"),
        source={"kind": "generator"}))
    for k in range(seconds * 10):
        t = start + k / 10
        x = k + 0.5  # metres east: 10 m/s, never on a cell boundary
        lat, lon = FRAME.to_latlon(x, 12.5)
        writer.add(t, Route("state", "test", vehicle), VehicleState(
            ts=t, seq=k, lat=lat, lon=lon, speed_mps=10.0, heading_deg=90.0,
            mode="autonomous"))
        offset = k / 10
        if OUTAGE[0] <= offset < OUTAGE[1]:
            sample = LinkSample(ts=t, seq=k, rat="none", probe=False)
        else:
            sample = LinkSample(ts=t, seq=k, rat="nr", cell_id="A" if x < 200 else "B",
                                rsrp_dbm=-80.0, sinr_db=12.0, rtt_ms=20.0,
                                ul_kbps=5_000.0 if 50 <= x < 75 else 12_000.0)
        writer.add(t, Route("link", "test", vehicle, "l5g"), sample)
    writer.close()
    return path


@pytest.fixture(scope="module")
def one_drive() -> Iterator[tuple[LinkMap, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        log = _drive(Path(tmp) / "log")
        linkmap, report = build_map([log])
        assert report.added == [f"shuttle-01@{START:.3f}"] and not report.skipped
        yield linkmap, log


def test_the_map_of_one_drive_has_the_expected_cells(one_drive: tuple[LinkMap, Path]) -> None:
    """25 samples and one pass per 25 m cell; the hub's own link state says down from the
    no-service report until it has recovered for 5 s (cells 4-7), and nowhere else."""
    linkmap, _ = one_drive
    assert linkmap.grid == Grid(35.0, 136.0, 25.0)
    rows = {key[0]: stats for key, stats in linkmap.items()}
    assert set(rows) == set(range(12))
    assert {key[1:] for key, _ in linkmap.items()} == {(0, "l5g", "snow", "daylight")}
    for x, stats in rows.items():
        assert stats.samples == 25, x
        assert stats.passes == 1 and stats.drive_count == 1, x
    for x in (4, 5, 6):
        assert rows[x].share_down() == pytest.approx(1.0), x
    for x in (1, 2, 3, 9, 10, 11):
        assert rows[x].share_down() == 0.0, x
    assert [x for x, s in rows.items() if s.outage_starts] == [4]
    assert sum(s.outage_starts for s in rows.values()) == 1
    assert rows[4].passes_down == rows[4].passes_impaired == 1
    # No service carries no probe: RTT unknown there, not 0 (absence is not failure).
    for x in (4, 5):
        assert rows[x].probes == 0 and rows[x].rtt.percentiles(50) == [None]
        assert rows[x].rsrp.n == 0
    assert rows[2].rtt.percentiles(50, 95) == [pytest.approx(20.0, rel=0.01)] * 2
    assert rows[2].rsrp.percentiles(5, 50) == [-80.0, -80.0]
    # Uplink under the requirement in cell 2 only (judged while the link was usable).
    assert rows[2].passes_ul_short == 1 and rows[2].time_ul_short_s == pytest.approx(2.5)
    assert [x for x, s in rows.items() if s.time_ul_short_s] == [2]
    # The serving-cell change A -> B at x = 200 m is a handover in cell 8.
    assert [(x, s.pairs) for x, s in rows.items() if s.handovers] == [(8, {"A>B": 1})]


def test_merging_the_same_drive_again_counts_it_once(tmp_path: Path,
                                                     one_drive: tuple[LinkMap, Path]) -> None:
    _, log = one_drive
    first, _ = build_map([log, log])  # the same log twice: its drive counts once
    write_map(tmp_path / "map", first)
    again, report = build_map([log], base=read_map(tmp_path / "map"))
    assert report.skipped == [f"shuttle-01@{START:.3f}"] and not report.added
    assert len(again.drives) == 1
    assert {k: (s.samples, s.passes, s.drive_count) for k, s in again.items()} == \
        {k: (s.samples, s.passes, 1) for k, s in one_drive[0].items()}
    other = _drive(tmp_path / "other", vehicle="shuttle-02", start=START + 3_600)
    both, report = build_map([other], base=read_map(tmp_path / "map"))
    assert len(report.added) == 1 and len(both.drives) == 2
    for _, stats in both.items():
        assert stats.passes == 2 and stats.drive_count == 2 and stats.samples == 50
    with pytest.raises(LinkMapError, match="already in the map"):
        both.merge(read_map(tmp_path / "map"))


def test_memory_is_bounded_by_rows_and_bins() -> None:
    """Rows are capped; a sketch holds at most its scale's bins whatever it is fed, and its
    percentiles stay within its resolution."""
    small = LinkMap(Grid(35.0, 136.0), max_rows=3)
    for x in range(3):
        small.row((x, 0), "l5g", "unknown", "unknown")
    with pytest.raises(LinkMapError, match="larger cells"):
        small.row((9, 9), "l5g", "unknown", "unknown")
    rng = random.Random(7)
    rtt, rsrp = Sketch(LOG), Sketch(DB)
    values = [rng.lognormvariate(3.0, 1.5) for _ in range(100_000)]
    for v in values:
        rtt.add(v)
        rsrp.add(-140 + 100 * rng.random())
    assert len(rtt.counts) <= MAX_BINS[LOG] and len(rsrp.counts) <= MAX_BINS[DB]
    assert len(rtt.counts) < 1_500 and len(rsrp.counts) <= 201
    for q, got in zip((5, 50, 95, 99), rtt.percentiles(5, 50, 95, 99), strict=True):
        assert got == pytest.approx(float(np.percentile(values, q)), rel=0.011)
    merged = Sketch(LOG)
    merged.merge(rtt)
    merged.merge(rtt)
    assert merged.n == 200_000 and merged.percentiles(50) == rtt.percentiles(50)


def test_the_map_is_plain_parquet_with_the_documented_columns(
        tmp_path: Path, one_drive: tuple[LinkMap, Path]) -> None:
    linkmap, _ = one_drive
    write_map(tmp_path / "map", linkmap)
    cells = pq.read_table(tmp_path / "map" / "cells.parquet")
    drives = pq.read_table(tmp_path / "map" / "drives.parquet").to_pylist()
    assert cells.num_rows == 12 and cells.schema.names == CELL_SCHEMA.names
    assert [d["id"] for d in drives] == [f"shuttle-01@{START:.3f}"]
    assert drives[0]["weather"] == "snow" and drives[0]["samples"] == 300
    row = next(r for r in cells.to_pylist() if r["cell_x"] == 4)
    assert row["share_down"] == pytest.approx(1.0) and row["rtt_p50_ms"] is None
    assert row["outage_starts"] == 1 and row["link"] == "l5g"
    documented = set(re.findall(r"`([a-z0-9_]+)`", (ROOT / "docs" / "linkmap.md").read_text()))
    assert [c for c in CELL_SCHEMA.names if c not in documented] == []
    again = read_map(tmp_path / "map")
    assert {k: (s.samples, s.passes, s.rtt.percentiles(95)) for k, s in again.items()} == \
        {k: (s.samples, s.passes, s.rtt.percentiles(95)) for k, s in linkmap.items()}


def test_a_weak_cell_is_seen_ahead_and_not_behind(one_drive: tuple[LinkMap, Path]) -> None:
    linkmap, _ = one_drive
    rule = WeakAhead(linkmap, horizon_s=10.0, threshold=0.5, min_passes=1)
    east = dict(speed_mps=10.0, link="l5g", weather="snow", light="daylight")
    lat, lon = FRAME.to_latlon(20.0, 12.5)  # cell 0; cell 4 starts 80 m ahead
    spot = rule.check(lat=lat, lon=lon, heading_deg=90.0, **east)
    assert spot is not None and spot.cell == (4, 0) and spot.distance_m == pytest.approx(80, abs=7)
    assert rule.check(lat=lat, lon=lon, heading_deg=270.0, **east) is None
    assert rule.check(lat=lat, lon=lon, heading_deg=90.0, **{**east, "speed_mps": 5.0}) is None
    # Another condition: the place is known, if not in that weather (pooled).
    assert rule.check(lat=lat, lon=lon, heading_deg=90.0, **{**east, "weather": "clear"})


def _l4mon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *args], check=False,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_command_builds_shows_and_says_what_is_wrong(
        tmp_path: Path, one_drive: tuple[LinkMap, Path]) -> None:
    _, log = one_drive
    out = tmp_path / "map"
    built = _l4mon("linkmap", "build", str(log), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert "1 drive(s) added" in built.stdout and "12 rows" in built.stdout
    shown = _l4mon("linkmap", "show", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "l5g under snow/daylight" in shown.stdout and "A>B x1" in shown.stdout
    for args, needle in [
        (["build", str(tmp_path / "nothing"), "--out", str(tmp_path / "m2")], "no such drive log"),
        (["build", str(tmp_path), "--out", str(tmp_path / "m3")], "not a drive log"),
        (["build", str(ROOT / "README.md"), "--out", str(tmp_path / "m4")], "not a drive log"),
        (["build", str(log), "--out", str(out)], "--merge"),
        (["build", str(log), "--out", str(out), "--merge", "--cell-m", "50"], "--cell-m 50"),
        (["build", str(log), "--out", str(ROOT / "README.md")], "is a file"),
        (["build", str(log), "--out", str(tmp_path / "m5"), "--cell-m", "1"], "cell size"),
        (["show", str(tmp_path / "nothing")], "no such map"),
        (["show", str(log)], "not a link map"),
    ]:
        result = _l4mon("linkmap", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    merged = _l4mon("linkmap", "build", str(log), "--out", str(out), "--merge")
    assert merged.returncode == 0 and "already in the map" in merged.stdout


def test_a_map_on_the_old_spherical_frame_is_refused_with_its_rebuild_command(
        tmp_path: Path, one_drive: tuple[LinkMap, Path]) -> None:
    """A v2 map's cells were placed on a sphere, tens of metres from where this l4mon puts
    them: reading it, showing it or merging into it says so and how to rebuild, exit 2."""
    linkmap, log = one_drive
    old = tmp_path / "old"
    write_map(old, linkmap)
    manifest = json.loads((old / "manifest.json").read_text())
    assert manifest["version"] == 3 and manifest["frame"] == "wgs84-aeqd"
    del manifest["frame"]  # exactly what l4mon wrote before the frame was named
    (old / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
    with pytest.raises(LinkMapError, match="spherical Earth") as refused:
        read_map(old)
    assert f"l4mon linkmap build {linkmap.drives[next(iter(linkmap.drives))].log} " \
        in str(refused.value)
    for args in (["show", str(old)], ["build", str(log), "--out", str(old), "--merge"]):
        result = _l4mon("linkmap", *args)
        assert result.returncode == 2 and "Rebuild it from its drive logs" in result.stderr, \
            (args, result.stderr)
    (old / "manifest.json").write_text(json.dumps({**manifest, "version": 3,
                                                   "frame": "utm-51n"}))
    with pytest.raises(LinkMapError, match="frame 'utm-51n'"):
        read_map(old)


def test_a_map_of_real_repeated_drives(tmp_path: Path) -> None:
    """Two CICV5G W2S runs of one road (CC BY 4.0): one grid, each cell holding the drives
    that passed it. Every figure is held to the files themselves (tests/drive_truth.py) and to
    each run's map alone, never to a count known for these files."""
    runs = shared_data("cicv5g/w2s_n8_v30_run0[12].txt", at_least=2)
    from scenarios.importers import import_files

    logs, links = [], set()
    for run in runs:
        links.update(import_files("cicv5g", [run], tmp_path / run.stem).files[0].links)
        logs.append(tmp_path / run.stem)
    linkmap, report = build_map(logs)
    truths = [drive_truth.cicv5g(run) for run in runs]
    assert len(report.added) == 2 and linkmap.links() == sorted(links)
    rows = dict(linkmap.items())
    # every row of a CICV5G file has a position and a round trip
    assert sum(s.samples for s in rows.values()) == report.samples_placed \
        == sum(t.usable for t in truths)
    assert sum(s.rtt.n for s in rows.values()) == sum(t.rtts.size for t in truths)
    assert all(s.rtt.n == s.probes for s in rows.values())  # every row an answered probe
    alone = [set(dict(build_map([log])[0].items())) for log in logs]
    assert set(rows) == alone[0] | alone[1]
    both = {key for key, s in rows.items() if s.drive_count == 2}
    assert both == alone[0] & alone[1] and both  # one road: the drives share cells
