"""The report's link map section (``l4mon report --linkmap MAP``): conditions side by side,
stretches judged by the live warning's rule, maps, exports, and a clear error for a bad map.

One map from six simulated drives of the demo site (three in snow, three in clear daylight)
with the placed weak spots of ``testing/linkmap_sim.py``: the local 5G link has no service on
80 % of passes of the east leg.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from l4mon.assembly import build_hub
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, config_from_dict
from l4mon.faces.api.reports import ROOTS_ENV
from l4mon.faces.cli import main
from l4mon.faces.report import (
    Report,
    ReportError,
    ReportOptions,
    build_report,
    render,
    write_csv,
    write_parquet,
    zip_tables,
)
from l4mon.faces.report import linkmap_section as lms
from l4mon.runtime import Runtime
from scenarios.linkmap_build import build_map
from telemetry.linkmap import Grid, LinkMap, read_map, write_map
from telemetry.linkmap.settings import LinkMapSettings
from telemetry.site import DEMO_SITE_PATH, Site, distance_m, parse_site
from testing.asgi import request
from testing.linkmap_sim import SPOTS, sim_logs

ROOT = Path(__file__).resolve().parent.parent
EAST = next(s for s in SPOTS if s.name == "east leg")
#: A cell's centre is within half a diagonal (18 m at 25 m) of any point of it, and the hub
#: judges a stall a cell or two after it happened (docs/linkmap.md): the spot's cells.
NEAR_M = EAST.radius_m + 2 * 25.0 + 18.0
#: These tests find the placed no-service spot among the weak stretches: judged by "down or
#: short of uplink", as the report judged before issue 25 made ``impaired`` the default (the
#: simulated snow also degrades l5g on stretches of its own, which ``impaired`` ranks too).
UNFIT = config_from_dict({"linkmap": {"measure": "unfit"}})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """(the map, the report's inputs: a snow drive of the map and a night drive it lacks)."""
    root = tmp_path_factory.mktemp("lmreport")
    snow = sim_logs(root / "snow", drives=3, laps_s=600, condition="snow-daylight")
    day = sim_logs(root / "day", drives=3, laps_s=600, condition="clear-daylight",
                   first_seed=11)
    linkmap, _ = build_map([*snow, *day])
    write_map(root / "map", linkmap)
    night = sim_logs(root / "night", drives=1, laps_s=60, condition="clear-night",
                     first_seed=30)
    return root / "map", [snow[0], night[0]]


@pytest.fixture(scope="module")
def report(data: tuple[Path, list[Path]]) -> Report:
    linkmap, inputs = data
    return build_report(inputs, ReportOptions(linkmap=str(linkmap), replay="never",
                                              config=UNFIT))


def _row(report: Report, link: str, condition: str) -> dict[str, object]:
    return next(r for r in report.tables["linkmap_conditions"].rows
                if r["link"] == link and r["condition"] == condition)


def _worst(report: Report, link: str, condition: str) -> list[dict[str, object]]:
    return [r for r in report.tables["linkmap_worst"].rows
            if r["link"] == link and r["condition"] == condition]


def test_conditions_side_by_side_and_not_mapped_said(report: Report) -> None:
    """Snow and daylight both mapped, in the report's order; night (an input's condition
    the map has no drive of) says "not mapped", with no figure at all, never 0."""
    sec = report.linkmap
    assert sec is not None
    assert sec.conditions == ["daylight", "night", "snow-daylight"]
    assert sec.links == ["l5g", "lte"] and sec.baseline == "daylight"
    for cond in ("daylight", "snow-daylight"):
        row = _row(report, "l5g", cond)
        assert row["status"] == "mapped" and row["drives"] == 3
        assert int(row["stretches_mapped"]) > 50  # type: ignore[call-overload]
    night = _row(report, "l5g", "night")
    assert night["status"] == "not mapped"
    assert all(v is None for k, v in night.items() if k not in ("link", "condition", "status"))
    # The placed no-service spot is down on 80 % of snow passes: more judged time down.
    snow, day = _row(report, "l5g", "snow-daylight"), _row(report, "l5g", "daylight")
    assert snow["time_down_share"] > day["time_down_share"]  # type: ignore[operator]
    page = render(report)
    section = page.split("9. Link map", 1)[1].split("10. Drive-test views", 1)[0]
    assert "daylight (baseline)" in section and "snow-daylight" in section
    assert "not mapped: no passes of l5g under night" in section
    assert "not mapped: no passes under night" in section  # the night map panel
    assert "<script" not in page and "http://" not in page  # still self-contained
    # The worse snow figure is marked against daylight, as the report's other tables are.
    i = report.tables["linkmap_conditions"].rows.index(snow)
    assert report.marks[("linkmap_conditions", i, "time_down_share")] == "worse"


def test_the_east_leg_is_weak_for_l5g_in_snow(report: Report) -> None:
    """The worst l5g stretches under snow are the placed spot's cells, failed on every
    pass; its map draws them in the darkest class, on the same frame as daylight's."""
    worst = _worst(report, "l5g", "snow-daylight")
    weak = [r for r in worst if r["failing_share"] >= 0.5]  # type: ignore[operator]
    assert len(weak) >= 4
    for r in weak:
        assert distance_m(r["lat"], r["lon"], EAST.lat, EAST.lon) <= NEAR_M  # type: ignore[arg-type]
    assert weak[0]["failing_share"] == 1.0 and weak[0]["down_share"] == 1.0
    assert distance_m(weak[0]["lat"], weak[0]["lon"], EAST.lat,  # type: ignore[arg-type]
                      EAST.lon) <= EAST.radius_m + 18.0
    # Down on every pass of a source that measures uplink: nothing usable (0), not unknown.
    assert weak[0]["ul_p5_kbps"] == 0.0
    assert weak[0]["rank"] == 1 and len(worst) <= lms.WORST
    sec = report.linkmap
    assert sec is not None
    snow_map = sec.maps["l5g"][sec.conditions.index("snow-daylight")]
    day_map = sec.maps["l5g"][sec.conditions.index("daylight")]
    row = _row(report, "l5g", "snow-daylight")  # the panel counts what the table does
    assert lms.RISK_COLOURS[-1] in snow_map
    assert f"{row['stretches_weak']} weak of {row['stretches_mapped']} mapped" in snow_map
    view = re.compile(r'viewBox="([^"]+)"')
    assert view.search(snow_map)[1] == view.search(day_map)[1]  # type: ignore[index]
    # The demo site's plan, known from the map's drives: its junctions drawn and labelled.
    assert "Araya junction" in snow_map and "Shihi monzen junction" in snow_map
    assert 'role="img" aria-label="Link map of l5g under snow-daylight' in snow_map


def _site_with_east_junction() -> Site:
    plan = tomllib.loads(DEMO_SITE_PATH.read_text(encoding="utf-8"))
    plan["intersections"].append({"id": "ix-east", "name": "East leg crossing",
                                  "lat": EAST.lat, "lon": EAST.lon, "radius_m": 20.0})
    return parse_site(plan)


def test_worst_stretches_name_the_junction_and_advise_as_the_warning(
        report: Report, data: tuple[Path, list[Path]]) -> None:
    """Without a junction within 100 m the advice says "before the stretch"; with a site
    plan that has one at the east leg, the stretch is named by it, as the live warning
    names it."""
    plain = _worst(report, "l5g", "snow-daylight")
    assert all(r["junction"] is None for r in plain)
    advised = [r for r in plain if r["advice"]]
    assert advised
    for r in advised:
        assert re.fullmatch(r"reduce camera bitrate to \d+\.\d Mbit/s before the stretch",
                            str(r["advice"]))
        # Under the 8 Mbit/s requirement, and not near nothing.
        assert 400 <= r["ul_p5_links_kbps"] < 8_000  # type: ignore[operator]
    linkmap, inputs = data
    named = build_report(inputs, ReportOptions(linkmap=str(linkmap), replay="never",
                                               site=_site_with_east_junction(), config=UNFIT))
    rows = [r for r in _worst(named, "l5g", "snow-daylight")
            if r["failing_share"] >= 0.5]  # type: ignore[operator]
    assert rows and all(r["junction"] == "East leg crossing" for r in rows)
    assert any(str(r["advice"]).endswith("before East leg crossing") for r in rows)
    assert "East leg crossing" in render(named)


def test_the_tables_are_exported(report: Report, tmp_path: Path) -> None:
    """CSV, Parquet and the API's zip carry both tables, with null (not 0) where the map has
    nothing."""
    written = {p.name for p in write_csv(report, tmp_path / "csv")}
    written |= {p.name for p in write_parquet(report, tmp_path / "pq")}
    assert {"linkmap_conditions.csv", "linkmap_worst.csv", "linkmap_conditions.parquet",
            "linkmap_worst.parquet"} <= written
    with open(tmp_path / "csv" / "linkmap_conditions.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6  # 2 links x 3 conditions
    night = next(r for r in rows if r["link"] == "lte" and r["condition"] == "night")
    assert night["status"] == "not mapped" and night["passes"] == ""
    worst = pq.read_table(tmp_path / "pq" / "linkmap_worst.parquet").to_pylist()
    assert worst == report.tables["linkmap_worst"].rows
    assert any(r["link"] == "l5g" and r["condition"] == "snow-daylight" for r in worst)
    with zipfile.ZipFile(io.BytesIO(zip_tables(report))) as z:
        assert {"csv/linkmap_worst.csv", "parquet/linkmap_conditions.parquet"} <= set(
            z.namelist())


def test_the_config_settings_judge_the_stretches(data: tuple[Path, list[Path]]) -> None:
    """[linkmap] threshold and min_passes are the ones the section judges by."""
    linkmap = read_map(data[0])

    def l5g_snow(settings: LinkMapSettings) -> dict[str, object]:
        _, tables, _ = lms.build_section(
            linkmap, path="map", config=HubConfig(linkmap=settings), site=None,
            conditions=[], order=sorted, baseline=None)
        return next(r for r in tables[0].rows
                    if r["link"] == "l5g" and r["condition"] == "snow-daylight")
    default, strict = l5g_snow(LinkMapSettings()), l5g_snow(
        LinkMapSettings(min_passes=7, threshold=0.9))
    assert strict["stretches_mapped"] < default["stretches_mapped"]  # type: ignore[operator]
    assert strict["stretches_thin"] == (  # type: ignore[operator]
        default["stretches_driven"] - strict["stretches_mapped"])  # type: ignore[operator]
    assert strict["stretches_weak"] <= default["stretches_weak"]  # type: ignore[operator]


def test_a_big_map_is_drawn_in_blocks(data: tuple[Path, list[Path]]) -> None:
    """14,400 cells per condition: each map stays under MAX_DRAWN shapes, at one frame for
    both conditions, and the section says it coarsened them."""
    linkmap = LinkMap(Grid(36.06, 136.34))
    for x in range(120):
        for y in range(120):
            for weather in ("snow", "clear"):
                stats = linkmap.row((x, y), "l5g", weather, "daylight")
                stats.passes = 1 + (x + y) % 4
                stats.passes_unfit = (x * y) % (stats.passes + 1)
    sec, _, _ = lms.build_section(linkmap, path="big", config=HubConfig(), site=None,
                                  conditions=[], order=sorted, baseline=None)
    maps = sec.maps["l5g"]
    assert len(maps) == 2 and len({re.search(r'viewBox="[^"]+"', m)[0]  # type: ignore[index]
                                    for m in maps}) == 1
    for svg in maps:
        blocks = len(re.findall(r"M[\d.]+,[\d.]+h", svg))
        shapes = blocks + svg.count("<rect") - 2  # less the clip and the frame
        assert shapes <= lms.MAX_DRAWN
        assert len(svg) < 250_000
        assert "×" in svg and "-cell blocks" in svg
    assert any("drawn in blocks of" in n for n in sec.notes)


@pytest.mark.parametrize("case", ["missing", "drive log", "corrupt"])
def test_an_unreadable_map_is_a_one_line_error_naming_it(
        data: tuple[Path, list[Path]], tmp_path: Path, case: str) -> None:
    """Before anything is computed; the CLI exits 2 with the same line."""
    linkmap, inputs = data
    bad = {"missing": tmp_path / "no-such-map", "drive log": inputs[0],
           "corrupt": tmp_path / "corrupt"}[case]
    if case == "corrupt":
        shutil.copytree(linkmap, bad)
        (bad / "cells.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReportError) as caught:
        build_report(inputs, ReportOptions(linkmap=str(bad), replay="never"))
    message = str(caught.value)
    assert message.startswith(f"--linkmap {bad}: cannot read the link map") and "\n" not in (
        message)


def test_the_cli_exits_2_on_a_bad_map(data: tuple[Path, list[Path]], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, inputs = data
    code = main(["report", str(inputs[0]), "--out", str(tmp_path / "r.html"), "--replay",
                 "never", "--linkmap", str(tmp_path / "nothing")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--linkmap {tmp_path / 'nothing'}: cannot read the link map" in err
    assert not (tmp_path / "r.html").exists()


def test_the_command_end_to_end(data: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """``python -m l4mon report LOG --out R --linkmap MAP --csv DIR`` in its own process."""
    linkmap, inputs = data
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "l4mon", "report", str(inputs[0]), "--out", str(out),
         "--linkmap", str(linkmap), "--csv", str(tmp_path / "csv"), "--replay", "never"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == (1 if "report: FAIL" in done.stdout else 0), done.stderr
    page = out.read_text(encoding="utf-8")
    assert "<h2>9. Link map: past drives per stretch of road</h2>" in page
    assert page.count('class="lmap"') == 4  # 2 links x (daylight, snow-daylight)
    assert (tmp_path / "csv" / "linkmap_worst.csv").read_text().startswith("link,condition,")


def test_without_a_map_the_report_is_unchanged(report: Report,
                                               data: tuple[Path, list[Path]]) -> None:
    """No section, no tables, the usual numbering, and every other table the same."""
    _, inputs = data
    plain = build_report(inputs, ReportOptions(replay="never"))
    assert plain.linkmap is None
    assert not [n for n in plain.tables if n.startswith("linkmap")]
    page = render(plain)
    assert "Link map" not in page and "<h2>10. Inputs and method</h2>" in page
    for name, table in plain.tables.items():
        assert table.rows == report.tables[name].rows, name
    assert {k: v for k, v in report.marks.items() if not k[0].startswith("linkmap")} == (
        plain.marks)


def test_the_api_report_carries_the_hubs_own_map(data: tuple[Path, list[Path]],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator exporting a report from a hub with ``[linkmap] path`` gets its map
    section; ``linkmap=false`` leaves it out."""
    linkmap, inputs = data
    roots = tmp_path / "logs"
    roots.mkdir()
    shutil.copytree(inputs[0], roots / "snow")  # a link out of the roots would be refused
    monkeypatch.setenv(ROOTS_ENV, str(roots))
    config = config_from_dict({"alerts": {"journal": ":memory:"},
                               "linkmap": {"path": str(linkmap)}})
    runtime = Runtime(hub=build_hub(config), clock=ManualClock(1_767_225_600.0),
                      tokens=TokenStore([("v", "viewer", hash_token("t0ken"))]))

    def get(**params: object) -> httpx.Response:
        return request(runtime, "GET", "/api/reports", token="t0ken", params=params,
                       timeout=120)

    with_map = get(input="snow", replay="never")
    assert with_map.status_code == 200, with_map.text
    assert "Link map: past drives per stretch of road" in with_map.text
    without = get(input="snow", replay="never", linkmap="false")
    assert without.status_code == 200 and "Link map: past drives" not in without.text
