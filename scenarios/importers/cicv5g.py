"""CICV5G: vehicle-to-cloud round-trip delay over 5G, recorded at the Tongji test site.

Zhang et al., *5G communication delay dataset for cloud-based vehicle planning and control*,
Zenodo doi:10.5281/zenodo.17475688 (2025), CC BY 4.0.

The files are whitespace-separated text with the header ``pub_time(ms) sub_time(ms) delay(ms)
utmX(m) utmY(m) heading(rad) velocity(m/s) cellid(db) sinr(db) rsrp(db)``; some runs add
``currentX(m) currentY currentHeading(rad)`` columns, which are not imported. One row is one
round trip (about every 55 ms): the vehicle published at ``pub_time``, the cloud's answer
arrived at ``sub_time``, ``delay`` is their difference in milliseconds.

What the public release holds besides, and how it is read (each counted in the file's notes):
rows with more values than the header names (the ``W2S`` runs: 12 values under the 10 names;
the named values come first, the rest are ignored); tab- or comma-separated copies (the
release's merge tool writes tab-separated text; a header line with commas is read as CSV); the
ten columns in another order or beside others (found by name). The band is taken from the file
name (``..._n78_...``) or else from a folder named like ``n8``, ``2-n78`` or ``N78`` (the
release's ``v2v_info-03.txt`` files carry it only in their folder). Files that concatenate
several drives (the release's ``all.txt``) hold time jumps between drives: the drive log keeps
them, and replay treats each drive as its own session (docs/replay.md).

Mapping, row by row (the data row index, 0-based, is ``seq`` of both messages, so a skipped
row is a gap the hub counts as a lost sample):

* ``recv_time = sub_time / 1000`` (the round trip completed then), ``ts = pub_time / 1000``.
  Both are the vehicle's clock (it sent and it received), so ``sender_clock`` is false: there
  is no one-way delay in these files, and l4mon derives none.
* LinkSample on a link named after the band (``n8`` is the private network -> ``l5g``;
  ``n78`` the public one -> ``pub5g``; any other or none -> ``5g``): rat ``nr``, ``cell_id`` =
  the ``cellid`` hex string as written (empty: not measured, the row kept), ``rsrp_dbm`` =
  rsrp, ``sinr_db`` = sinr, ``rtt_ms`` =
  the ``delay`` column itself (every row is an answered probe). No throughput is measured:
  ``ul_kbps``/``dl_kbps`` stay null, "not measured", never 0. A figure outside its physical
  range (telemetry/ranges.py: a ``delay`` of 0, an ``rsrp`` of -200) is null instead, counted
  in the report and the manifest, the row kept; a ``delay`` so nulled is no probe.
* VehicleState, one per row: the UTM position converted to latitude/longitude, ``speed_mps``
  = velocity, ``heading_deg`` from ``heading(rad)``, mode ``autonomous`` (the vehicle drove
  under cloud planning and control).

Positions: the files do not state the UTM zone. We assume **zone 51N** (central meridian
123 E), where the Tongji University test site in Jiading, Shanghai lies; the positions then fall
at about 31.29 N 121.21 E, on that site. The inverse is telemetry/utm.py's (the Krüger series,
checked against PROJ to well under a millimetre within a zone).

Heading: comparing each row's heading with the direction to the next position shows that
``heading(rad)`` is the mathematical angle of the UTM grid: counter-clockwise from grid east, in
(-pi, pi] (median disagreement 0.015-0.03 rad over the real runs, against ~1.9 rad for
"clockwise from north"). It becomes a compass bearing as ``90 - degrees(heading)`` measured from
grid north, plus the meridian convergence (about -0.93 degrees at the site) to refer it to true
north, in [0, 360).

Oddities of the real files: the radio fields (``cellid``, ``sinr``, ``rsrp``) are refreshed only
about every 13 s (~238 rows) and repeated in between, so a serving-cell change is known to
within that refresh; ``arterial_n8_v50_run01`` has a 7 s and a 3 s gap without rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Final

from scenarios.importers import (
    DriveLogImportError,
    Entry,
    FileReport,
    RowSkip,
    finish,
    link_sample,
    number,
    read_text,
    split_lines,
    wire,
)
from telemetry.topics import Route
from telemetry.utm import utm_to_latlon
from telemetry.wire import VehicleState

HEADER: Final = ("pub_time(ms)", "sub_time(ms)", "delay(ms)", "utmX(m)", "utmY(m)",
                 "heading(rad)", "velocity(m/s)", "cellid(db)", "sinr(db)", "rsrp(db)")
CITATION: Final = ("Zhang et al., 5G communication delay dataset for cloud-based vehicle "
                   "planning and control, Zenodo doi:10.5281/zenodo.17475688 (2025)")
UTM_ZONE: Final = 51  # northern hemisphere
#: The site an import is filed under unless ``--site`` says otherwise: the dataset's test site.
DEFAULT_SITE: Final = "tongji-cicv5g"
SOURCE: Final = {
    "kind": "cicv5g",
    "citation": CITATION,
    "licence": "CC BY 4.0",
    "positions": f"UTM zone {UTM_ZONE}N assumed (not stated in the files): the Tongji "
                 "University test site, Jiading, Shanghai; WGS84",
    "heading": "heading(rad) is counter-clockwise from UTM grid east; converted to degrees "
               "clockwise from true north",
    "times": "recv_time = sub_time, ts = pub_time, rtt_ms = delay(ms)",
}
#: Each row is a round trip the vehicle logged; a probe that never came back leaves no row, so
#: the row numbers (seq) say nothing about loss. One-way delay is absent per sample
#: (sender_clock false) and throughput is simply not in the files.
NOT_MEASURED: Final = ("loss",)
#: Link names by band: n8 is the private (local) network, n78 the public one.
BAND_LINKS: Final = {8: "l5g", 78: "pub5g"}
DEFAULT_LINK: Final = "5g"
_BAND = re.compile(r"(?<![a-z0-9])n(\d{1,3})(?![0-9])")
#: A folder that names a band and nothing else: ``n8``, ``N78``, ``2-n78``.
_BAND_FOLDER = re.compile(r"^(?:\d+-)?n(\d{1,3})$")
#: How many folders up a band folder is looked for (the release nests runs in speed folders).
_BAND_DEPTH: Final = 3
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")
_MAX_EPOCH_S: Final = 4_102_444_800.0

# --- the file -------------------------------------------------------------------------------


def band(path: Path) -> int | None:
    """The band the file name names, or else the nearest folder named after one."""
    match = _BAND.search(path.stem.lower())
    if match:
        return int(match.group(1))
    for folder in list(path.parents)[:_BAND_DEPTH]:
        match = _BAND_FOLDER.match(folder.name.lower())
        if match:
            return int(match.group(1))
    return None


def link_name(path: Path) -> str:
    """``l5g`` for a band n8 file, ``pub5g`` for n78, ``5g`` when no band is known."""
    number = band(path)
    return DEFAULT_LINK if number is None else BAND_LINKS.get(number, DEFAULT_LINK)


def _number(text: str, name: str) -> float:
    """CICV5G has no "no value" marker: every cell is a number, or the row is skipped."""
    value = number(text, name, ())
    assert value is not None  # nothing counts as missing
    return value


def _splitter(header: str) -> tuple[str, Callable[[str], list[str]]]:
    """How the file separates its values, told by its header line: commas, else whitespace
    (spaces or tabs, as the release's own files and its merge tool write them)."""
    if "," in header:
        return "comma-separated", lambda line: [f.strip() for f in line.split(",")]
    return "whitespace-separated", str.split


def _without_cell(line: str, fields: list[str], layout: str, names: list[str], i_cell: int,
                  needed: int, notes: Counter[str]) -> list[str]:
    """A row with fewer values than the header names, read where its cell id is empty (239
    rows of one real run, with RTTs of 15-5,670 ms): the cell is not measured, the row stands.
    The empty value shows as two separators in a row; where the separators were collapsed, a
    row one value short of the header and short of the named columns is read as lacking the
    cell. Any other row short of the named columns is skipped."""
    empty = "rows without a cellid (empty): the cell not measured, the row kept"
    if layout == "whitespace-separated":
        by_position = re.split(r"[ \t]", line.strip())
        if len(by_position) == len(names) and by_position[i_cell] == "" and all(
                by_position[:i_cell] + by_position[i_cell + 1:]):
            notes[empty] += 1
            return by_position
    if len(fields) >= needed:
        return fields  # the named values are all there (later, unnamed ones are not)
    if len(fields) == len(names) - 1 and all(fields):
        notes["rows one value short, read as without a cellid: the cell not measured, the "
              "row kept"] += 1
        return [*fields[:i_cell], "", *fields[i_cell:]]
    raise RowSkip("too few fields")


def parse(path: Path, *, vehicle: str, site: str) -> tuple[FileReport, list[Entry]]:
    """Read one CICV5G file into (report, messages); raises DriveLogImportError if unusable."""
    text = read_text(path, "CICV5G")
    lines = split_lines(text)
    layout, split = _splitter(lines[0])
    names = split(lines[0])
    missing = [name for name in HEADER if name not in names]
    if missing:
        hint = " (this looks like a G-NetTrack CSV)" if "Timestamp" in lines[0] else ""
        raise DriveLogImportError(
            path, f"not a CICV5G file{hint}: the header should name "
                  f"{' '.join(HEADER)!r}; it lacks {' '.join(missing)!r} "
                  f"(found {lines[0][:120]!r})", 1)
    at = [names.index(name) for name in HEADER]
    needed = max(at) + 1
    link = link_name(path)
    report = FileReport(path=path, vehicle=vehicle, links=[link])
    notes: Counter[str] = report.notes
    if link == DEFAULT_LINK:
        notes["no band (n8/n78) in the file name or its folders; link named 5g"] += 1
    if layout != "whitespace-separated":
        notes[f"{layout} copy of the format"] += 1
    if tuple(names[: len(HEADER)]) != HEADER:
        notes["the ten columns found by name (other order, or other columns first)"] += 1
    state_route = Route("state", site, vehicle)
    link_route = Route("link", site, vehicle, link)
    entries: list[Entry] = []
    cells: list[str | None] = []
    index = -1
    i_pub, i_sub, i_delay, i_x, i_y, i_heading, i_velocity, i_cell, i_sinr, i_rsrp = at
    for line in lines[1:]:
        fields = split(line)
        if not any(fields):
            continue
        index += 1
        try:
            if len(fields) < len(names):
                fields = _without_cell(line, fields, layout, names, i_cell, needed, notes)
            pub = _number(fields[i_pub], "pub_time")
            sub = _number(fields[i_sub], "sub_time")
            delay = _number(fields[i_delay], "delay")
            x, y = _number(fields[i_x], "utmX"), _number(fields[i_y], "utmY")
            heading = _number(fields[i_heading], "heading")
            velocity = _number(fields[i_velocity], "velocity")
            cell: str | None = fields[i_cell] or None
            if cell is not None and not _HEX.match(cell):
                raise RowSkip("cellid not a hex string")
            sinr, rsrp = _number(fields[i_sinr], "sinr"), _number(fields[i_rsrp], "rsrp")
            recv = sub / 1000.0
            if not 0.0 <= recv <= _MAX_EPOCH_S:
                raise RowSkip("sub_time out of range")
            if not (0.0 <= x <= 1_000_000.0 and 0.0 <= y <= 10_000_000.0):
                raise RowSkip("utmX/utmY outside a UTM zone")
            lat, lon, convergence = utm_to_latlon(x, y, UTM_ZONE)
            bearing = (90.0 - math.degrees(heading) + convergence) % 360.0
            ts = pub / 1000.0
            state = wire(VehicleState, {
                "ts": ts, "seq": index, "lat": lat, "lon": lon, "speed_mps": velocity,
                "heading_deg": bearing, "mode": "autonomous"})
            sample, screened = link_sample({
                "ts": ts, "seq": index, "rat": "nr", "cell_id": cell, "rsrp_dbm": rsrp,
                "sinr_db": sinr, "rtt_ms": delay, "sender_clock": False})
        except RowSkip as skip:
            report.skipped[skip.reason] += 1
            continue
        report.kept_row(screened)
        if len(fields) != len(names):
            notes[f"rows with {len(fields)} values under a header of {len(names)} names "
                  f"(the named ones first; the rest ignored)"] += 1
        if sub - pub != delay:
            notes["delay differs from sub_time - pub_time"] += 1
        entries.append((recv, state_route, state))
        entries.append((recv, link_route, sample))
        cells.append(cell)
    finish(report, path, rows=index + 1, cells=cells)
    return report, entries
