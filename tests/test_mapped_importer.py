"""The mapped importer (scenarios.importers.mapped): a TOML mapping instead of code per tool.

The proof that the mapping route is sound: the shipped mappings give the very same drive log as
the dedicated importers, bit for bit, on the real files in ../shared/data (skipped where that
folder is absent) and on the CC BY CICV5G excerpt fixture (always). The G-NetTrack files are
GPL-3.0 and are only read from ../shared/data; nothing of them is copied here.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from scenarios.importers import DriveLogImportError, FileReport, gnettrack, import_files, mapped
from scenarios.importers.mapped import Importer, MappingError, load_mapping, shipped
from telemetry.drivelog import read_manifest, read_table
from tests.parts import shared_data, shared_data_dir
from tests.test_importers import HEADER as GNETTRACK_HEADER
from tests.test_importers import MARKED as GNETTRACK_MARKED
from tests.test_importers import SYNTHETIC as GNETTRACK_ROWS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "cicv5g"
EXCERPT = FIXTURES / "arterial_n78_v50_excerpt.txt"
SHARED = shared_data_dir()
#: The manifest fields both routes must agree on (``source`` says which route it was).
MANIFEST_FIELDS = ("site", "conditions", "not_measured", "hub_config", "vehicles", "start",
                   "end", "messages", "fields_not_measured")


# --- helpers ---------------------------------------------------------------------------------


def real_files(folder: Path, pattern: str) -> list[Path]:
    """The shared data's files; their absence fails under CI (tests/parts.py)."""
    return shared_data(f"{folder.relative_to(SHARED).as_posix()}/{pattern}")


def bits(values: list) -> list:
    """Floats as their exact bits (``-0.0 == 0.0`` in Python; the hex form tells them apart)."""
    return [v.hex() if isinstance(v, float) else v for v in values]


def assert_same_log(mapped_log: Path, dedicated_log: Path) -> None:
    """Same manifest (but for source) and the same table, column by column, bit for bit."""
    a, b = read_manifest(mapped_log), read_manifest(dedicated_log)
    for name in MANIFEST_FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    ta, tb = read_table(mapped_log), read_table(dedicated_log)
    assert ta.schema == tb.schema
    assert ta.num_rows == tb.num_rows > 0
    for name in ta.column_names:
        va, vb = ta.column(name).to_pylist(), tb.column(name).to_pylist()
        assert va == vb, name
        if pa.types.is_floating(ta.schema.field(name).type):
            assert bits(va) == bits(vb), name


def assert_same_report(a: FileReport, b: FileReport) -> None:
    assert (a.rows, a.kept, a.skipped, a.cell_changes, a.links, a.messages,
            a.fields_not_measured) == (b.rows, b.kept, b.skipped, b.cell_changes, b.links,
                                       b.messages, b.fields_not_measured)


def both_routes(fmt: str, path: Path, tmp: Path) -> tuple[FileReport, FileReport]:
    """Import ``path`` through the shipped mapping and the dedicated importer; compare."""
    mapped_log, dedicated_log = tmp / f"{path.stem}.mapped", tmp / f"{path.stem}.{fmt}"
    via_mapping = import_files("mapped", [path], mapped_log, mapping=fmt)
    dedicated = import_files(fmt, [path], dedicated_log)  # type: ignore[arg-type]
    assert_same_log(mapped_log, dedicated_log)
    (a,), (b,) = via_mapping.files, dedicated.files
    assert_same_report(a, b)
    source = read_manifest(mapped_log).source
    assert source["kind"] == "mapped" and source["mapping"] == f"{fmt}.toml"
    assert source["files"] == [path.name]
    return a, b


def rows(log: Path, kind: str) -> list[dict]:
    table = read_table(log)
    return sorted((r for r in table.to_pylist() if r["kind"] == kind), key=lambda r: r["seq"])


# --- the shipped mappings give the dedicated importers' logs ---------------------------------


def test_shipped_mappings() -> None:
    assert shipped() == ["cicv5g", "gnettrack"]
    g = Importer(load_mapping("gnettrack"))
    assert g.NOT_MEASURED == gnettrack.NOT_MEASURED
    assert g.HUB_CONFIG == gnettrack.HUB_CONFIG
    assert g.DEFAULT_SITE == gnettrack.DEFAULT_SITE
    assert g.SOURCE["licence"] == "GPL-3.0" and "MMSys 2020" in g.SOURCE["citation"]
    # The mapping's RAT table is the importer's, value for value, but for the no-service
    # modes: a mapping maps to a RAT only (mapped.RATS), so those rows are skipped there.
    assert load_mapping("gnettrack").rats == {
        mode: rat for mode, rat in gnettrack.RATS.items() if rat in mapped.RATS}
    c = Importer(load_mapping("cicv5g"))
    assert (c.NOT_MEASURED, c.HUB_CONFIG, c.DEFAULT_SITE) == (("loss",), None, "tongji-cicv5g")
    assert c.SOURCE["licence"] == "CC BY 4.0"


def test_cicv5g_excerpt_same_as_dedicated(tmp_path: Path) -> None:
    a, _ = both_routes("cicv5g", EXCERPT, tmp_path)
    assert a.kept == a.rows > 0 and a.cell_changes == 2 and a.links == ["pub5g"]


def test_cicv5g_copies_same_as_dedicated(tmp_path: Path) -> None:
    """A comma-separated copy, a file without a band, and bad rows read the same both ways."""
    lines = EXCERPT.read_text().splitlines()
    comma = tmp_path / "arterial_n8_comma.txt"
    comma.write_text("\n".join(",".join(line.split()) for line in lines) + "\n")
    both_routes("cicv5g", comma, tmp_path)
    tabs = tmp_path / "arterial_n78_tabs.txt"
    tabs.write_text("\n".join("\t".join(line.split()) for line in lines) + "\n")
    both_routes("cicv5g", tabs, tmp_path)
    dirty = lines[:]
    fields = dirty[5].split()
    fields[9] = "-10"  # rsrp above its physical range: not measured
    dirty[5] = " ".join(fields)
    fields = dirty[7].split()
    fields[2] = "-3"  # a negative delay: a marker, no probe
    dirty[7] = " ".join(fields)
    fields = dirty[9].split()
    fields[6] = "101"  # 101 m/s
    dirty[9] = " ".join(fields)
    dirty.insert(20, "   ")  # a blank line is not a row
    plain = tmp_path / "run01.txt"
    plain.write_text("\n".join(dirty) + "\n")
    a, b = both_routes("cicv5g", plain, tmp_path)
    assert a.notes == {"no band (n8/n78) in the file name or its folders; link named 5g": 1}
    # The dedicated importer alone checks delay against the two stamps: the kept -3 ms row.
    assert b.notes - a.notes == {"delay differs from sub_time - pub_time": 1}
    assert a.links == ["5g"] and a.skipped == {"speed_mps out of wire bounds "
                                               "(Expected `float` <= 100.0)": 1}
    assert a.fields_not_measured == {"rsrp_dbm": {"above_range": 1},
                                     "rtt_ms": {"below_range": 1}}


def test_gnettrack_made_up_export_same_rows_as_dedicated(tmp_path: Path) -> None:
    """The made-up G-NetTrack rows of test_importers: spread seconds, RATs, nulls, headings."""
    path = tmp_path / "made-up drive.csv"
    path.write_text(GNETTRACK_HEADER + "\n" + "\n".join(GNETTRACK_ROWS) + "\n")
    via_mapping = import_files("mapped", [path], tmp_path / "mapped", mapping="gnettrack")
    dedicated = import_files("gnettrack", [path], tmp_path / "dedicated")
    assert_same_log(tmp_path / "mapped", tmp_path / "dedicated")
    (a,), (b,) = via_mapping.files, dedicated.files
    assert (a.rows, a.kept, a.cell_changes) == (b.rows, b.kept, b.cell_changes)
    assert a.fields_not_measured == b.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}
    # One wording differs: the mapping route names a short row "too few fields".
    assert a.skipped - b.skipped == {"too few fields": 1}
    assert b.skipped - a.skipped == {"wrong number of fields": 1}


def test_gnettrack_markers_same_as_dedicated(tmp_path: Path) -> None:
    """RSRP, SNR and ping markers are screened the same way on both routes."""
    path = tmp_path / "marked.csv"
    path.write_text(GNETTRACK_HEADER + "\n" + "\n".join(GNETTRACK_MARKED) + "\n")
    a, _ = both_routes("gnettrack", path, tmp_path)
    assert a.kept == a.rows == len(GNETTRACK_MARKED)
    assert a.fields_not_measured == {"rsrp_dbm": {"below_range": 2},
                                     "rtt_ms": {"below_range": 2}, "sinr_db": {"above_range": 1}}


def test_cicv5g_real_files_same_as_dedicated(tmp_path: Path) -> None:
    files = real_files(SHARED / "cicv5g", "*.txt")
    for path in files:
        a, b = both_routes("cicv5g", path, tmp_path)
        assert a.notes == b.notes, path.name  # e.g. the W2S runs' 12 values under 10 names


def test_gnettrack_real_files_same_as_dedicated(tmp_path: Path) -> None:
    files = real_files(SHARED / "gnettrack-5g", "*.csv")
    probes = 0
    for path in files:
        both_routes("gnettrack", path, tmp_path)
        probes += sum(1 for r in rows(tmp_path / f"{path.stem}.mapped", "link") if r["probe"])
    assert probes > 0  # the static download runs ping about once in 14 rows


# --- a third tool, with a mapping written here -----------------------------------------------

SURVEY_MAPPING = """
name = "fieldsurvey"
description = "a made-up drive-test tool's export"
licence = "CC0"
not_measured = ["loss"]

[file]
delimiter = ";"
header_line = 2          # the tool writes a preamble line first
missing = ["", "N/A"]

[time]
column = "time"
format = "%Y-%m-%dT%H:%M:%S.%f%z"

[position]
lat = "lat"
lon = "lon"
speed = "speed"
speed_unit = "m/s"
heading = "course"
heading_unit = "deg"

[link]
name = "modem1"
rat_column = "tech"
rat_values = { NR5G = "nr", "LTE" = "lte" }
cell_id = ["pci", "ecgi"]
rsrp = "rsrp"
sinr = "sinr"
rtt = "ping"
rtt_unit = "s"
ul = "ul"
rate_unit = "Mbps"
"""

SURVEY_HEADER = "time;lat;lon;speed;course;tech;pci;ecgi;rsrp;sinr;ping;ul"
SURVEY_ROWS = [
    "2024-05-01T08:00:00.000Z;48.1;11.5;10.0;90;NR5G;17;;-95;12.5;0.025;1.5",
    "2024-05-01T08:00:00.100Z;48.1;11.5;10.5;450;LTE;;E1;-101;N/A;;N/A",  # no ping ran
    "2024-05-01T08:00:00.200Z;48.1;11.5;11.0;91;nr5g;18;;-96;13.0;timeout;2",
    "2024-05-01T08:00:00.300Z;48.1;11.5;11.0;91;WiMAX;18;;-96;13.0;;2",
    "2024-05-01T08:00:00.400Z;48.1;11.5;11.0;91;LTE;18;;-10;13.0;;2",
    "yesterday;48.1;11.5;11.0;91;LTE;18;;-96;13.0;;2",
    "2024-05-01T08:00:00.600Z;48.1;11.5;11.0",
    "2024-05-01T08:00:00.700Z;48.1;11.5;11.0;92;LTE;19;;-97;14.0;0.03;0.25;extra;values",
    "2024-05-01T08:00:00.800Z;48.1;11.5;N/A;92;LTE;19;;-97;14.0;;2",
    "2024-05-01T08:00:00.900Z;48.1;11.5;11.0;92;LTE;19;;abc;14.0;;2",
    "",  # a blank line is not a row
    "2024-05-01T10:00:01.000+02:00;48.1;11.5;12.0;93;NR5G;20;;-90;20.0;0.5;100",
]


def test_third_tool_export(tmp_path: Path) -> None:
    spec = tmp_path / "fieldsurvey.toml"
    spec.write_text(SURVEY_MAPPING)
    path = tmp_path / "survey 1.csv"
    path.write_text("# FieldSurvey 3.2, device A\n" + SURVEY_HEADER + "\n"
                    + "\n".join(SURVEY_ROWS) + "\n")
    report = import_files("mapped", [path], tmp_path / "log", mapping=spec)
    f = report.files[0]
    assert f.vehicle == "survey_1" and f.links == ["modem1"]
    assert f.rows == 11 and f.kept == 6
    assert f.skipped == {"unknown tech 'WiMAX'": 1, "bad time": 1, "too few fields": 1,
                         "no speed": 1, "rsrp not a number": 1}
    assert f.fields_not_measured == {"rsrp_dbm": {"above_range": 1}}  # -10 dBm
    assert f.notes == {"rows with 14 values under a header of 12 names (the named ones "
                       "first; the rest ignored)": 1}
    links, states = rows(tmp_path / "log", "link"), rows(tmp_path / "log", "state")
    assert [r["seq"] for r in links] == [r["seq"] for r in states] == [0, 1, 2, 4, 7, 10]
    t0 = datetime(2024, 5, 1, 8, tzinfo=UTC).timestamp()
    assert [r["recv_time"] for r in links] == pytest.approx(
        [t0, t0 + 0.1, t0 + 0.2, t0 + 0.4, t0 + 0.7, t0 + 1.0])  # +02:00 in the last row
    assert [r["ts"] for r in links] == [r["recv_time"] for r in links]
    assert [r["link"] for r in links] == ["modem1"] * 6
    assert [r["rat"] for r in links] == ["nr", "lte", "nr", "lte", "lte", "nr"]  # any case
    assert [r["cell_id"] for r in links] == ["17", "E1", "18", "18", "19", "20"]  # first
    assert f.cell_changes == 4
    assert [r["rsrp_dbm"] for r in links] == [-95.0, -101.0, -96.0, None, -97.0, -90.0]
    assert [r["sinr_db"] for r in links] == [12.5, None, 13.0, 13.0, 14.0, 20.0]  # N/A: null
    # Ping in seconds -> ms; an empty ping is no probe; "timeout" is a probe without answer.
    assert [r["rtt_ms"] for r in links] == pytest.approx([25.0, None, None, None, 30.0, 500.0])
    assert [r["probe"] for r in links] == [True, False, True, False, True, True]
    assert {r["sender_clock"] for r in links} == {False}
    # UL in Mbit/s -> kbit/s; DL not mapped: null ("not measured"), never 0.
    assert [r["ul_kbps"] for r in links] == [1500.0, None, 2000.0, 2000.0, 250.0, 100_000.0]
    assert {r["dl_kbps"] for r in links} == {None}
    assert [r["speed_mps"] for r in states] == [10.0, 10.5, 11.0, 11.0, 11.0, 12.0]
    assert [r["heading_deg"] for r in states] == [90.0, 90.0, 91.0, 91.0, 92.0, 93.0]
    assert [(r["lat"], r["lon"]) for r in states] == [(48.1, 11.5)] * 6
    manifest = read_manifest(tmp_path / "log")
    assert manifest.site == "fieldsurvey"  # no default_site: the mapping's name
    assert manifest.not_measured == ["loss"] and manifest.hub_config is None
    assert manifest.source == {"kind": "mapped", "mapping": "fieldsurvey.toml",
                               "name": "fieldsurvey",
                               "description": "a made-up drive-test tool's export",
                               "licence": "CC0", "files": ["survey 1.csv"]}


MINIMAL = """
[time]
column = "t"
format = "{fmt}"
{extra}
[position]
lat = "lat"
lon = "lon"
speed = "v"
speed_unit = "km/h"
[link]
rat = "lte"
"""


MARKER_MAPPING = """
name = "logger"
[time]
column = "t"
format = "epoch_s"
[position]
lat = "lat"
lon = "lon"
speed = "v"
[link]
rat = "lte"
cell_id = "cell"
rsrp = "rsrp"
rtt = "rtt"
ul = "ul"
"""


def test_import_mapped_cli_keeps_a_row_with_an_rsrp_marker(tmp_path: Path) -> None:
    """``l4mon import mapped``: the row whose RSRP is -200 dBm is kept with its uplink, its
    RSRP null; the count is in the printed report and the manifest."""
    spec = tmp_path / "logger.toml"
    spec.write_text(MARKER_MAPPING)
    source = [("1700000000", "-97", "40", "3900"), ("1700000001", "-200", "41", "3850"),
              ("1700000002", "-98", "-", "3700")]
    path = tmp_path / "drive.csv"
    path.write_text("t,lat,lon,v,cell,rsrp,rtt,ul\n" + "".join(
        f"{t},35.0,139.0,5.0,A,{rsrp},{rtt},{ul}\n" for t, rsrp, rtt, ul in source))
    out = tmp_path / "log"
    done = subprocess.run([sys.executable, "-m", "l4mon", "import", "mapped", "--mapping",
                           str(spec), str(path), "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "rows 3, kept 3" in done.stdout and "skipped: none" in done.stdout
    assert "warning: RSRP: 1 value below the 3GPP reporting range of TS 38.133 " \
           "(-156 … -31 dBm), not measured" in done.stdout
    assert read_manifest(out).fields_not_measured == {"rsrp_dbm": {"below_range": 1}}
    links = rows(out, "link")
    assert [r["ul_kbps"] for r in links] == [float(ul) for *_, ul in source]
    assert [r["rsrp_dbm"] for r in links] == [-97.0, None, -98.0]
    assert [r["rtt_ms"] for r in links] == [40.0, 41.0, None]


@pytest.mark.parametrize(("fmt", "extra", "stamps", "want"), [
    ("epoch_s", "", ["1700000000.5", "1700000001"], [1_700_000_000.5, 1_700_000_001.0]),
    ("epoch_ms", "", ["1700000000500", "1700000001000"], [1_700_000_000.5, 1_700_000_001.0]),
    ("iso8601", 'timezone = "Asia/Tokyo"', ["2023-11-15T07:13:20", "2023-11-14T22:13:21Z"],
     [1_700_000_000.0, 1_700_000_001.0]),
    ("%d/%m/%Y %H:%M:%S", 'timezone = "UTC"\nspread_same_second = true',
     ["14/11/2023 22:13:20", "14/11/2023 22:13:20"], [1_700_000_000.0, 1_700_000_000.5]),
])
def test_time_formats(tmp_path: Path, fmt: str, extra: str, stamps: list[str],
                      want: list[float]) -> None:
    spec = tmp_path / "minimal.toml"
    spec.write_text(MINIMAL.format(fmt=fmt, extra=extra))
    path = tmp_path / "drive.csv"
    path.write_text("t,lat,lon,v\n" + "".join(f"{s},1.0,2.0,36\n" for s in stamps))
    report, entries = Importer(load_mapping(spec)).parse(path, vehicle="v", site="s")
    assert report.kept == 2
    assert [recv for recv, _, _ in entries[::2]] == want
    assert [msg.speed_mps for _, _, msg in entries[::2]] == [10.0, 10.0]  # type: ignore[union-attr]
    assert [msg.probe for _, _, msg in entries[1::2]] == [False, False]  # type: ignore[union-attr]


def test_timezone_argument_overrides_the_mapping(tmp_path: Path) -> None:
    """``timezone`` (the CLI's --tz) replaces the mapping's zone for naive stamps."""
    path = tmp_path / "summer.csv"
    path.write_text(GNETTRACK_HEADER + "\n" + GNETTRACK_ROWS[0].replace(
        "2021.03.01_10.00.00", "2021.07.01_10.00.00") + "\n")
    importer = Importer(load_mapping("gnettrack"))
    _, dublin = importer.parse(path, vehicle="v", site="s")
    _, tokyo = importer.parse(path, vehicle="v", site="s", timezone="Asia/Tokyo")
    assert dublin[0][0] == 1_625_130_000.0  # 09:00 UTC: Irish summer time
    assert tokyo[0][0] == 1_625_101_200.0  # 01:00 UTC


def test_heading_from_utm_and_from_the_track(tmp_path: Path) -> None:
    """rad_ccw_east with UTM adds the meridian convergence; without a heading, the track."""
    _, entries = Importer(load_mapping("cicv5g")).parse(EXCERPT, vehicle="v", site="s")
    state = entries[0][2]
    heading = float(EXCERPT.read_text().splitlines()[1].split()[5])
    assert state.heading_deg == pytest.approx(  # type: ignore[union-attr]
        (90 - math.degrees(heading) - 0.93) % 360, abs=0.05)
    spec = tmp_path / "track.toml"
    spec.write_text(MINIMAL.format(fmt="epoch_s", extra=""))
    path = tmp_path / "drive.csv"
    path.write_text("t,lat,lon,v\n1,51.9,-8.4,0\n2,51.90001,-8.4,0\n3,51.9001,-8.4,0\n"
                    "4,51.9001,-8.3999,0\n")
    _, entries = Importer(load_mapping(spec)).parse(path, vehicle="v", site="s")
    courses = [round(msg.heading_deg) for _, _, msg in entries[::2]]  # type: ignore[union-attr]
    assert courses == [0, 0, 0, 90]  # 1 m is jitter; then north (0), then east


# --- mappings and files that are wrong -----------------------------------------------------------


def bad_mapping(tmp_path: Path, text: str) -> MappingError:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    with pytest.raises(MappingError) as caught:
        load_mapping(spec)
    assert str(caught.value).startswith(str(spec)), caught.value
    return caught.value


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ('licence = "CC0"', 'license = "CC0"', "license", "unknown key"),
    ('rtt_unit = "s"', 'rtt_unit = "s"\nrtt_column = "x"', "link.rtt_column", "unknown key"),
    ('speed_unit = "m/s"', 'speed_unit = "mph"', "position.speed_unit", "mph"),
    ('rate_unit = "Mbps"', 'rate_unit = "MB/s"', "link.rate_unit", "MB/s"),
    ('rtt_unit = "s"', 'rtt_unit = "us"', "link.rtt_unit", "us"),
    ('heading_unit = "deg"', 'heading_unit = "grad"', "position.heading_unit", "grad"),
    ('NR5G = "nr"', 'NR5G = "5g"', "link.rat_values.NR5G", "not one of nr, lte, umts, gsm"),
    ('column = "time"\n', "", "time.column", "required key missing"),
    ('delimiter = ";"', 'delimiter = "|"', "file.delimiter", "|"),
    ('not_measured = ["loss"]', 'not_measured = ["latency"]', "not_measured[0]", "latency"),
    ('header_line = 2', 'header_line = "2"', "file.header_line", "Expected `int`"),
    ('format = "%Y-%m-%dT%H:%M:%S.%f%z"', 'format = "%Y-%m-%d %H:%M:%S"', "time.timezone",
     "no UTC offset"),
    ('column = "time"', 'column = "time"\ntimezone = "Mars/Olympus"', "time.timezone",
     "Mars/Olympus"),
    ('column = "time"', 'column = "time"\nsender_clock = true', "time.sender_clock",
     "sender_column"),
    ('rat_column = "tech"', 'rat = "lte"\nrat_column = "tech"', "link.rat", "not both"),
    ('rat_column = "tech"', 'rat = "5g"', "link.rat", "not one of"),
    ('name = "modem1"', 'name = "modem 1"', "link.name", "wire name"),
    ('NR5G = "nr"', 'NR5G = "nr", nr5g = "lte"', "link.rat_values.nr5g", "mapped to both"),
    ('lon = "lon"', 'lon = "lon"\neasting = "x"', "position", "lat and lon, or easting"),
    ('rtt = "ping"', 'every_row_is_a_probe = true', "link.rtt", "no rtt column"),
    ('missing = ["", "N/A"]', 'missing = ["", "N/A"]\noptional = ["nope"]', "file.optional",
     "nope"),
    ('not_measured = ["loss"]', 'not_measured = ["loss"]\n[hub_config.requirements]\n'
     'ul_required_kbp = 1', "hub_config", "ul_required_kbp"),
])
def test_bad_mappings_name_the_key(tmp_path: Path, old: str, new: str, key: str,
                                   words: str) -> None:
    assert old in SURVEY_MAPPING
    error = bad_mapping(tmp_path, SURVEY_MAPPING.replace(old, new, 1))
    assert error.key == key, str(error)
    assert f": {key}: " in str(error) and words in str(error), str(error)


def test_cicv5g_empty_cell_is_not_measured(tmp_path: Path) -> None:
    """CICV5G rows whose cellid is empty (two separators in a row, or the value left out):
    kept with the cell not measured, their RTT counted, not skipped as too few fields."""
    # The ten named columns only, as most runs are: a row without its cell is then short.
    lines = [" ".join(line.split()[:10]) for line in EXCERPT.read_text().splitlines()]
    header, data = lines[0], lines[1:]
    i_cell = header.split().index("cellid(db)")
    emptied = {3: "double", 4: "double", 8: "dropped"}
    out = [header]
    for n, line in enumerate(data):
        fields = line.split()
        if emptied.get(n) == "double":
            fields[i_cell] = ""
        elif emptied.get(n) == "dropped":
            del fields[i_cell]
        out.append(" ".join(fields))
    path = tmp_path / "arterial_n78_v50_empty.txt"
    path.write_text("\n".join(out) + "\n")
    report = import_files("cicv5g", [path], tmp_path / "log")
    (f,) = report.files
    assert f.kept == f.rows == len(data) and not f.skipped
    links = rows(tmp_path / "log", "link")
    assert [n for n, r in enumerate(links) if r["cell_id"] is None] == sorted(emptied)
    assert [r["rtt_ms"] for r in links] == [float(line.split()[2]) for line in data]
    want_rsrp = [float(line.split()[header.split().index("rsrp(db)")]) for line in data]
    assert [r["rsrp_dbm"] for r in links] == want_rsrp  # the values after the cell in place


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    error = bad_mapping(tmp_path, SURVEY_MAPPING.replace("[position]", "[position]\nalt = 1"))
    assert error.key == "position.alt"
    assert "known here: lat, lon," in str(error), str(error)


def test_unusable_mapping_files(tmp_path: Path) -> None:
    error = bad_mapping(tmp_path, "[time\ncolumn = 1")
    assert "not valid TOML" in str(error)
    error = bad_mapping(tmp_path, SURVEY_MAPPING.replace('rat_column = "tech"', ""))
    assert error.key == "link.rat"  # neither a fixed RAT nor a RAT column
    with pytest.raises(MappingError, match=r"no such mapping file.*cicv5g, gnettrack"):
        load_mapping("nemo")
    with pytest.raises(MappingError, match="no such mapping file"):
        load_mapping(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="needs --mapping"):
        import_files("mapped", [EXCERPT], tmp_path / "log")
    with pytest.raises(ValueError, match="mapped format only"):
        import_files("cicv5g", [EXCERPT], tmp_path / "log", mapping="cicv5g")


def test_file_not_what_the_mapping_says(tmp_path: Path) -> None:
    spec = tmp_path / "fieldsurvey.toml"
    spec.write_text(SURVEY_MAPPING)
    out = tmp_path / "log"
    wrong = tmp_path / "other tool.csv"
    wrong.write_text("# preamble\nwhen;lat;lon;speed;course;tech;pci;rsrp;sinr;ping;ul\n"
                     "x;1;2;3;4;LTE;1;-90;1;;1\n")
    with pytest.raises(DriveLogImportError) as caught:
        import_files("mapped", [wrong], out, mapping=spec)
    message = str(caught.value)
    assert message.startswith(f"{wrong}:2:"), message  # the header is on line 2
    assert "header lacks time" in message and "fieldsurvey" in message, message
    assert "ecgi" not in message  # one of the cell_id columns is enough
    assert not out.exists()
    # The CICV5G excerpt through the G-NetTrack mapping: refused at its header.
    with pytest.raises(DriveLogImportError, match=r"excerpt\.txt:1: not a gnettrack export"):
        import_files("mapped", [EXCERPT], out, mapping="gnettrack")
    useless = tmp_path / "useless.csv"
    useless.write_text("# preamble\n" + SURVEY_HEADER + "\n" + SURVEY_ROWS[3] + "\n")
    with pytest.raises(DriveLogImportError, match=r"no usable rows.*WiMAX"):
        import_files("mapped", [useless], out, mapping=spec)
    header_only = tmp_path / "header.csv"
    header_only.write_text("# preamble\n" + SURVEY_HEADER + "\n")
    with pytest.raises(DriveLogImportError, match="no data rows") as caught:
        import_files("mapped", [header_only], out, mapping=spec)
    assert caught.value.line == 3  # where the first row would be
    assert not out.exists()


def test_mapping_module_ships_no_package() -> None:
    """The mappings are data files beside the module, not an importable package."""
    assert not (mapped.MAPPINGS / "__init__.py").exists()
    assert sorted(p.name for p in mapped.MAPPINGS.iterdir() if p.suffix == ".toml") == [
        "cicv5g.toml", "gnettrack.toml"]
