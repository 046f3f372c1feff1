"""Importers of real drive-test logs (scenarios.importers) checked against their sources.

The CICV5G excerpt in tests/fixtures/cicv5g is CC BY 4.0 (citation in its README). The
G-NetTrack files are GPL-3.0 and are only read from ../shared/data; the always-run G-NetTrack
tests use a small made-up CSV written here.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from scenarios.importers import DriveLogImportError, FileReport, import_files, vehicle_id
from scenarios.importers.cicv5g import link_name, utm_to_latlon
from telemetry.drivelog import Conditions, read_manifest, read_table, wire_messages
from telemetry.topics import parse_topic
from telemetry.wire import LinkSample, ServiceStatus, VehicleState
from tests import drive_truth
from tests.drive_truth import FileTruth
from tests.parts import shared_data, shared_data_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cicv5g"
EXCERPT = FIXTURES / "arterial_n78_v50_excerpt.txt"
SHARED = shared_data_dir()
CICV5G_DIR = SHARED / "cicv5g"
GNETTRACK_DIR = SHARED / "gnettrack-5g"


# --- helpers ---------------------------------------------------------------------------------


def cicv5g_rows(path: Path) -> list[list[str]]:
    """The source's data rows, parsed independently of the importer."""
    return [line.split() for line in path.read_text().splitlines()[1:] if line.strip()]


def changes(values: list) -> int:
    return sum(1 for a, b in pairwise(values) if a != b)


def by_kind(table: pa.Table, kind: str, source: str | None = None) -> list[dict]:
    """The rows of one kind (and source), as dicts, in the table's (receive-time) order."""
    mask = pc.equal(table.column("kind").cast(pa.string()), kind)
    if source is not None:
        mask = pc.and_(mask, pc.equal(
            table.column("source").cast(pa.string()), source))
    return table.filter(mask).to_pylist()


def decode_all(table: pa.Table) -> dict[str, int]:
    """Every row through wire_messages, decoded (with the wire bounds) as what it claims."""
    kinds = {"link": 0, "state": 0, "service": 0}
    types = {"link": LinkSample, "state": VehicleState, "service": ServiceStatus}
    for _, topic, payload, _ in wire_messages(table):
        route = parse_topic(topic)
        assert route is not None, topic
        msgspec.json.decode(payload, type=types[route.kind])
        kinds[route.kind] += 1
    return kinds


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """(metres, degrees clockwise from north) for a short step, on the WGS84 ellipsoid."""
    a, e2 = 6_378_137.0, 0.00669437999014
    p = math.radians(lat1)
    w = 1 - e2 * math.sin(p) ** 2
    north = math.radians(lat2 - lat1) * a * (1 - e2) / w**1.5
    east = math.radians(lon2 - lon1) * a / math.sqrt(w) * math.cos(p)
    return math.hypot(north, east), math.degrees(math.atan2(east, north)) % 360.0


# --- CICV5G: the excerpt fixture ----------------------------------------------------------


def test_cicv5g_excerpt_keeps_the_source_figures(tmp_path: Path) -> None:
    source = cicv5g_rows(EXCERPT)
    out = tmp_path / "log"
    report = import_files("cicv5g", [EXCERPT], out, site="tongji",
                          conditions=Conditions(weather="clear"))
    table = read_table(out)
    links = by_kind(table, "link")
    states = by_kind(table, "state")
    assert len(links) == len(states) == len(source) == report.files[0].kept
    # and the drive's frame: in service at the first row, out of it at the last
    service = by_kind(table, "service")
    assert [(r["service"], r["recv_time"]) for r in service] == [
        ("in_service", int(source[0][1]) / 1000), ("out_of_service", int(source[-1][1]) / 1000)]
    assert table.num_rows == 2 * len(source) + 2
    (drive,) = report.manifest.drives
    assert (drive.vehicle, drive.links, drive.files) == (
        "arterial_n78_v50_excerpt", ["pub5g"], [EXCERPT.name])
    assert (drive.start, drive.end) == (int(source[0][1]) / 1000, int(source[-1][1]) / 1000)
    assert report.messages == {"link": len(source), "state": len(source)}
    assert not report.skipped
    assert report.vehicles == ["arterial_n78_v50_excerpt"]
    assert {r["link"] for r in links} == {"pub5g"}  # band n78: the public network
    assert {r["rat"] for r in links} == {"nr"}

    links.sort(key=lambda r: r["seq"])
    assert [r["seq"] for r in links] == list(range(len(source)))
    assert [r["rtt_ms"] for r in links] == [float(row[2]) for row in source]
    assert [r["cell_id"] for r in links] == [row[7] for row in source]
    assert [r["recv_time"] for r in links] == [int(row[1]) / 1000 for row in source]
    assert [r["ts"] for r in links] == [int(row[0]) / 1000 for row in source]
    assert [r["rsrp_dbm"] for r in links] == [float(row[9]) for row in source]
    assert [r["sinr_db"] for r in links] == [float(row[8]) for row in source]
    source_changes = changes([row[7] for row in source])
    assert source_changes == 2  # the excerpt was cut to span two handovers
    assert report.files[0].cell_changes == source_changes
    assert changes([r["cell_id"] for r in by_kind(table, "link")]) == source_changes

    for s in states:
        assert 30.9 <= s["lat"] <= 31.5 and 121.0 <= s["lon"] <= 121.6
        assert s["mode"] == "autonomous"
    states.sort(key=lambda r: r["seq"])
    assert [s["speed_mps"] for s in states] == [float(row[6]) for row in source]

    assert decode_all(table) == {"link": len(source), "state": len(source), "service": 2}
    manifest = read_manifest(out)
    assert manifest.site == "tongji" and manifest.conditions.weather == "clear"
    assert manifest.source["kind"] == "cicv5g"
    assert manifest.source["licence"] == "CC BY 4.0"
    assert "10.5281/zenodo.17475688" in manifest.source["citation"]
    assert manifest.source["files"] == [EXCERPT.name]
    assert "51N" in manifest.source["positions"]
    assert manifest.messages == table.num_rows


def test_cicv5g_heading_agrees_with_the_track(tmp_path: Path) -> None:
    """heading(rad) is counter-clockwise from grid east; the log holds a true compass bearing."""
    import_files("cicv5g", [EXCERPT], tmp_path / "log")
    states = sorted(by_kind(read_table(tmp_path / "log"), "state"), key=lambda r: r["seq"])
    diffs = []
    for a, b in pairwise(states):
        step, course = bearing(a["lat"], a["lon"], b["lat"], b["lon"])
        if step > 0.3:
            diffs.append(angle_diff(course, a["heading_deg"]))
    assert len(diffs) > 100
    assert statistics.median(diffs) < 2.0


def test_utm_inverse() -> None:
    # On the central meridian the northing is k0 times the meridian arc (45 N: 4 984 944.378 m).
    lat, lon, gamma = utm_to_latlon(500_000.0, 0.9996 * 4_984_944.378, zone=51)
    assert lat == pytest.approx(45.0, abs=1e-8) and lon == pytest.approx(123.0, abs=1e-12)
    assert gamma == pytest.approx(0.0, abs=1e-12)
    # West of the central meridian grid north points west of true north.
    lat, lon, gamma = utm_to_latlon(329_231.16, 3_463_455.04, zone=51)
    assert 31.2 < lat < 31.4 and 121.1 < lon < 121.3
    approx = math.degrees(math.atan(math.tan(math.radians(lon - 123)) * math.sin(
        math.radians(lat))))
    assert gamma == pytest.approx(approx, abs=1e-3) and gamma < 0


def test_cicv5g_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = EXCERPT.read_text().splitlines()
    fields = lines[5].split()
    fields[9] = "-10"  # rsrp above its physical range: not measured, the row kept
    lines[5] = " ".join(fields)
    lines[9] = lines[9].replace(lines[9].split()[2], "x", 1)  # delay not a number
    lines[12] = " ".join(lines[12].split()[:7])  # cut short
    lines.insert(20, "")  # a blank line is not a row
    path = tmp_path / "urban n8 run (copy).txt"
    path.write_text("\n".join(lines) + "\n")
    report = import_files("cicv5g", [path], tmp_path / "log")
    f = report.files[0]
    assert f.vehicle == "urban_n8_run_copy"
    assert f.links == ["l5g"]
    assert f.rows == len(lines) - 2 and f.kept == f.rows - 2
    assert f.skipped == {"delay not a number": 1, "too few fields": 1}
    assert f.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}
    assert report.manifest.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}
    links = by_kind(read_table(tmp_path / "log"), "link")
    assert sorted(r["seq"] for r in links) == [i for i in range(f.rows) if i not in (8, 11)]
    (marked,) = [r for r in links if r["seq"] == 4]
    assert marked["rsrp_dbm"] is None  # the rest of the row as the source has it
    assert (marked["rtt_ms"], marked["sinr_db"], marked["cell_id"]) == (
        float(fields[2]), float(fields[8]), fields[7])


def test_link_and_vehicle_names() -> None:
    assert link_name(Path("arterial_n8_v80_run06.txt")) == "l5g"
    assert link_name(Path("arterial_n78_v50_run01.txt")) == "pub5g"
    assert link_name(Path("run01.txt")) == "5g"
    taken: set[str] = set()
    assert vehicle_id(Path("a/B_2019.11.21_09.44.52.csv"), taken) == "B_2019.11.21_09.44.52"
    assert vehicle_id(Path("b/B_2019.11.21_09.44.52.csv"), taken) == "B_2019.11.21_09.44.52-2"
    assert vehicle_id(Path("ünïcode?.txt")) == "n_code"
    assert vehicle_id(Path("###.txt")) == "vehicle"
    assert len(vehicle_id(Path("x" * 100 + ".txt"))) == 64


# --- CICV5G: the real files ---------------------------------------------------------------


def real_files(folder: Path, pattern: str) -> list[Path]:
    """The shared data's files; their absence fails under CI (tests/parts.py)."""
    return shared_data(f"{folder.relative_to(SHARED).as_posix()}/{pattern}")


def test_cicv5g_real_files(tmp_path: Path) -> None:
    files = real_files(CICV5G_DIR, "*.txt")
    report = import_files("cicv5g", files, tmp_path / "log")
    table = read_table(tmp_path / "log")
    for path, f in zip(files, report.files, strict=True):
        source = cicv5g_rows(path)
        assert f.rows == len(source)
        assert f.kept + sum(f.skipped.values()) == f.rows
        assert f.messages == {"link": f.kept, "state": f.kept}
        links = by_kind(table, "link", f.vehicle)
        assert len(links) == f.kept == len(by_kind(table, "state", f.vehicle))
        assert_agrees_with_the_file(f, links, drive_truth.cicv5g(path))
    counts = decode_all(table)
    assert counts["link"] == counts["state"] == sum(f.kept for f in report.files)


def assert_agrees_with_the_file(f: FileReport, links: list[dict], truth: FileTruth) -> None:
    """The import of one file against what the file itself says (tests/drive_truth.py):
    rows, kept rows, serving cells and their changes, round trips, span. Nothing here knows
    which file it is."""
    links = sorted(links, key=lambda r: r["seq"])
    assert (f.rows, f.kept) == (truth.rows, truth.usable)
    assert [r["cell_id"] for r in links] == list(truth.cells)
    assert f.cell_changes == truth.cell_changes
    rtts = np.array([r["rtt_ms"] for r in links if r["rtt_ms"] is not None], dtype=np.float64)
    assert np.array_equal(rtts, truth.rtts)
    times = np.array([r["recv_time"] for r in links])
    # G-NetTrack stamps whole seconds (rows sharing one are spread within it)
    assert times.max() - times.min() == pytest.approx(truth.span_s, abs=1.0)
    assert len(f.links) == 1


def _variants(fmt: drive_truth.Fmt, files: list[Path], folder: Path) -> list[Path]:
    """Each file under a neutral name, then each perturbed (rows dropped, a stretch moved to a
    new cell), whose truth must move as the edit says."""
    out: list[Path] = []
    for n, path in enumerate(files):
        plain = drive_truth.neutral_copy(path, folder / "plain", n)
        edited, done = drive_truth.perturbed_copy(fmt, path, folder / "edited" / plain.name)
        before, after = drive_truth.truth(fmt, path), drive_truth.truth(fmt, edited)
        assert after.rows == before.rows - len(done.dropped)
        assert after.cell_changes == before.cell_changes + 2
        out += [plain, edited]
    return out


@pytest.mark.parametrize(("fmt", "folder", "pattern"), [
    ("cicv5g", "cicv5g", "*.txt"), ("gnettrack", "gnettrack-5g", "*.csv")])
def test_real_files_renamed_and_perturbed_still_agree(
        fmt: drive_truth.Fmt, folder: str, pattern: str, tmp_path: Path) -> None:
    """The real-file assertions hold for every file of the folder copied under a name that
    says nothing (no band, no date) and for a copy with rows dropped and a stretch moved to
    another cell: the truth follows the file, not a figure looked up by its name. The copies
    stay in pytest's temporary folder (the G-NetTrack files are GPL-3.0)."""
    files = shared_data(f"{folder}/{pattern}")
    variants = _variants(fmt, files, tmp_path / "in")
    report = import_files(fmt, variants, tmp_path / "log")
    table = read_table(tmp_path / "log")
    for path, f in zip(variants, report.files, strict=True):
        assert_agrees_with_the_file(f, by_kind(table, "link", f.vehicle),
                                    drive_truth.truth(fmt, path))
        assert "n8" not in f.vehicle and "B_20" not in f.vehicle  # nothing of the name left


# --- G-NetTrack: the real files -----------------------------------------------------------


def gnettrack_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_gnettrack_real_files(tmp_path: Path) -> None:
    files = real_files(GNETTRACK_DIR, "*.csv")
    report = import_files("gnettrack", files, tmp_path / "log")
    table = read_table(tmp_path / "log")
    dublin = ZoneInfo("Europe/Dublin")
    for path, f in zip(files, report.files, strict=True):
        source = gnettrack_rows(path)
        assert f.rows == len(source)
        links = sorted(by_kind(table, "link", f.vehicle), key=lambda r: r["seq"])
        states = sorted(by_kind(table, "state", f.vehicle), key=lambda r: r["seq"])
        assert len(links) == len(states) == f.kept
        source = [source[r["seq"]] for r in links]  # the rows kept (seq: the row's index)
        # Every change of the serving cell the file names is a cell change, and no other.
        assert_agrees_with_the_file(f, links, drive_truth.gnettrack(path))
        # '-' is null, never zero; numbers are kept as written.
        for row, link in zip(source, links, strict=True):
            for column, name in (("RSRQ", "rsrq_db"), ("SNR", "sinr_db"), ("RSRP", "rsrp_dbm"),
                                 ("DL_bitrate", "dl_kbps"), ("UL_bitrate", "ul_kbps")):
                want = None if row[column] == "-" else float(row[column])
                assert link[name] == want, (path.name, column, link["seq"])
            assert link["rtt_ms"] is None if row["PINGAVG"] == "-" else float(row["PINGAVG"])
            second = datetime.strptime(row["Timestamp"], "%Y.%m.%d_%H.%M.%S").replace(
                tzinfo=dublin).timestamp()
            assert second <= link["recv_time"] < second + 1
        for row, state in zip(source, states, strict=True):
            assert state["lat"] == float(row["Latitude"])
            assert state["lon"] == float(row["Longitude"])
            assert state["speed_mps"] == pytest.approx(float(row["Speed"]) / 3.6)
        times = [r["recv_time"] for r in links]
        assert all(a < b for a, b in pairwise(times))  # repeated seconds are spread
        modes = {row["NetworkMode"] for row in source}
        rats = {r["rat"] for r in links}
        assert rats <= {"nr", "lte", "umts", "gsm"}
        assert ("gsm" in rats) == bool(modes & {"EDGE", "GPRS", "GSM"})  # 2G fallbacks kept
        # A row reports a probe exactly when its ping test ran (PINGAVG or PINGLOSS filled).
        for row, link in zip(source, links, strict=True):
            ran = row["PINGAVG"] != "-" or row["PINGLOSS"] != "-"
            assert link["probe"] is ran and link["sender_clock"] is False
    assert sum(decode_all(table).values()) == table.num_rows
    manifest = read_manifest(tmp_path / "log")
    assert manifest.source["kind"] == "gnettrack" and manifest.source["licence"] == "GPL-3.0"
    assert "MMSys 2020" in manifest.source["citation"]


# --- G-NetTrack: a made-up export (always runs) -------------------------------------------

HEADER = ("Timestamp,Longitude,Latitude,Speed,Operatorname,CellID,NetworkMode,RSRP,RSRQ,SNR,"
          "CQI,RSSI,DL_bitrate,UL_bitrate,State,PINGAVG,PINGMIN,PINGMAX,PINGSTDEV,PINGLOSS,"
          "CELLHEX,NODEHEX,LACHEX,RAWCELLID,NRxRSRP,NRxRSRQ")


def synthetic_row(ts: str, lon: float, lat: float, speed: str, mode: str, rsrp: str,
                  rsrq: str = "-9", snr: str = "4.0", dl: str = "1200", ul: str = "80",
                  ping: str = "-", cell: str = "7", raw: str = "1001") -> str:
    return ",".join([ts, str(lon), str(lat), speed, "X", cell, mode, rsrp, rsrq, snr, "9",
                     "-70", dl, ul, "D", ping, "-", "-", "-", "-", "7", "ABC", "1", raw,
                     "-", "-"])


SYNTHETIC = [
    synthetic_row("2021.03.01_10.00.00", -8.4000, 51.9000, "0", "LTE", "-90"),
    synthetic_row("2021.03.01_10.00.00", -8.4000, 51.9000, "0", "LTE", "-91", rsrq="-",
                  snr="-"),
    synthetic_row("2021.03.01_10.00.00", -8.4000, 51.9000, "0", "LTE", "-92"),
    synthetic_row("2021.03.01_10.00.01", -8.3995, 51.9000, "18", "WiMAX", "-90"),
    synthetic_row("2021.03.01_10.00.02", -8.3993, 51.9000, "36", "LTE", "-5"),
    synthetic_row("2021.03.01_10.00.03", -8.3990, 51.9000, "36", "5G", "-85", ping="23.5",
                  raw="1002"),
    synthetic_row("2021.03.01_10.00.03", -8.3990, 51.9000, "36", "5G", "-84", dl="-",
                  raw="1002"),
    synthetic_row("2021.03.01_10.00.04", -8.3990, 51.8990, "54", "HSPA+", "-99", raw="-",
                  cell="77"),
    synthetic_row("yesterday", -8.3990, 51.8980, "54", "LTE", "-99"),
    "2021.03.01_10.00.06,-8.3990,51.8970,54,X,7,LTE",
]


def test_gnettrack_synthetic(tmp_path: Path) -> None:
    path = tmp_path / "made-up drive.csv"
    path.write_text(HEADER + "\n" + "\n".join(SYNTHETIC) + "\n")
    report = import_files("gnettrack", [path], tmp_path / "log", site="cork")
    f = report.files[0]
    assert f.vehicle == "made-up_drive" and f.links == ["cell"]
    assert f.rows == 10 and f.kept == 7
    assert f.skipped == {"unknown NetworkMode 'WiMAX'": 1, "bad Timestamp": 1,
                         "wrong number of fields": 1}
    # RSRP -5 dBm is no measurement: null, counted, the row kept with its other figures
    assert f.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}
    table = read_table(tmp_path / "log")
    links = sorted(by_kind(table, "link"), key=lambda r: r["seq"])
    states = sorted(by_kind(table, "state"), key=lambda r: r["seq"])
    assert [r["seq"] for r in links] == [0, 1, 2, 4, 5, 6, 7]
    assert links[3]["rsrp_dbm"] is None and links[3]["rsrq_db"] == -9.0
    assert (links[3]["ul_kbps"], links[3]["dl_kbps"]) == (80.0, 1200.0)
    # 2021-03-01 10:00:00 in Dublin is GMT: 1614592800; three rows share that second.
    t0 = 1_614_592_800.0
    assert [r["recv_time"] for r in links] == pytest.approx(
        [t0, t0 + 1 / 3, t0 + 2 / 3, t0 + 2, t0 + 3, t0 + 3.5, t0 + 4])
    assert [r["ts"] for r in links] == [r["recv_time"] for r in links]
    assert [r["rat"] for r in links] == ["lte", "lte", "lte", "lte", "nr", "nr", "umts"]
    assert [r["cell_id"] for r in links] == ["1001"] * 4 + ["1002", "1002", "77"]
    assert f.cell_changes == 2
    assert links[1]["rsrq_db"] is None and links[1]["sinr_db"] is None
    assert links[0]["rsrq_db"] == -9.0 and links[0]["sinr_db"] == 4.0
    assert links[5]["dl_kbps"] is None and links[5]["ul_kbps"] == 80.0
    assert [r["rtt_ms"] for r in links] == [None, None, None, None, 23.5, None, None]
    assert [s["speed_mps"] for s in states] == pytest.approx([0, 0, 0, 10, 10, 10, 15])
    # No bearing column: course from the track (0 before the first move, then east, south).
    assert [round(s["heading_deg"]) for s in states] == [0, 0, 0, 90, 90, 90, 180]
    assert decode_all(table) == {"link": 7, "state": 7, "service": 2}
    manifest = read_manifest(tmp_path / "log")
    assert manifest.site == "cork"
    assert manifest.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}
    assert "  warning: RSRP: 1 value above the 3GPP reporting range of TS 38.133 " \
           "(-156 … -31 dBm), not measured" in report.lines()


MARKED = [  # a 1 Hz drive whose modem wrote "no value" markers into some figures
    synthetic_row("2021.03.01_10.00.00", -8.4000, 51.9, "36", "5G", "-88", ul="3900"),
    synthetic_row("2021.03.01_10.00.01", -8.3995, 51.9, "36", "5G", "-200", ul="3900"),
    synthetic_row("2021.03.01_10.00.02", -8.3990, 51.9, "36", "LTE", "-205", ul="3850",
                  ping="0", raw="2002"),
    synthetic_row("2021.03.01_10.00.03", -8.3985, 51.9, "36", "LTE", "-97", ul="3700",
                  ping="-1", raw="2002"),
    synthetic_row("2021.03.01_10.00.04", -8.3980, 51.9, "36", "LTE", "-96", ul="3800",
                  ping="41.5", raw="2002", snr="2147483647"),
]


def test_gnettrack_markers_cost_their_figure_only(tmp_path: Path) -> None:
    """RSRP -200/-205, PINGAVG 0/-1 and SNR 2147483647: each such figure is null and counted,
    every row kept with the rest of its figures; a ping marker is no probe at all."""
    path = tmp_path / "marked.csv"
    path.write_text(HEADER + "\n" + "\n".join(MARKED) + "\n")
    report = import_files("gnettrack", [path], tmp_path / "log")
    (f,) = report.files
    assert (f.rows, f.kept, dict(f.skipped)) == (5, 5, {})
    expected = {"rsrp_dbm": {"below_range": 2}, "rtt_ms": {"below_range": 2},
                "sinr_db": {"above_range": 1}}
    assert f.fields_not_measured == report.fields_not_measured == expected
    assert read_manifest(tmp_path / "log").fields_not_measured == expected
    source = list(csv.DictReader([HEADER, *MARKED]))
    links = sorted(by_kind(read_table(tmp_path / "log"), "link"), key=lambda r: r["seq"])
    assert [r["ul_kbps"] for r in links] == [float(row["UL_bitrate"]) for row in source]
    assert [r["rsrp_dbm"] for r in links] == [-88.0, None, None, -97.0, -96.0]
    assert [r["rtt_ms"] for r in links] == [None, None, None, None, 41.5]
    assert [r["probe"] for r in links] == [False, False, False, False, True]
    assert [r["sinr_db"] for r in links] == [4.0, 4.0, 4.0, 4.0, None]
    assert [r["cell_id"] for r in links] == ["1001", "1001", "2002", "2002", "2002"]
    lines = "\n".join(report.lines())
    assert "warning: RTT: 2 values below the plausible range (> 0 … 60,000 ms)" in lines


def test_a_manifest_without_screened_figures_leaves_the_field_out(tmp_path: Path) -> None:
    """Nothing screened: the manifest is written without ``fields_not_measured``, as an older
    l4mon (which refuses fields it does not know) wrote and reads it, and such a manifest reads
    as none screened."""
    import_files("cicv5g", [EXCERPT], tmp_path / "log")
    raw = json.loads((tmp_path / "log" / "manifest.json").read_text())
    assert "fields_not_measured" not in raw
    assert read_manifest(tmp_path / "log").fields_not_measured == {}


def test_gnettrack_summer_time_and_tabs(tmp_path: Path) -> None:
    """Irish summer time is UTC+1; a tab-separated export reads the same."""
    path = tmp_path / "summer.csv"
    rows = [synthetic_row("2021.07.01_10.00.00", -8.4, 51.9, "0", "lte", "-90")]
    path.write_text("\n".join(line.replace(",", "\t") for line in [HEADER, *rows]) + "\n")
    import_files("gnettrack", [path], tmp_path / "log")
    (link,) = by_kind(read_table(tmp_path / "log"), "link")
    assert link["recv_time"] == 1_625_130_000.0  # 2021-07-01 09:00:00 UTC


# --- files that are not what they claim ----------------------------------------------------


def expect_error(fmt: str, path: Path, out: Path, *words: str) -> DriveLogImportError:
    with pytest.raises(DriveLogImportError) as caught:
        import_files(fmt, [path], out)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message
    assert not out.exists()  # nothing written
    return caught.value


def test_quirky_inputs_raise_clear_errors(tmp_path: Path) -> None:
    out = tmp_path / "log"
    html = tmp_path / "page.csv"
    html.write_text("<!DOCTYPE html>\n<html><body>Sign in to download</body></html>\n")
    assert expect_error("gnettrack", html, out, "HTML").line == 1
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    expect_error("gnettrack", empty, out, "empty")
    expect_error("cicv5g", empty.with_suffix(".txt"), out, "not found")
    (tmp_path / "empty.txt").write_text("\n  \n")
    expect_error("cicv5g", tmp_path / "empty.txt", out, "empty")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("time delay rsrp\n1 2 3\n")
    assert expect_error("cicv5g", wrong, out, "not a CICV5G file", "pub_time(ms)").line == 1
    missing = tmp_path / "nowhere.csv"
    expect_error("gnettrack", missing, out, "file not found")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    expect_error("gnettrack", binary, out, "binary")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"pub_time(ms)\n\xff\xfe\n")
    assert expect_error("cicv5g", latin, out, "not UTF-8").line == 2
    swapped = tmp_path / "swapped.txt"
    shutil.copy(EXCERPT, swapped)
    expect_error("gnettrack", swapped, out, "not a G-NetTrack CSV", "CICV5G")
    synthetic = tmp_path / "drive.csv"
    synthetic.write_text(HEADER + "\n" + SYNTHETIC[0] + "\n")
    expect_error("cicv5g", synthetic, out, "G-NetTrack")
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER + "\n")
    assert expect_error("gnettrack", header_only, out, "no data rows").line == 2
    useless = tmp_path / "useless.csv"
    useless.write_text(HEADER + "\n" + "\n".join([SYNTHETIC[3], SYNTHETIC[8]]) + "\n")
    expect_error("gnettrack", useless, out, "no usable rows", "WiMAX", "bad Timestamp")
    expect_error("gnettrack", tmp_path, out, "directory")


def test_bad_file_among_good_ones_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "log"
    with pytest.raises(DriveLogImportError, match=r"nowhere\.txt"):
        import_files("cicv5g", [EXCERPT, tmp_path / "nowhere.txt"], out)
    assert not out.exists()
    import_files("cicv5g", [EXCERPT], out)
    with pytest.raises(DriveLogImportError, match="not an empty directory"):
        import_files("cicv5g", [EXCERPT], out)
    with pytest.raises(ValueError, match="wire name"):
        import_files("cicv5g", [EXCERPT], tmp_path / "other", site="bad/site")


def test_release_variants_tab_comma_and_excel(tmp_path: Path) -> None:
    """The CICV5G release's other shapes of the same rows: a tab-separated merge (its tool
    writes one), a comma-separated copy with the columns in another order, each importing to
    the same messages; an .xlsx workbook is refused with what to do instead."""
    lines = EXCERPT.read_text().splitlines()
    rows = [line.split() for line in lines]
    (tmp_path / "tab_n78.txt").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    order = [2, 0, 1, *range(3, len(rows[0]))]
    (tmp_path / "comma_n78.csv").write_text(
        "\n".join(",".join(r[i] for i in order) for r in rows) + "\n")
    (tmp_path / "plain_n78.txt").write_text(EXCERPT.read_text())
    report = import_files("cicv5g", [tmp_path / "plain_n78.txt", tmp_path / "tab_n78.txt",
                                     tmp_path / "comma_n78.csv"], tmp_path / "log")
    table = read_table(tmp_path / "log")
    plain, tab, comma = (by_kind(table, "link", f.vehicle) for f in report.files)
    strip = [{k: v for k, v in r.items() if k not in ("source", "payload", "topic")}
             for r in plain]
    for other in (tab, comma):
        assert [{k: v for k, v in r.items() if k not in ("source", "payload", "topic")}
                for r in other] == strip
    assert any("comma-separated" in note for note in report.files[2].notes)
    workbook = tmp_path / "east_n8_v80.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DriveLogImportError, match="Excel workbook"):
        import_files("cicv5g", [workbook], tmp_path / "x")
