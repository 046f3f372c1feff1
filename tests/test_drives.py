"""Drives in logs: each file's drive is recorded, several runs are separate drives, several
files of one vehicle (one per modem) are one vehicle with several links, and nothing counts a
vehicle's time outside its drives. The files are written here, in the
shape of a phone logger's 1 Hz export and a modem logger's 3 s one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from l4mon.faces.report.build import build_report
from scenarios.importers import DriveLogImportError, import_files
from scenarios.importers.drives import DriveError, link_names
from scenarios.scenario import run_log
from telemetry.drivelog import read_table

HEADER = ("Timestamp,Longitude,Latitude,Speed,Operatorname,CellID,NetworkMode,RSRP,RSRQ,SNR,"
          "CQI,RSSI,DL_bitrate,UL_bitrate,State,PINGAVG,PINGMIN,PINGMAX,PINGSTDEV,PINGLOSS,"
          "CELLHEX,NODEHEX,LACHEX,RAWCELLID,NRxRSRP,NRxRSRQ")
#: A winter day: Europe/Dublin (the G-NetTrack importer's zone) is UTC then.
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def logger_file(path: Path, start: float, seconds: int, *, every: int = 1,
                skip: set[int] | None = None, cell: str = "1001", dl: int = 9_000) -> Path:
    """A G-NetTrack-shaped export: a row every ``every`` s from ``start`` (UTC), rows at the
    offsets in ``skip`` missing, the phone moving east at ~10 m/s."""
    rows = [HEADER]
    for k in range(0, seconds + 1, every):
        if skip and k in skip:
            continue
        stamp = time.strftime("%Y.%m.%d_%H.%M.%S", time.gmtime(start + k))
        lon = -8.4 + k * 0.00015
        rows.append(",".join([stamp, f"{lon:.6f}", "51.9", "36", "X", "7", "LTE", "-90", "-9",
                              "5", "9", "-70", str(dl), "800", "D", "-", "-", "-", "-", "-",
                              "7", "ABC", "1", cell, "-", "-"]))
    path.write_text("\n".join(rows) + "\n")
    return path


def results(log: Path) -> dict:
    """``l4mon replay LOG``'s results: the log's own config (no uplink requirement for a
    phone's app traffic) and what its source does not measure."""
    return run_log(log)


def test_two_runs_five_minutes_apart_are_two_drives(tmp_path: Path) -> None:
    """Two healthy runs of one route, 5 min apart, imported in one command: as two phones or
    as one, each run is fully available, nothing is raised, and the hours are the files'
    spans, not the pause between them."""
    first = logger_file(tmp_path / "run1.csv", T0, 240, skip={30, 31, 95})
    second = logger_file(tmp_path / "run2.csv", T0 + 240 + 300, 200, skip={7})
    spans = 240 + 200
    for vehicle in (None, "phone"):
        log = tmp_path / f"log-{vehicle}"
        report = import_files("gnettrack", [first, second], log, vehicle=vehicle)
        drives = report.manifest.drives
        assert [(d.start, d.end) for d in drives] == [(T0, T0 + 240),
                                                     (T0 + 540, T0 + 740)]
        assert [d.vehicle for d in drives] == (
            ["run1", "run2"] if vehicle is None else ["phone", "phone"])
        doc = results(log)
        figures = doc["kpis"]
        assert doc["alerts"] == []
        assert doc["span"]["duration_s"] == pytest.approx(spans)
        for vid, kp in figures.items():
            assert kp["availability"] == 1.0, vid
            assert kp["time_all_links_down_s"] == 0.0
        total = sum(kp["in_service_s"] for kp in figures.values())
        assert total == pytest.approx(spans, abs=1.0)  # ticked at 0.25 s
        built = build_report([log])
        assert built.hours == pytest.approx(spans / 3600)


def test_three_modem_files_are_one_vehicle_with_three_links(tmp_path: Path) -> None:
    """One car, three modems, a file each every 3 s (each carrying Mbit/s): one vehicle with
    three links in one drive. One modem silent for a minute mid-drive is one link down, never
    a takeover while another carries data; the drive's end is not an outage either."""
    files = [logger_file(tmp_path / "m1.csv", T0, 600, every=3, cell="11", dl=30_000),
             logger_file(tmp_path / "m2.csv", T0 + 1, 600, every=3, cell="22",
                         skip=set(range(200, 262)), dl=9_000),
             logger_file(tmp_path / "m3.csv", T0 + 2, 600, every=3, cell="33", dl=15_000)]
    log = tmp_path / "car"
    report = import_files("gnettrack", files, log, vehicle="car", links=["m1", "m2", "m3"])
    (drive,) = report.manifest.drives
    assert (drive.vehicle, drive.links) == ("car", ["m1", "m2", "m3"])
    assert (drive.start, drive.end) == (T0, T0 + 602)
    table = read_table(log)
    assert set(table.column("source").to_pylist()) == {"car"}
    states = [r for r in table.to_pylist() if r["kind"] == "state"]
    assert [r["seq"] for r in states] == list(range(len(states)))  # one state stream
    doc = results(log)
    assert [(a["rule"], a["severity"]) for a in doc["alerts"]
            if a["severity"] == "takeover"] == []
    car = doc["kpis"]["car"]
    assert set(car["links"]) == {"m1", "m2", "m3"}
    assert car["availability"] == 1.0 and car["time_all_links_down_s"] == 0.0
    assert car["links"]["m2"]["time_in_state_s"].get("stale", 0.0) > 30  # its minute off
    assert car["links"]["m1"]["availability"] == 1.0


def test_files_of_one_vehicle_on_one_link_at_once_are_refused(tmp_path: Path) -> None:
    a = logger_file(tmp_path / "a.csv", T0, 60)
    b = logger_file(tmp_path / "b.csv", T0 + 30, 60)
    with pytest.raises(DriveError, match=r"a\.csv and b\.csv both give link cell of vehicle v"):
        import_files("gnettrack", [a, b], tmp_path / "log", vehicle="v")
    assert not (tmp_path / "log").exists() or not any((tmp_path / "log").iterdir())
    # named apart, they are one vehicle with two links
    report = import_files("gnettrack", [a, b], tmp_path / "ok", vehicle="v", links=["x", "y"])
    assert [d.links for d in report.manifest.drives] == [["x", "y"]]


def test_names_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    a = logger_file(tmp_path / "a.csv", T0, 10)
    with pytest.raises(ValueError, match="not a wire name"):
        import_files("gnettrack", [a], tmp_path / "log", vehicle="my car")
    with pytest.raises(ValueError, match="--link given 2 times for 1 files"):
        import_files("gnettrack", [a], tmp_path / "log", links=["x", "y"])
    assert link_names(None, 2) == [None, None]
    assert link_names(["x"], 3) == ["x", "x", "x"]
    assert link_names(["x", "y"], 2) == ["x", "y"]
    assert not issubclass(DriveError, DriveLogImportError)  # the user's naming, not a file
