"""The drive-test views of the report (issue 24 item 4): per-cell table against numpy on the raw
columns, the route on one colour scale for every condition, "not measured" where a measure is
absent, and the event list's times. Logs are written by the tests or imported from
../shared/data; every truth is computed from the file itself."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from l4mon.faces.report.build import ReportOptions, build_report
from l4mon.faces.report.drive_charts import scale_for
from l4mon.faces.report.drive_data import GAP_S, SERVED_STEP_MAX_S
from l4mon.faces.report.export import write_csv, write_parquet
from l4mon.faces.report.html import render
from scenarios.importers import import_files
from telemetry.drivelog import Conditions
from tests import drive_truth, report_logs
from tests.parts import shared_data

T0 = dt.datetime(2024, 3, 4, 9, 0, 0)  # local time of the made-up exports


def cell_truth(path: Path) -> dict[str, dict[str, Any]]:
    """Per cell, straight from the log's rows: each stream's rows in file order, a row
    repeating its predecessor's seq counted once; served time from a row to its stream's next
    (up to the cap), the earlier row's cell."""
    data = report_logs.rows(path)
    streams: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, kind in enumerate(data["kind"]):
        if kind == "link":
            streams[(data["source"][i], data["link"][i])].append(i)
    out: dict[str, dict[str, Any]] = {}
    for idx in streams.values():
        kept = [i for n, i in enumerate(idx) if n == 0 or data["seq"][i] != data["seq"][idx[n - 1]]]
        for n, i in enumerate(kept):
            cell = data["cell_id"][i]
            if cell:
                acc = out.setdefault(cell, {"samples": 0, "served": 0.0, "rsrp": [], "rtt": []})
                acc["samples"] += 1
                for key, col in (("rsrp", "rsrp_dbm"), ("rtt", "rtt_ms")):
                    if data[col][i] is not None:
                        acc[key].append(data[col][i])
            if n + 1 < len(kept) and cell:
                step = data["recv_time"][kept[n + 1]] - data["recv_time"][i]
                if 0 < step <= SERVED_STEP_MAX_S:
                    out[cell]["served"] += step
    return out


def assert_cells(rows: list[dict[str, Any]], truth: dict[str, dict[str, Any]]) -> None:
    got = {r["cell"]: r for r in rows}
    assert set(got) == set(truth)
    for cell, t in truth.items():
        r = got[cell]
        assert r["samples"] == t["samples"], cell
        assert r["served_s"] == pytest.approx(t["served"], rel=1e-9, abs=1e-6), cell
        for key in ("rsrp", "rtt"):
            values = np.array(t[key], dtype=np.float64)
            assert r[f"{key}_n"] == values.size, cell
            if values.size:
                p50, p95 = np.percentile(values, [50, 95])
                assert (r[f"{key}_p50"], r[f"{key}_p95"]) == (p50, p95), cell  # exact
            else:
                assert r[f"{key}_p50"] is None and r[f"{key}_p95"] is None
        assert r["exact"] is True


def test_per_cell_table_against_numpy_on_the_raw_rows(tmp_path: Path) -> None:
    """Two conditions of the simulated fleet (handovers between cells) and a synthetic log
    with redelivered samples: every cell's counts, served time and percentiles as numpy says."""
    day = report_logs.simulated(tmp_path / "day", "daylight", vehicles=2, seconds=60)
    snow = report_logs.simulated(tmp_path / "snow", "snow", vehicles=2, seconds=60, seed=5)
    synth = report_logs.synthetic(tmp_path / "synth", seed=2, light="night", vehicles=3,
                                  hours=0.01)
    report = build_report([day, snow, synth], ReportOptions(replay="never"))
    truth: dict[str, dict[str, Any]] = {}
    for log in (day, snow, synth):
        for cell, t in cell_truth(log).items():
            acc = truth.setdefault(cell, {"samples": 0, "served": 0.0, "rsrp": [], "rtt": []})
            for k in ("samples", "served"):
                acc[k] += t[k]
            acc["rsrp"] += t["rsrp"]
            acc["rtt"] += t["rtt"]
    assert_cells(report.tables["cells"].rows, truth)
    # not replayed: handovers per cell are not computed, and the page says so
    assert {r["handovers_in"] for r in report.tables["cells"].rows} == {None}
    assert "not computed" in render(report)


def test_route_colours_share_one_scale_across_conditions(tmp_path: Path) -> None:
    day = report_logs.simulated(tmp_path / "day", "daylight", vehicles=2, seconds=60)
    snow = report_logs.simulated(tmp_path / "snow", "snow", vehicles=2, seconds=60, seed=5)
    report = build_report([day, snow], ReportOptions(replay="never"))
    route = report.tables["route"].rows
    assert {r["condition"] for r in route} == {"daylight", "snow-daylight"}
    for measure, log, better in (("rsrp", False, True), ("sinr", False, True),
                                 ("rtt", True, False)):
        mine = [r for r in route if r["measure"] == measure]
        values = np.array([r["value"] for r in mine])
        scale = scale_for(values, log=log, higher_is_better=better, unit="")
        # one scale from both conditions' squares: the colour of a value is the same in each
        assert [r["colour"] for r in mine] == [scale.colour(r["value"]) for r in mine]
        assert f"route::{measure}::daylight" in report.charts
        assert f"route::{measure}::snow-daylight" in report.charts
        # the two conditions alone would be drawn on other scales: pooling matters here
        own = {c: scale_for(np.array([r["value"] for r in mine if r["condition"] == c]),
                            log=log, higher_is_better=better, unit="")
               for c in ("daylight", "snow-daylight")}
        assert own["daylight"] != own["snow-daylight"]
    # a square's mean is the mean of the samples in it: their count adds up to the samples
    # that carried the measure and had a position
    samples = sum(r["samples"] for r in route if r["measure"] == "rsrp")
    assert samples == sum(r["rsrp_n"] for r in report.tables["cells"].rows)
    html = render(report)
    assert html.count("one scale for every condition") == 4  # RSRP, SINR, RTT, uplink
    for folder in (write_csv(report, tmp_path / "csv"), write_parquet(report, tmp_path / "pq")):
        names = {p.stem for p in folder}
        assert {"cells", "route", "series", "events", "cell_changes"} <= names


MARKED_MAPPING = """
version = 2
name = "phone"
not_measured = ["loss", "capacity"]

[time]
column = "time"
format = "%Y-%m-%d %H:%M:%S"
timezone = "Europe/Dublin"

[position]
lat = "lat"
lon = "lon"

[link]
rat = "lte"
cell_id = "cell"
rsrp = "rsrp"
rtt = "ping"
every_row_is_a_probe = true

[columns."rsrp"]
missing = ["-125"]
"""


def phone_export(path: Path, cells: list[str], *, rsrp: str = "-125",
                 pause_at: int | None = None) -> list[dt.datetime]:
    """A phone's export, one row a second (a 12 s pause before row ``pause_at``); every RSRP
    the modem's -125 marker unless given. Returns each row's local time."""
    times, t = [], T0
    lines = ["time,lat,lon,cell,rsrp,ping"]
    for i, cell in enumerate(cells):
        t += dt.timedelta(seconds=12 if i == pause_at else (0 if i == 0 else 1))
        times.append(t)
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},{53.3 + i * 1e-4:.6f},-6.26,{cell},{rsrp},"
                     f"{20 + i}")
    path.write_text("\n".join(lines) + "\n")
    return times


def test_a_measure_not_measured_is_said_so_not_drawn_as_zero(tmp_path: Path) -> None:
    mapping = tmp_path / "phone.toml"
    mapping.write_text(MARKED_MAPPING)
    snow_csv, day_csv = tmp_path / "snow.csv", tmp_path / "day.csv"
    phone_export(snow_csv, ["A"] * 20)  # RSRP only ever the marker
    phone_export(day_csv, ["A"] * 20, rsrp="-90")
    import_files("mapped", [snow_csv], tmp_path / "snow", mapping=mapping,
                 conditions=Conditions(weather="snow", light="daylight"))
    import_files("mapped", [day_csv], tmp_path / "day", mapping=mapping,
                 conditions=Conditions(weather="clear", light="daylight"))
    report = build_report([tmp_path / "day", tmp_path / "snow"], ReportOptions(replay="never"))
    route = report.tables["route"].rows
    assert {r["condition"] for r in route if r["measure"] == "rsrp"} == {"daylight"}
    assert {r["condition"] for r in route if r["measure"] == "rtt"} == {"daylight",
                                                                       "snow-daylight"}
    box = report.charts["route::rsrp::snow-daylight"]
    assert "RSRP not measured: none of 20 link samples carried it" in box
    assert "20 values the mapping&#x27;s &quot;no value&quot; marker" in box
    assert "<rect x" not in box.split("</text>", 1)[1].replace('<rect x="4"', "")  # no squares
    cells = {r["cell"]: r for r in report.tables["cells"].rows}
    assert cells["A"]["rsrp_n"] == 20 and cells["A"]["samples"] == 40  # day's 20 only
    assert "uplink" not in {r["measure"] for r in route}
    assert "route::ul::daylight" not in report.charts  # measured nowhere: no map at all


def test_event_list_times(tmp_path: Path) -> None:
    """Cell changes (a cell-less row between two cells is no change of its own), a reporting
    gap, in drive-relative time and in the import's time zone."""
    mapping = tmp_path / "phone.toml"
    mapping.write_text(MARKED_MAPPING)
    cells = ["A"] * 5 + ["B"] * 4 + [""] + ["B"] * 3 + ["", "C"] + ["C"] * 5
    times = phone_export(tmp_path / "drive.csv", cells, rsrp="-95", pause_at=16)
    import_files("mapped", [tmp_path / "drive.csv"], tmp_path / "log", mapping=mapping,
                 vehicle="car1")
    report = build_report([tmp_path / "log"], ReportOptions(replay="never"))
    events = report.tables["events"].rows
    zone = ZoneInfo("Europe/Dublin")
    epoch = [t.replace(tzinfo=zone).timestamp() for t in times]
    want_changes = [i for i in range(1, len(cells)) if cells[i] and
                    [c for c in cells[:i] if c][-1:] != [cells[i]]]
    got = [r for r in events if r["event"] == "cell change"]
    assert [(r["from_cell"], r["to_cell"]) for r in got] == [("A", "B"), ("B", "C")]
    assert [r["t_s"] for r in got] == pytest.approx([epoch[i] - epoch[0]
                                                     for i in want_changes])
    assert [r["wall"] for r in got] == [f"{times[i]:%Y-%m-%d %H:%M:%S}.000 GMT"
                                        for i in want_changes]
    assert {r["zone"] for r in events} == {"Europe/Dublin"}
    (gap,) = [r for r in events if r["event"] == "gap"]
    assert gap["t_s"] == pytest.approx(epoch[15] - epoch[0])
    assert epoch[16] - epoch[15] > GAP_S
    (row,) = report.tables["cell_changes"].rows
    assert row["cell_changes"] == 2 and row["handovers"] is None
    html = render(report)
    assert "Wall clock in Europe/Dublin" in html and "Events · log: car1" in html


def test_events_beside_handover_records_when_replayed(tmp_path: Path) -> None:
    """A replayed log: each handover record is in the event list beside the data's cell
    change, and the comparison table counts both."""
    day = report_logs.simulated(tmp_path / "day", "daylight", vehicles=2, seconds=90)
    report = build_report([day])
    changes = report.tables["cell_changes"].rows
    events = report.tables["events"].rows
    for row in changes:
        mine = [e for e in events if e["vehicle"] == row["vehicle"] and e["link"] == row["link"]]
        assert row["cell_changes"] == sum(1 for e in mine if e["event"] == "cell change")
        assert row["handovers"] == sum(1 for e in mine if e["source"] == "handover record")
    assert sum(r["cell_changes"] for r in changes) > 0
    cells = report.tables["cells"].rows
    assert sum(r["handovers_in"] for r in cells) == sum(
        1 for e in events if e["event"] in ("handover success", "handover ping_pong",
                                            "handover too_frequent"))


def test_shared_cicv5g_files_per_cell_against_the_file(tmp_path: Path) -> None:
    """Each CICV5G run of ../shared/data: its per-cell table against the file's own columns
    (numpy), whatever the file is called."""
    for n, path in enumerate(shared_data("cicv5g/*.txt")[:4]):
        log = tmp_path / f"log{n}"
        import_files("cicv5g", [path], log)
        report = build_report([log], ReportOptions(replay="never"))
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
        header, rows = lines[0], [r for r in lines[1:] if len(r) >= len(lines[0]) - 2]
        i_cell, i_rtt, i_rsrp = (header.index(c) for c in ("cellid(db)", "delay(ms)",
                                                            "rsrp(db)"))
        truth: dict[str, dict[str, list[float]]] = {}
        for r in rows:
            if len(r) < len(header):
                continue  # a row without its cell (read by the importer, no cell to count)
            acc = truth.setdefault(r[i_cell], {"rtt": [], "rsrp": []})
            acc["rtt"].append(float(r[i_rtt]))
            acc["rsrp"].append(float(r[i_rsrp]))
        got = {r["cell"]: r for r in report.tables["cells"].rows}
        assert set(got) == set(truth), path.name
        for cell, t in truth.items():
            rtt = np.array(t["rtt"])
            rtt = rtt[(rtt > 0) & (rtt <= 60_000)]
            rsrp = np.array(t["rsrp"])
            rsrp = rsrp[(rsrp >= -156) & (rsrp <= -31)]
            assert got[cell]["samples"] == len(t["rtt"]), path.name
            assert got[cell]["rtt_n"] == rtt.size
            assert got[cell]["rtt_p95"] == np.percentile(rtt, 95)
            assert got[cell]["rsrp_n"] == rsrp.size
            if rsrp.size:
                assert got[cell]["rsrp_p50"] == np.percentile(rsrp, 50)


def test_over_time_buckets_are_means_of_their_samples() -> None:
    """A long stream fed in uneven batches: at most 2 x SERIES_POINTS buckets, each the mean
    of the samples in it (numpy on the same times), a bucket without a value NaN, not 0."""
    from l4mon.faces.report.drive_data import SERIES_POINTS, Series

    t = np.arange(0.0, 5000.0, 0.5)
    rtt = np.where(t > 100, np.nan, 20.0 + t % 7)
    values = np.vstack([-90.0 - t % 11, t % 13, rtt])
    series = Series(t0=0.0)
    for a in range(0, t.size, 777):
        series.add(t[a:a + 777], values[:, a:a + 777])
    times, means = series.means()
    assert times.size <= 2 * SERIES_POINTS and series.width > 1.0
    bucket = (t // series.width).astype(np.int64)
    for row in range(3):
        ok = ~np.isnan(values[row])
        sums = np.bincount(bucket[ok], weights=values[row][ok], minlength=times.size)
        counts = np.bincount(bucket[ok], minlength=times.size)
        with np.errstate(invalid="ignore"):
            want = sums / counts
        assert np.allclose(means[row], want, equal_nan=True)
    assert np.isnan(means[2][times > 101 + series.width]).all()


def test_gnettrack_events_on_the_phones_clock(tmp_path: Path) -> None:
    """A G-NetTrack run of ../shared/data: its stamps were Cork's local time, so its events'
    wall clock is Europe/Dublin, each the same instant as its drive-relative time says; and
    the cell changes are those of the rows that name a cell, read from the file itself."""
    path = shared_data("gnettrack-5g/*.csv")[0]
    import_files("gnettrack", [path], tmp_path / "log")
    report = build_report([tmp_path / "log"], ReportOptions(replay="never"))
    events = report.tables["events"].rows
    assert events and {r["zone"] for r in events} == {"Europe/Dublin"}
    data = report_logs.rows(tmp_path / "log")
    start = min(t for t, k in zip(data["recv_time"], data["kind"], strict=True) if k == "link")
    zone = ZoneInfo("Europe/Dublin")
    for r in events:
        when = dt.datetime.fromtimestamp(start + r["t_s"], tz=zone)
        assert r["wall"] == when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + f" {when.tzname()}"
    (row,) = report.tables["cell_changes"].rows
    assert row["cell_changes"] == drive_truth.truth("gnettrack", path).cell_changes
