"""Mapping version 2 on exports of the shapes real tools write, each imported with the mapping
docs/mapping.md gives for it (read from the doc itself), the truth computed here from the rows
this test wrote."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from scenarios.importers import DriveLogImportError, import_files
from scenarios.importers.gnettrack import track_bearing
from scenarios.importers.mapped import MappingError, load_mapping
from telemetry.drivelog import read_manifest, read_table

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mapping.md"
T0 = datetime(2024, 3, 4, 10, tzinfo=UTC)
_BLOCK = re.compile(r"<!-- mapping: ([a-z0-9-]+) -->\n```toml\n(.*?)```", re.S)


def documented(name: str, tmp: Path) -> Path:
    """The worked example ``name`` of docs/mapping.md, written to a file as a user would."""
    blocks = dict(_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    path = tmp / f"{name}.toml"
    path.write_text(blocks[name])
    return path


def rows(log: Path, kind: str) -> list[dict]:
    return [r for r in read_table(log).to_pylist() if r["kind"] == kind]


def changes(cells: list[str | None]) -> int:
    return sum(1 for a, b in pairwise(cells) if a != b)


def test_every_documented_mapping_loads(tmp_path: Path) -> None:
    """Every TOML block of the doc is a valid mapping (the doc cannot drift from the code)."""
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    for i, text in enumerate(blocks):
        path = tmp_path / f"block{i}.toml"
        path.write_text(text)
        assert load_mapping(path).version == 2


# --- a long format: serving and neighbour rows -------------------------------------------------


def long_export(path: Path) -> list[tuple[int, int]]:
    """60 s of a phone driving north at ~10 m/s; each second a serving row and three
    neighbour rows. Returns the serving (EARFCN, PCI) per second."""
    serving = [(1300, 101)] * 15 + [(1300, 102)] * 15 + [(3050, 102)] * 15 + [(1300, 101)] * 15
    lines = ["timestamp,latitude,longitude,type,rat,earfcn,pci,rsrp,rsrq"]
    for i, (earfcn, pci) in enumerate(serving):
        stamp = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lat = 52.52 + i * 10.0 / 111_195.0  # ~10 m per second north
        lines.append(f"{stamp},{lat:.7f},13.4050,serving,LTE,{earfcn},{pci},{-90 - i % 7},-11")
        for n in range(3):
            lines.append(f"{stamp},{lat:.7f},13.4050,neighbor,LTE,{1300 + n},{200 + n},"
                         f"{-100 - n},-14")
    path.write_text("\n".join(lines) + "\n")
    return serving


def test_long_format_counts_serving_cell_changes_only(tmp_path: Path) -> None:
    path = tmp_path / "phone.csv"
    serving = long_export(path)
    report = import_files("mapped", [path], tmp_path / "log",
                          mapping=documented("long-format", tmp_path))
    (f,) = report.files
    truth = [f"{e}:{p}" for e, p in serving]
    assert f.kept == len(serving) and not f.skipped
    assert f.cell_changes == changes(truth) == 3  # the same-PCI inter-frequency one too
    assert f.notes["rows not kept by the mapping's [rows] filter (not measurements of the "
                   "mapped links)"] == 3 * len(serving)
    links = sorted(rows(tmp_path / "log", "link"), key=lambda r: r["seq"])
    assert [r["cell_id"] for r in links] == truth
    assert [r["seq"] for r in links] == list(range(len(serving)))  # neighbours are no gaps
    assert [r["rsrp_dbm"] for r in links] == [float(-90 - i % 7) for i in range(len(serving))]
    states = sorted(rows(tmp_path / "log", "state"), key=lambda r: r["seq"])
    assert len(states) == len(serving)
    # Speed from the track: the distance the test put between its positions, per second.
    lats = [52.52 + i * 10.0 / 111_195.0 for i in range(len(serving))]
    want = track_bearing(lats[0], 13.405, lats[1], 13.405)[0]
    assert [s["speed_mps"] for s in states] == pytest.approx([want] * len(serving), rel=1e-3)
    assert {round(s["heading_deg"]) % 360 for s in states[1:]} == {0}  # north


# --- a modem logger: a marker in one column, no position --------------------------------------


def test_modem_logger_marker_costs_the_field_not_the_row(tmp_path: Path) -> None:
    source = [(-97, 12, 3900), (-125, 11, 3850), (-98, 45, 3700), (-125, -3, 0), (-101, 9, 4100)]
    lines = ["epoch_ms,cell,rsrp,sinr,ul_kbps"] + [
        f"{1_709_546_400_000 + 500 * i},A1,{rsrp},{sinr},{ul}"
        for i, (rsrp, sinr, ul) in enumerate(source)]
    path = tmp_path / "modem.csv"
    path.write_text("\n".join(lines) + "\n")
    report = import_files("mapped", [path], tmp_path / "log",
                          mapping=documented("modem-logger", tmp_path))
    (f,) = report.files
    assert f.kept == f.rows == len(source) and not f.skipped
    assert f.messages == {"link": len(source)}  # no position: no vehicle state
    links = sorted(rows(tmp_path / "log", "link"), key=lambda r: r["seq"])
    assert [r["ul_kbps"] for r in links] == [float(ul) for *_, ul in source]
    assert [r["rsrp_dbm"] for r in links] == [None if rsrp == -125 else float(rsrp)
                                              for rsrp, *_ in source]
    assert [r["sinr_db"] for r in links] == [float(s) if -20 <= s <= 40 else None
                                             for _, s, _ in source]
    assert f.notes["sinr: values outside the mapping's range -20 … 40, not measured"] == 1
    assert rows(tmp_path / "log", "state") == []


# --- a video-latency logger: one-way delay ------------------------------------------------------


def test_video_latency_is_one_way_delay(tmp_path: Path) -> None:
    latencies = [38.0, 41.5, 250.0, 39.0, 1200.0]
    lines = ["shown_at,frame,latency_ms,lat,lon,speed_kmh"] + [
        f"{(T0 + timedelta(milliseconds=40 * i)).strftime('%Y-%m-%d %H:%M:%S.%f')},{i},"
        f"{ms},48.1,11.5,36" for i, ms in enumerate(latencies)]
    path = tmp_path / "frames.csv"
    path.write_text("\n".join(lines) + "\n")
    import_files("mapped", [path], tmp_path / "log", mapping=documented("video-latency",
                                                                        tmp_path))
    links = sorted(rows(tmp_path / "log", "link"), key=lambda r: r["seq"])
    # Equal to the microsecond: what a float64 epoch second holds near 2024.
    assert [(r["recv_time"] - r["ts"]) * 1000.0 for r in links] == pytest.approx(latencies,
                                                                                   abs=1e-3)
    assert {r["sender_clock"] for r in links} == {True}  # the hub's one-way delay
    assert {r["rtt_ms"] for r in links} == {None} and {r["probe"] for r in links} == {False}


# --- a car with three modems ---------------------------------------------------------------------


def three_modem_rows(seconds: int) -> tuple[list[str], dict[str, list[str]]]:
    """Each second a row per modem (modem 1 detached in seconds 5-7); per link the cells."""
    names = {"0": "telco-a", "1": "telco-b", "2": "telco-c"}
    lines, cells = ["time,modem,status,lat,lon,speed,rat,cell,rsrp,rtt_ms"], {}
    for s in range(seconds):
        for modem in ("0", "1", "2"):
            status = "detached" if modem == "1" and 5 <= s <= 7 else "attached"
            cell = f"{modem}{s // 4}"
            lines.append(f"{1_709_546_400 + s},{modem},{status},48.1,11.5,8.0,LTE,{cell},-95,"
                         f"{30 + s}")
            if status == "attached":
                cells.setdefault(names[modem], []).append(cell)
    return lines, cells


def test_three_modems_in_one_file_are_one_vehicle(tmp_path: Path) -> None:
    lines, cells = three_modem_rows(20)
    path = tmp_path / "car.csv"
    path.write_text("\n".join(lines) + "\n")
    report = import_files("mapped", [path], tmp_path / "log", vehicle="shuttle-7",
                          mapping=documented("three-modems", tmp_path))
    (f,) = report.files
    assert f.vehicle == "shuttle-7" and sorted(f.links) == sorted(cells)
    assert f.kept == sum(len(c) for c in cells.values())
    assert f.cell_changes == sum(changes(c) for c in cells.values())
    links = rows(tmp_path / "log", "link")
    for link, want in cells.items():
        mine = sorted((r for r in links if r["link"] == link), key=lambda r: r["seq"])
        assert [r["cell_id"] for r in mine] == want
        assert [r["seq"] for r in mine] == list(range(len(want)))  # dropped rows: no gaps
    assert len(rows(tmp_path / "log", "state")) == 20  # one pose per moment, not three
    (drive,) = read_manifest(tmp_path / "log").drives
    assert drive.vehicle == "shuttle-7" and drive.links == sorted(cells)


def test_three_modems_in_three_files(tmp_path: Path) -> None:
    lines, cells = three_modem_rows(10)
    header = lines[0]
    spec = documented("three-modems", tmp_path).read_text()
    spec = spec.replace('name_column = "modem"\n', "").replace(
        'names = { "0" = "telco-a", "1" = "telco-b", "2" = "telco-c" }\n', "")
    (tmp_path / "modem.toml").write_text(spec)
    files = []
    for modem in ("0", "1", "2"):
        path = tmp_path / f"modem{modem}.csv"
        path.write_text("\n".join([header, *(r for r in lines[1:]
                                             if r.split(",")[1] == modem)]) + "\n")
        files.append(path)
    report = import_files("mapped", files, tmp_path / "log", vehicle="shuttle-7",
                          links=["telco-a", "telco-b", "telco-c"],
                          mapping=tmp_path / "modem.toml")
    assert report.vehicles == ["shuttle-7"]
    (drive,) = read_manifest(tmp_path / "log").drives
    assert drive.links == sorted(cells)
    kept = {f.links[0]: f.kept for f in report.files}
    assert kept == {link: len(c) for link, c in cells.items()}


def test_vehicle_from_a_column(tmp_path: Path) -> None:
    spec = tmp_path / "fleet.toml"
    spec.write_text('version = 2\nvehicle_column = "vehicle"\n[time]\ncolumn = "t"\n'
                    'format = "epoch_s"\n[link]\nrat = "nr"\nrtt = "rtt"\n')
    path = tmp_path / "fleet.csv"
    sent = [("bus 1", 20.0), ("bus-2", 30.0), ("bus 1", 21.0), ("", 5.0), ("bus-2", 31.0)]
    path.write_text("t,vehicle,rtt\n" + "".join(
        f"{1_709_546_400 + i},{v},{rtt}\n" for i, (v, rtt) in enumerate(sent)))
    report = import_files("mapped", [path], tmp_path / "log", mapping=spec)
    assert report.vehicles == ["bus-2", "bus_1"]
    by = {f.vehicle: f for f in report.files}
    assert by["bus_1"].kept == by["bus-2"].kept == 2
    assert sum(f.skipped["no vehicle (vehicle)"] for f in report.files) == 1
    links = rows(tmp_path / "log", "link")
    assert sorted((r["source"], r["rtt_ms"]) for r in links) == [
        ("bus-2", 30.0), ("bus-2", 31.0), ("bus_1", 20.0), ("bus_1", 21.0)]
    with pytest.raises(ValueError, match="--vehicle contradicts"):
        import_files("mapped", [path], tmp_path / "log2", mapping=spec, vehicle="x")


# --- sanity checks ------------------------------------------------------------------------------


def test_swapped_coordinates_are_refused(tmp_path: Path) -> None:
    spec = documented("video-latency", tmp_path)
    path = tmp_path / "frames.csv"
    path.write_text("shown_at,frame,latency_ms,lat,lon,speed_kmh\n" + "".join(
        f"2024-03-04 10:00:0{i}.000000,{i},40,139.7,35.6,20\n" for i in range(5)))
    with pytest.raises(DriveLogImportError, match="lat and lon swapped"):
        import_files("mapped", [path], tmp_path / "log", mapping=spec)
    # Plausible either way (48.1, 11.5 vs 11.5, 48.1): the mapping's area tells.
    text = spec.read_text().replace('speed_unit = "km/h"',
                                    'speed_unit = "km/h"\narea = { lat = 48.1, lon = 11.5 }')
    spec.write_text(text)
    path.write_text("shown_at,frame,latency_ms,lat,lon,speed_kmh\n" + "".join(
        f"2024-03-04 10:00:0{i}.000000,{i},40,11.5,48.1,20\n" for i in range(5)))
    with pytest.raises(DriveLogImportError, match="would lie within it with 'lat' and 'lon' "
                                                  "swapped"):
        import_files("mapped", [path], tmp_path / "log", mapping=spec)


def test_epoch_unit_off_by_a_thousand_is_refused(tmp_path: Path) -> None:
    spec = documented("modem-logger", tmp_path)
    path = tmp_path / "modem.csv"
    path.write_text("epoch_ms,cell,rsrp,sinr,ul_kbps\n" + "".join(
        f"{1_709_546_400 + i},A,-90,10,100\n" for i in range(3)))  # seconds, not ms
    with pytest.raises(DriveLogImportError, match=r'epoch seconds: time\.format = "epoch_s"'):
        import_files("mapped", [path], tmp_path / "log", mapping=spec)


def test_time_backwards_and_rtt_unit_warned(tmp_path: Path) -> None:
    spec = tmp_path / "ping.toml"
    spec.write_text('version = 2\n[time]\ncolumn = "t"\nformat = "epoch_s"\n'
                    '[link]\nrat = "lte"\nrtt = "rtt"\nrtt_unit = "s"\n')
    path = tmp_path / "ping.csv"
    stamps = [100, 101, 99, 102, 103]
    path.write_text("t,rtt\n" + "".join(f"{1_709_546_000 + t},45\n" for t in stamps))
    report = import_files("mapped", [path], tmp_path / "log", mapping=spec)
    notes = report.files[0].notes
    assert notes["t went backwards, by up to 2.000 s"] == 1
    assert any("a unit 1,000 times too large (link.rtt_unit = \"ms\"" in n for n in notes)
    assert any("warning: t went backwards" in line for line in report.lines())


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[time]\ncolumn = "t"\nformat = "epoch_s"\n[link]\nrat = "lte"\nrtt = "r"\n'
     'rtt_unit = "usec"\n', "link.rtt_unit", "(allowed: ms, s, us)"),
    ('version = 2\n[time]\ncolumn = "t"\nformat = "epoch_s"\n[position]\nlat = "a"\n'
     'lon = "b"\nspeed_unit = "mph"\n[link]\nrat = "lte"\n', "position.speed_unit",
     "(allowed: m/s, km/h)"),
    ('[rows]\nkeep = { type = "serving" }\n[time]\ncolumn = "t"\nformat = "epoch_s"\n'
     '[position]\nlat = "a"\nlon = "b"\nspeed = "v"\n[link]\nrat = "lte"\n', "rows",
     "needs version = 2"),
    ('version = 3\n', "version", "allowed: 1, 2"),
    ('version = 2\n[time]\ncolumn = "t"\nformat = "epoch_s"\n[link]\nrat = "lte"\n'
     'cell_id = "{earfcn}:{pci}"\n[columns.rsrp]\nmissing = ["0"]\n', "columns.rsrp",
     "not a column this mapping names"),
    ('version = 2\n[time]\ncolumn = "t"\nformat = "epoch_s"\n[link]\nrat = "lte"\n'
     'delay = "d"\n[columns.d]\nmin = 5\nmax = 1\n', "columns.d", "above max"),
])
def test_errors_name_the_key_and_the_allowed_values(tmp_path: Path, text: str, key: str,
                                                    words: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    with pytest.raises(MappingError) as caught:
        load_mapping(spec)
    assert caught.value.key == key, str(caught.value)
    assert words in str(caught.value), str(caught.value)


def test_import_mapped_help_points_to_the_doc() -> None:
    done = subprocess.run([sys.executable, "-m", "l4mon", "import", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "docs/mapping.md" in done.stdout


def test_composed_cell_is_not_measured_when_a_part_is_missing(tmp_path: Path) -> None:
    spec = documented("long-format", tmp_path)
    path = tmp_path / "phone.csv"
    path.write_text("timestamp,latitude,longitude,type,rat,earfcn,pci,rsrp,rsrq\n"
                    "2024-03-04T10:00:00Z,52.52,13.405,serving,LTE,1300.0,101,-95,-10\n"
                    "2024-03-04T10:00:01Z,52.52,13.405,serving,LTE,,101,-95,-10\n"
                    "2024-03-04T10:00:02Z,52.52,13.405,serving,LTE,1300,101,x,-10\n")
    report = import_files("mapped", [path], tmp_path / "log", mapping=spec)
    links = sorted(rows(tmp_path / "log", "link"), key=lambda r: r["seq"])
    assert [r["cell_id"] for r in links] == ["1300:101", None, "1300:101"]
    assert [r["rsrp_dbm"] for r in links] == [-95.0, -95.0, None]  # "x": not measured
    assert report.files[0].notes["rsrp: values that are not numbers, not measured"] == 1
    assert not math.isnan(links[0]["recv_time"])
