"""G-NetTrack Pro CSV exports, e.g. the UCC 5G dataset.

D. Raca, D. Leahy, C.J. Sreenan, J.J. Quinlan, *Beyond Throughput, The Next Generation: A 5G
Dataset with Channel and Context Metrics*, ACM MMSys 2020 (GPL-3.0). A drive log imported from
those files is derived data under the same licence: write it outside the project tree (the
project's tests read the files from ``../shared/data`` and write to a temporary directory).

Format: one header line, then about one row a second, one row per line; comma-separated (a
tab-separated export is accepted too, told by its header line). Missing values are written
``-`` and become nulls, never zeros. Columns used: ``Timestamp, Longitude, Latitude, Speed,
NetworkMode, RSRP, RSRQ, SNR, DL_bitrate, UL_bitrate, RAWCELLID`` (or ``CellID``) and
``PINGAVG`` where present.

Mapping, row by row (the data row index, 0-based, is ``seq`` of both messages):

* Time: ``Timestamp`` (``2019.11.25_15.34.34``) is the phone's local time, taken as
  **Europe/Dublin** (the drives were in Cork, Ireland; zoneinfo, first occurrence in the
  repeated autumn hour). It has 1 s resolution and two or three consecutive rows may share a
  second: those rows are spread evenly within it (the k-th of n rows at ``second + k/n``), so
  ``recv_time`` strictly increases and each row stays its own batch in a replay. Every row
  with a valid timestamp counts for the spread, kept or skipped, so a kept row's time never
  depends on whether a neighbour was usable. ``ts`` equals ``recv_time``.
* One link named ``cell``: G-NetTrack sees one modem (on 5G NSA, the LTE anchor and the NR leg
  of the same modem), so the link's ``rat`` follows ``NetworkMode``: 5G -> nr, LTE -> lte,
  UMTS/HSPA/HSPA+/HSDPA/HSUPA -> umts, GSM/EDGE/GPRS -> gsm. An unknown mode skips the row
  (counted): it is not read as ``none``, which the hub takes as the modem reporting no service.
  ``cell_id`` = ``RAWCELLID`` (``CellID`` when that is missing), ``rsrp_dbm``/``rsrq_db``/
  ``sinr_db`` = RSRP/RSRQ/SNR as written (in 5G NSA rows these are the LTE anchor's; the NR
  leg's ``NRxRSRP``/``NRxRSRQ`` are not imported; in 3G rows G-NetTrack puts its own figures
  in these columns), ``dl_kbps``/``ul_kbps`` = DL_bitrate/UL_bitrate (kbit/s: the traffic the
  phone carried, which depends on what the app was doing, not the link's capacity).
* Probes: G-NetTrack pings only when its ping test runs (every ~13-14 s in the UCC "Download"
  runs, never in most drives). A row with ``PINGAVG`` or ``PINGLOSS`` filled reports a probe:
  ``rtt_ms`` = ``PINGAVG`` when numeric; a ``PINGLOSS`` of 100 % (or a ``PINGAVG`` that is not
  a number) is a probe without an answer. Every other row carries no probe (``probe`` false):
  it is no evidence of an unanswered one.
* Clock: the phone stamps each row once, so ``ts`` = ``recv_time`` and ``sender_clock`` is
  false: G-NetTrack measures no one-way delay, and l4mon derives none.
* VehicleState: Latitude/Longitude, ``speed_mps`` = Speed (km/h) / 3.6, ``heading_deg`` from a
  ``Bearing``/``Heading`` column when the export has one; otherwise the geodesic (WGS84) bearing
  from the last position at least 5 m away to this one (held while the vehicle moves less,
  0 until it first has), mode ``autonomous`` (the imported vehicle stands for a shuttle on
  the route; the source car was driven by a person).

A link figure outside its physical range (RSRP -200 dBm, a ``PINGAVG`` of 0 or -1) is not
measured: null, counted in the report and the manifest, the row kept (an RTT marker: no probe;
telemetry/ranges.py). Any other value outside the wire bounds, or a missing position, speed,
network mode or timestamp, skips the row with its reason counted; so does a line the CSV reader
cannot parse.

Oddities of the UCC files: in the drives ``PINGAVG`` (and every PING column) is ``-``
throughout, so no row carries a probe; in the static "Download" runs one row in ~14 does;
``NRxRSRP``/``NRxRSRQ`` hold sentinel-like values (-205 dBm, -225 dB) in some rows; in 3G
rows ``SNR``/``CQI`` are ``-``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from telemetry.geodesy import distance_and_bearing as track_bearing
from telemetry.topics import Route
from telemetry.wire import VehicleState

CITATION: Final = ("D. Raca, D. Leahy, C.J. Sreenan, J.J. Quinlan, Beyond Throughput, The Next "
                   "Generation: A 5G Dataset with Channel and Context Metrics, ACM MMSys 2020")
TIMEZONE: Final = "Europe/Dublin"
#: The site an import is filed under unless ``--site`` says otherwise (where the drives were is
#: not in the export; name it with --site when you know).
DEFAULT_SITE: Final = "gnettrack"
LINK: Final = "cell"
SOURCE: Final = {
    "kind": "gnettrack",
    # the zone the stamps were read in (--tz replaces it): the report's wall clock uses it
    "timezone": TIMEZONE,
    "citation": CITATION,
    "licence": "GPL-3.0",
    "note": "the imported log is derived data under GPL-3.0: keep it outside the project",
    "times": f"Timestamp taken as local time ({TIMEZONE} unless --tz said otherwise: the "
             "UCC drives were in Cork, Ireland); rows sharing a "
             "second spread evenly within it",
    "link": f"one link '{LINK}', rat from NetworkMode; cell_id from RAWCELLID",
}
#: Row numbers are seq: a gap is a row the importer skipped, not a lost sample. DL/UL
#: bitrate is what the phone's app carried, not what the link could carry ("capacity"): rate
#: budgets are not graded on it.
NOT_MEASURED: Final = ("loss", "capacity")
#: The hub config a replay of the import runs with: DL/UL bitrate is the traffic an app
#: happened to carry, not what the link could carry, so no uplink requirement is judged
#: (l4mon/config.py: 0 = none). ``l4mon replay --config`` sets another.
HUB_CONFIG: Final = {"requirements": {"ul_required_kbps": 0.0}}
#: NetworkMode as the app (and Android's TelephonyManager names it writes) spells it, by
#: generation: the wire's "umts" is 3G of any kind, "gsm" 2G of any kind. A mode saying the
#: phone has no service is the modem's own report ("none"). Anything else skips the row,
#: counted and warned: guessing a RAT would invent handovers.
RATS: Final = {
    "5G": "nr", "NR": "nr", "NR5G": "nr", "5G NSA": "nr", "5G SA": "nr", "NR NSA": "nr",
    "NR SA": "nr", "NR_NSA": "nr", "NR_SA": "nr", "5G NR": "nr", "5GNR": "nr",
    "LTE": "lte", "LTE+": "lte", "LTE-A": "lte", "LTE CA": "lte", "LTE_CA": "lte",
    "LTE-CA": "lte", "4G": "lte", "4G+": "lte",
    "UMTS": "umts", "WCDMA": "umts", "HSPA": "umts", "HSPA+": "umts", "HSPAP": "umts",
    "HSDPA": "umts", "HSUPA": "umts", "3G": "umts", "TD-SCDMA": "umts", "TDSCDMA": "umts",
    "EVDO": "umts", "EVDO_0": "umts", "EVDO_A": "umts", "EVDO_B": "umts", "EHRPD": "umts",
    "GSM": "gsm", "EDGE": "gsm", "GPRS": "gsm", "2G": "gsm", "CDMA": "gsm", "1XRTT": "gsm",
    "IDEN": "gsm",
    "NO SERVICE": "none", "NOSERVICE": "none", "OUT OF SERVICE": "none",
    "OUT_OF_SERVICE": "none", "NO_SERVICE": "none",
}
REQUIRED: Final = ("Timestamp", "Longitude", "Latitude", "Speed", "NetworkMode", "RSRP")
MISSING: Final = frozenset({"-", ""})
TIME_FORMAT: Final = "%Y.%m.%d_%H.%M.%S"
#: A position must move this far before it gives a new heading (GPS jitter at a standstill).
HEADING_MIN_M: Final = 5.0


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (the export's stamps are the phone's local time)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {name!r} unknown: give an IANA name such as "
                         "Europe/Dublin or Asia/Tokyo (and install tzdata if none is known)"
                         ) from None


def _number(text: str, name: str) -> float | None:
    """``-`` or empty -> None; a number; anything else skips the row."""
    return number(text, name, MISSING)


def _times(stamps: list[str], zone: ZoneInfo) -> list[float | None]:
    """Epoch seconds per row (None when unparsable), repeated seconds spread within them."""
    seconds: list[float | None] = []
    for stamp in stamps:
        try:
            local = datetime.strptime(stamp.strip(), TIME_FORMAT).replace(tzinfo=zone)
        except ValueError:
            seconds.append(None)
            continue
        seconds.append(local.timestamp())
    return spread_same_second(seconds)


def spread_same_second(seconds: list[float | None]) -> list[float | None]:
    """Rows stamped with the same second spread evenly within it (the k-th of n at
    ``second + k/n``), so receive times strictly increase; every valid stamp counts."""
    valid = [i for i, s in enumerate(seconds) if s is not None]
    out: list[float | None] = list(seconds)
    start = 0
    while start < len(valid):
        end = start
        while end + 1 < len(valid) and seconds[valid[end + 1]] == seconds[valid[start]]:
            end += 1
        n = end - start + 1
        for k in range(n):
            i = valid[start + k]
            out[i] = seconds[i] + k / n  # type: ignore[operator]
        start = end + 1
    return out


def _probe(fields: list[str], i_avg: int | None, i_loss: int | None
           ) -> tuple[float | None, bool]:
    """(rtt_ms, probe) of a row: whether its ping test ran, and its answer if it got one."""
    avg = fields[i_avg].strip() if i_avg is not None else "-"
    loss = fields[i_loss].strip() if i_loss is not None else "-"
    if avg in MISSING and loss in MISSING:
        return None, False  # no ping test in this row
    try:
        rtt = float(avg)
    except ValueError:
        return None, True  # the test ran and gave no number: no answer
    # A number outside a round trip's range (0, -1) is a marker: the screen makes it no probe.
    return (rtt, True) if math.isfinite(rtt) else (None, True)


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each field is in a file's rows (None: the export has no such column)."""

    col: dict[str, int]
    width: int
    raw: int | None
    cell: int | None
    rsrq: int | None
    snr: int | None
    dl: int | None
    ul: int | None
    ping: int | None
    ping_loss: int | None
    bearing: int | None

    def value(self, fields: list[str], index: int | None, name: str) -> float | None:
        return None if index is None else _number(fields[index], name)


def _columns(path: Path, first: str, header: list[str]) -> _Columns:
    """The header's columns; DriveLogImportError when a required one is missing."""
    missing = [name for name in REQUIRED if name not in header]
    if "RAWCELLID" not in header and "CellID" not in header:
        missing.append("RAWCELLID or CellID")
    if missing:
        hint = " (this looks like a CICV5G file)" if first.startswith("pub_time") else ""
        raise DriveLogImportError(
            path, f"not a G-NetTrack CSV{hint}: header lacks {', '.join(missing)} "
                  f"(found {first[:120]!r})", 1)
    col = {name: i for i, name in enumerate(header)}
    return _Columns(col=col, width=len(header), raw=col.get("RAWCELLID"),
                    cell=col.get("CellID"), rsrq=col.get("RSRQ"), snr=col.get("SNR"),
                    dl=col.get("DL_bitrate"), ul=col.get("UL_bitrate"), ping=col.get("PINGAVG"),
                    ping_loss=col.get("PINGLOSS"),
                    bearing=next((col[n] for n in ("Bearing", "Heading") if n in col), None))


def parse(path: Path, *, vehicle: str, site: str, timezone: str = TIMEZONE
          ) -> tuple[FileReport, list[Entry]]:
    """Read one G-NetTrack export into (report, messages); raises DriveLogImportError."""
    text = read_text(path, "G-NetTrack CSV")
    lines = split_lines(text)
    first = lines[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","

    def fields_of(line: str) -> list[str] | None:
        """One line's fields (G-NetTrack writes no multi-line fields); None if unparsable."""
        try:
            return next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            return None

    cols = _columns(path, first, [name.strip() for name in fields_of(first) or []])
    data = [fields_of(line) for line in lines[1:] if line.strip()]
    stamps = [f[cols.col["Timestamp"]] if f and len(f) == cols.width else "" for f in data]
    times = _times(stamps, zone(timezone))

    report = FileReport(path=path, vehicle=vehicle, links=[LINK])
    state_route = Route("state", site, vehicle)
    link_route = Route("link", site, vehicle, LINK)
    entries: list[Entry] = []
    cells: list[str | None] = []
    anchor: tuple[float, float] | None = None
    heading = 0.0
    last_time: float | None = None
    for seq, (fields, recv) in enumerate(zip(data, times, strict=True)):
        try:
            if fields is None:
                raise RowSkip("unparsable CSV line")
            if len(fields) != cols.width:
                raise RowSkip("wrong number of fields")
            if recv is None:
                raise RowSkip("bad Timestamp")
            state, sample, screened, cell, course, new_anchor = _row(
                fields, cols, recv, seq, heading, anchor)
        except RowSkip as skip:
            report.skipped[skip.reason] += 1
            continue
        heading, anchor = course, new_anchor
        report.kept_row(screened)
        if last_time is not None and recv < last_time:
            report.notes["Timestamp went backwards"] += 1
        last_time = recv
        entries.append((recv, state_route, state))
        entries.append((recv, link_route, sample))
        cells.append(cell)
    finish(report, path, rows=len(data), cells=cells)
    return report, entries


def _row(fields: list[str], cols: _Columns, recv: float, seq: int, heading: float,
         anchor: tuple[float, float] | None) -> tuple[Any, Any, Any, str | None, float,
                                                     tuple[float, float] | None]:
    """One row as (state, link sample, its screened figures, cell, heading, heading anchor);
    RowSkip with the reason when it cannot be one. The heading comes from the row's bearing,
    else from the track since ``anchor`` once it has moved ``HEADING_MIN_M``."""
    col, value = cols.col, cols.value
    mode = fields[col["NetworkMode"]].strip()
    if mode in MISSING:
        raise RowSkip("no NetworkMode")
    rat = RATS.get(mode.upper())
    if rat is None:
        raise RowSkip(f"unknown NetworkMode {mode[:24]!r}")
    lat = _number(fields[col["Latitude"]], "Latitude")
    lon = _number(fields[col["Longitude"]], "Longitude")
    if lat is None or lon is None:
        raise RowSkip("no position")
    speed = _number(fields[col["Speed"]], "Speed")
    if speed is None:
        raise RowSkip("no speed")
    cell = None
    for index in (cols.raw, cols.cell):
        if index is not None and fields[index].strip() not in MISSING:
            cell = fields[index].strip()
            break
    rtt, probe = _probe(fields, cols.ping, cols.ping_loss)
    sample, screened = link_sample({
        "ts": recv, "seq": seq, "rat": rat, "cell_id": cell,
        "rsrp_dbm": _number(fields[col["RSRP"]], "RSRP"),
        "rsrq_db": value(fields, cols.rsrq, "RSRQ"),
        "sinr_db": value(fields, cols.snr, "SNR"),
        "rtt_ms": rtt, "probe": probe, "sender_clock": False,
        "ul_kbps": value(fields, cols.ul, "UL_bitrate"),
        "dl_kbps": value(fields, cols.dl, "DL_bitrate")})
    bearing = value(fields, cols.bearing, "Bearing")
    course, new_anchor = heading, anchor
    if bearing is not None:
        course = bearing % 360.0
    elif anchor is None:
        new_anchor = (lat, lon)
    else:
        moved, direction = track_bearing(anchor[0], anchor[1], lat, lon)
        if moved >= HEADING_MIN_M:
            course, new_anchor = direction, (lat, lon)
    state = wire(VehicleState, {
        "ts": recv, "seq": seq, "lat": lat, "lon": lon, "speed_mps": speed / 3.6,
        "heading_deg": course, "mode": "autonomous"})
    return state, sample, screened, cell, course, new_anchor
