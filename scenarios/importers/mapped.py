"""Any drive-test tool's text export, read through a small TOML mapping of its columns.

Validators bring exports of many tools (Network Survey, QualiPoc, Nemo, a router's site
survey...). Rather than an importer per tool, a mapping names the columns and their units, so a
new tool's export imports without code: ``l4mon import mapped --mapping my-tool.toml FILE...``.
Shipped mappings (``--mapping gnettrack`` / ``cicv5g``, in ``mappings/``) read the two known
formats to the very same drive log as their dedicated importers (tests/test_mapped_importer.py
proves it on the real files); they are also worked examples.

The contract is the dedicated importers' (scenarios/importers/__init__.py): one vehicle per
file, one VehicleState and one LinkSample per kept row, ``seq`` = the data row's index (blank
lines are not rows), a bad row skipped with its reason counted, a file that is not what the
mapping says refused with its name and line. A mapping is checked whole before any file is
read: an unknown key, unit or RAT, or a wrong type is a :class:`MappingError` naming the
mapping file and the key.

A mapping, annotated (every key not marked *required* may be left out; this example is itself
a valid mapping, tests/test_mapped_importer.py loads it)::

    name = "my-tool"                 # the source's name (default: the file's stem)
    description = "My tool's CSV"    # these four go into the drive log's manifest source
    citation = "..."
    licence = "CC BY 4.0"
    note = "..."
    default_site = "my-site"         # site unless --site (default: name, made a wire name)
    not_measured = ["loss"]          # "loss" (seq is our row number: gaps are skipped rows,
                                     # not lost samples) and/or "capacity" (UL/DL is an app's
                                     # traffic, not what the link could carry); default both

    [file]
    delimiter = "auto"   # ",", "\\t", ";", "whitespace", or "auto": comma if the header
                         # line has one, else tab, else semicolon, else whitespace
    header_line = 1      # 1-based line of the column names (tools that write a preamble)
    missing = ["-", ""]  # values meaning "not measured": null, never 0
    optional = ["RSRQ"]  # named columns the export may lack (their values are then null);
                         # every other column named here must be in the header

    [time]               # required
    column = "Time"      # required: when the row was logged -> recv_time
    format = "%Y-%m-%dT%H:%M:%S%z"  # strptime pattern, "iso8601", "epoch_s" or "epoch_ms"
    timezone = "UTC"     # IANA zone of stamps without an offset (the phone's local time)
    spread_same_second = false  # 1 s stamps: the k-th of n rows sharing a second at
                                # second + k/n (every row with a valid stamp counts)
    sender_column = "TxTime"    # the sender's stamp -> ts (same format); default: ts = time
    sender_clock = false        # whether ts is an independent synchronised clock

    [position]           # required: lat + lon, or easting + northing + utm_zone
    lat = "Latitude"
    lon = "Longitude"
    # easting = "X"      # or UTM (WGS84): easting, northing, utm_zone = 51,
    # northing = "Y"     # hemisphere = "N" (or "S")
    speed = "Speed"      # required
    speed_unit = "km/h"  # "m/s" or "km/h"
    heading = ["Bearing"]       # column(s), the first with a value in the row
    heading_unit = "deg"        # "deg" / "rad" clockwise from north, or "rad_ccw_east"
                                # (counter-clockwise from east, as CICV5G: from UTM grid
                                # east plus the meridian convergence with UTM positions)
    heading_from_track = true   # no heading value: bearing from the last position >= 5 m
                                # away (held while the vehicle moves less)

    [link]
    name = "cell"        # the link's name (a wire name)
    from_band = { 8 = "l5g", 78 = "pub5g" }  # or by the band (n8, n78) in the file name or
                                              # its folders; `name` when none matches
    # rat = "lte"        # required, one of: a fixed RAT (nr, lte, umts, gsm; none), or
    rat_column = "Tech"  # per row, from a column through rat_values
    rat_values = { "NR5G" = "nr", "LTE" = "lte" }  # case-insensitive; other values skip
    cell_id = ["PCI"]    # column(s), the first with a value in the row
    cell_id_hex = false  # refuse (skip) a cell id that is not a hex string
    rsrp = "RSRP"        # dBm
    rsrq = "RSRQ"        # dB
    sinr = "SINR"        # dB
    rtt = "Ping"
    rtt_unit = "ms"      # "ms" or "s"
    probe_columns = ["Ping"]    # a value here means a probe ran in this row (default: the
                                # rtt column); an rtt that is then not a number = unanswered
    every_row_is_a_probe = false  # instead: each row is a round trip (a non-number rtt
                                  # skips the row)
    ul = "UL"
    dl = "DL"
    rate_unit = "kbps"   # "bps", "kbps" or "Mbps" (of both)

    [hub_config.requirements]   # the hub config a replay runs with (l4mon/config.py)
    ul_required_kbps = 0.0

Reading: a row with fewer values than the header names is skipped; one with more uses the named
values (they come first) and is noted. A link figure outside its physical range (a tool's "no
value" marker: RSRP -200 dBm, an RTT of 0 or -1) is null, not measured, counted in the report
and the manifest, the row kept (an RTT marker: no probe; telemetry/ranges.py). Any other value
outside the wire bounds skips the row with its reason (``importers.wire``), so does a missing
time, position or speed, or an unknown RAT.
Every sample says ``probe`` and ``sender_clock`` itself (telemetry/wire.py): a row without a
probe is no evidence of an unanswered one.
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from scenarios.importers import (
    DriveLogImportError,
    Entry,
    FileReport,
    RowSkip,
    finish,
    link_sample,
    read_text,
    split_lines,
    wire,
)
from scenarios.importers import (
    number as parse_number,
)
from scenarios.importers.cicv5g import band, utm_to_latlon
from scenarios.importers.gnettrack import (
    HEADING_MIN_M,
    spread_same_second,
    track_bearing,
    zone,
)
from telemetry.topics import Route
from telemetry.wire import VehicleState

#: Where the shipped mappings are (data files, not a package).
MAPPINGS: Final = Path(__file__).resolve().parent / "mappings"
#: What a RAT value may map to: a generation, or "none" for a tool's own "no service" (a
#: fact the hub judges as down, unlike an unknown mode, which skips the row).
RATS: Final = ("nr", "lte", "umts", "gsm", "none")
_MAX_EPOCH_S: Final = 4_102_444_800.0
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_REQUIRED = re.compile(r"missing required field `([^`]*)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`$")

Delimiter = Literal[",", "\t", ";", "whitespace", "auto"]
SpeedUnit = Literal["m/s", "km/h"]
HeadingUnit = Literal["deg", "rad", "rad_ccw_east"]
RttUnit = Literal["ms", "s"]
RateUnit = Literal["bps", "kbps", "Mbps"]
Quantity = Literal["loss", "capacity"]
Columns = str | list[str]


class MappingError(ValueError):
    """A mapping that cannot be used; the message starts with ``file: key:``."""

    def __init__(self, path: Path | str, key: str | None, what: str) -> None:
        self.path = Path(path)
        self.key = key
        super().__init__(f"{path}: {key}: {what}" if key else f"{path}: {what}")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Mapping tables: an unknown key is a typo, never silently ignored."""


class FileSpec(_Section, kw_only=True):
    delimiter: Delimiter = "auto"
    header_line: int = 1
    missing: list[str] = msgspec.field(default_factory=lambda: ["-", ""])
    optional: list[str] = msgspec.field(default_factory=list)


class TimeSpec(_Section, kw_only=True):
    column: str
    format: str
    timezone: str | None = None
    spread_same_second: bool = False
    sender_column: str | None = None
    sender_clock: bool = False


class PositionSpec(_Section, kw_only=True):
    lat: str | None = None
    lon: str | None = None
    easting: str | None = None
    northing: str | None = None
    utm_zone: int | None = None
    hemisphere: Literal["N", "S"] = "N"
    speed: str
    speed_unit: SpeedUnit = "m/s"
    heading: Columns = msgspec.field(default_factory=list)
    heading_unit: HeadingUnit = "deg"
    heading_from_track: bool = True


class LinkSpec(_Section, kw_only=True):
    name: str = "cell"
    from_band: dict[str, str] = msgspec.field(default_factory=dict)
    rat: str | None = None
    rat_column: str | None = None
    rat_values: dict[str, str] = msgspec.field(default_factory=dict)
    cell_id: Columns = msgspec.field(default_factory=list)
    cell_id_hex: bool = False
    rsrp: str | None = None
    rsrq: str | None = None
    sinr: str | None = None
    rtt: str | None = None
    rtt_unit: RttUnit = "ms"
    probe_columns: list[str] | None = None
    every_row_is_a_probe: bool = False
    ul: str | None = None
    dl: str | None = None
    rate_unit: RateUnit = "kbps"


class MappingFile(_Section, kw_only=True):
    """The TOML document as written (see the module docstring)."""

    time: TimeSpec
    position: PositionSpec
    link: LinkSpec = LinkSpec()
    file: FileSpec = FileSpec()
    name: str | None = None
    description: str | None = None
    citation: str | None = None
    licence: str | None = None
    note: str | None = None
    default_site: str | None = None
    not_measured: list[Quantity] = msgspec.field(default_factory=lambda: ["loss", "capacity"])
    hub_config: dict[str, Any] | None = None


#: The table at each path, to list its keys when one is unknown.
_TABLES: Final[dict[str, type[msgspec.Struct]]] = {
    "": MappingFile, "file": FileSpec, "time": TimeSpec, "position": PositionSpec,
    "link": LinkSpec}


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: the document plus what was derived from it once."""

    path: Path
    spec: MappingFile
    name: str
    rats: dict[str, str]  # upper-cased source value -> wire RAT
    band_links: dict[int, str]

    def groups(self) -> list[list[str]]:
        """The columns the mapping names, grouped: the header must hold one of each group
        (a single column, or any of a list such as ``cell_id``) unless all are optional."""
        t, p, k = self.spec.time, self.spec.position, self.spec.link
        single = [t.column, t.sender_column, p.lat, p.lon, p.easting, p.northing, p.speed,
                  k.rat_column, k.rsrp, k.rsrq, k.sinr, k.rtt, k.ul, k.dl]
        lists = [_listed(p.heading), _listed(k.cell_id),
                 *([c] for c in k.probe_columns or [])]
        return [[c] for c in single if c] + [g for g in lists if g]

    def columns(self) -> set[str]:
        return {c for group in self.groups() for c in group}


def _listed(columns: Columns) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def shipped() -> list[str]:
    """Names of the mappings that ship with l4mon (``--mapping NAME``)."""
    return sorted(p.stem for p in MAPPINGS.glob("*.toml"))


def load_mapping(spec: str | Path) -> Mapping:
    """The mapping at path ``spec`` (or the shipped one so named), checked whole."""
    path = Path(spec)
    if isinstance(spec, str) and spec in shipped():
        path = MAPPINGS / f"{spec}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(path, None, "no such mapping file (shipped mappings: "
                                       f"{', '.join(shipped())})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(path, None, f"cannot read the mapping: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(path, None, f"not valid TOML: {error}") from None
    try:
        doc = msgspec.convert(data, type=MappingFile)
    except msgspec.ValidationError as error:
        key, what = _where(str(error))
        raise MappingError(path, key, what) from None
    return _checked(path, doc)


def _where(text: str) -> tuple[str | None, str]:
    """(dotted key, what is wrong) from a msgspec validation message."""
    at = _AT.search(text)
    base = at.group(1) if at else ""
    what = _AT.sub("", text)
    match = _UNKNOWN.search(text)
    if match:
        table = _TABLES.get(base)
        known = f" (known here: {', '.join(table.__struct_fields__)})" if table else ""
        return ".".join(filter(None, (base, match.group(1)))), f"unknown key{known}"
    match = _REQUIRED.search(text)
    if match:
        return ".".join(filter(None, (base, match.group(1)))), "required key missing"
    return base or None, what


def _checked(path: Path, doc: MappingFile) -> Mapping:
    """What the types cannot say: choices that go together, names, RATs, zones, the config."""

    def fail(key: str, what: str) -> MappingError:
        return MappingError(path, key, what)

    t, p, k, f = doc.time, doc.position, doc.link, doc.file
    if not t.column.strip():
        raise fail("time.column", "empty column name")
    if t.format not in ("epoch_s", "epoch_ms", "iso8601") and "%" not in t.format:
        raise fail("time.format", f"{t.format!r} is neither a strptime pattern nor "
                                  "iso8601, epoch_s or epoch_ms")
    if t.timezone is not None:
        try:
            zone(t.timezone)
        except ValueError as error:
            raise fail("time.timezone", str(error)) from None
    elif "%" in t.format and "%z" not in t.format:
        raise fail("time.timezone", f"needed: the format {t.format!r} has no UTC offset (%z)")
    if t.sender_clock and t.sender_column is None:
        raise fail("time.sender_clock", "true needs time.sender_column (the sender's own stamp)")
    if not 1 <= f.header_line <= 1000:
        raise fail("file.header_line", "a line number from 1 to 1000")
    utm = (p.easting, p.northing, p.utm_zone)
    if (p.lat is None) != (p.lon is None) or (p.lat is None) == all(v is None for v in utm):
        raise fail("position", "give lat and lon, or easting, northing and utm_zone")
    if p.lat is None and None in utm:
        raise fail("position", "UTM positions need easting, northing and utm_zone")
    if p.utm_zone is not None and not 1 <= p.utm_zone <= 60:
        raise fail("position.utm_zone", f"{p.utm_zone} is not a UTM zone (1-60)")
    if not _listed(p.heading) and not p.heading_from_track:
        raise fail("position.heading", "needed unless position.heading_from_track is true")
    if not _NAME.match(k.name):
        raise fail("link.name", f"{k.name!r} is not a wire name (^[A-Za-z0-9_.:-]{{1,64}}$)")
    band_links: dict[int, str] = {}
    for key, link in k.from_band.items():
        if not key.isdigit() or not _NAME.match(link):
            raise fail(f"link.from_band.{key}", "a band number = a link (wire) name")
        band_links[int(key)] = link
    if (k.rat is None) == (k.rat_column is None):
        raise fail("link.rat", "give link.rat (one RAT) or link.rat_column (per row, with "
                               "rat_values): one of them, not both")
    if k.rat is not None and k.rat not in RATS:
        raise fail("link.rat", f"{k.rat!r} is not one of {', '.join(RATS)}")
    if k.rat_column is not None and not k.rat_values:
        raise fail("link.rat_values", "needed with link.rat_column (source value = RAT)")
    if k.rat_values and k.rat_column is None:
        raise fail("link.rat_values", "applies with link.rat_column only")
    rats: dict[str, str] = {}
    for value, rat in k.rat_values.items():
        if rat not in RATS:
            raise fail(f"link.rat_values.{value}", f"{rat!r} is not one of {', '.join(RATS)}")
        key = value.strip().upper()
        if rats.get(key, rat) != rat:
            raise fail(f"link.rat_values.{value}", f"{key!r} (case-insensitively) is mapped "
                                                   f"to both {rats[key]!r} and {rat!r}")
        rats[key] = rat
    if k.every_row_is_a_probe and k.probe_columns is not None:
        raise fail("link.every_row_is_a_probe", "or link.probe_columns, not both")
    if (k.every_row_is_a_probe or k.probe_columns) and k.rtt is None:
        raise fail("link.rtt", "needed: a probe rule is given but no rtt column")
    if doc.default_site is not None and not _NAME.match(doc.default_site):
        raise fail("default_site", f"{doc.default_site!r} is not a wire name")
    if doc.hub_config is not None:
        from l4mon.config import ConfigError, config_from_dict

        try:
            config_from_dict(doc.hub_config)
        except ConfigError as error:
            raise fail("hub_config", str(error)) from None
    name = doc.name or path.stem
    mapping = Mapping(path=path, spec=doc, name=name, rats=rats, band_links=band_links)
    used = mapping.columns()
    for column in f.optional:
        if column not in used:
            raise fail("file.optional", f"{column!r} is not a column this mapping names")
    return mapping


class Importer:
    """One mapping's importer, with the attributes and ``parse`` a format module has."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        spec = mapping.spec
        self.SOURCE: dict[str, Any] = {"kind": "mapped", "mapping": mapping.path.name,
                                       "name": mapping.name}
        for key in ("description", "citation", "licence", "note"):
            if getattr(spec, key) is not None:
                self.SOURCE[key] = getattr(spec, key)
        if spec.time.timezone is not None and "%z" not in spec.time.format and (
                not spec.time.format.startswith("epoch_")):
            self.SOURCE["timezone"] = spec.time.timezone
        self.NOT_MEASURED: tuple[str, ...] = tuple(spec.not_measured)
        self.DEFAULT_SITE: str = (spec.default_site
                                  or _NOT_NAME_CHARS.sub("_", mapping.name).strip("_")[:64]
                                  or "imported")
        self.HUB_CONFIG: dict[str, Any] | None = spec.hub_config

    # --- reading ---------------------------------------------------------------------------

    def _splitter(self, header: str) -> Callable[[str], list[str] | None]:
        """How the file separates its values (``auto``: told by its header line)."""
        delimiter = self.mapping.spec.file.delimiter
        if delimiter == "auto":
            delimiter = next((d for d in (",", "\t", ";") if d in header), "whitespace")
        if delimiter == "whitespace":
            return str.split

        def fields(line: str) -> list[str] | None:
            """One line's values (no multi-line fields); None if the CSV reader refuses it."""
            try:
                return [v.strip() for v in next(csv.reader([line], delimiter=delimiter), [])]
            except csv.Error:
                return None

        return fields

    def _stamp(self, text: str, tz: ZoneInfo | None) -> float | None:
        """Epoch seconds of a time value, or None when it is not one."""
        fmt = self.mapping.spec.time.format
        text = text.strip()
        try:
            if fmt in ("epoch_s", "epoch_ms"):
                value = float(text)
                if not math.isfinite(value):
                    return None
                return value / 1000.0 if fmt == "epoch_ms" else value
            when = (datetime.fromisoformat(text) if fmt == "iso8601"
                    else datetime.strptime(text, fmt))
        except ValueError:
            return None
        if when.tzinfo is None:
            if tz is None:
                return None
            when = when.replace(tzinfo=tz)
        return when.timestamp()

    def parse(self, path: Path, *, vehicle: str, site: str, timezone: str | None = None
              ) -> tuple[FileReport, list[Entry]]:
        """Read one export into (report, messages); raises DriveLogImportError if unusable."""
        m = self.mapping
        spec = m.spec
        t, p, k, fs = spec.time, spec.position, spec.link, spec.file
        kind = f"{m.name} export (mapping {m.path.name})"
        text = read_text(path, kind)
        lines = split_lines(text)
        at = fs.header_line - 1
        if at >= len(lines) or not lines[at].strip():
            raise DriveLogImportError(path, f"not a {kind}: no header on line {at + 1}",
                                      min(at + 1, len(lines)))
        split = self._splitter(lines[at])
        header = split(lines[at]) or []
        col: dict[str, int] = {}
        for i, name in enumerate(header):
            col.setdefault(name, i)
        optional = set(fs.optional)
        lacking = [" or ".join(g) for g in m.groups()
                   if not any(c in col for c in g) and not optional.issuperset(g)]
        if lacking:
            raise DriveLogImportError(
                path, f"not a {kind}: header lacks {', '.join(lacking)} "
                      f"(found {lines[at][:120]!r})", at + 1)
        width = len(header)
        missing = frozenset(fs.missing)

        def index(name: str | None) -> int | None:
            return None if name is None else col.get(name)

        def indices(names: Columns) -> list[tuple[str, int]]:
            return [(n, col[n]) for n in _listed(names) if n in col]

        tz_name = timezone if timezone is not None else t.timezone
        tz = zone(tz_name) if tz_name is not None else None
        i_time, i_sender = col[t.column], index(t.sender_column)
        data = [split(line) for line in lines[at + 1:] if line.strip()]
        if not data:
            raise DriveLogImportError(path, "no data rows after the header", at + 2)
        times = [self._stamp(f[i_time], tz) if f is not None and len(f) >= width else None
                 for f in data]
        if t.spread_same_second:
            times = spread_same_second(times)

        if k.from_band:
            number = band(path)
            link = m.band_links.get(number, k.name) if number is not None else k.name
        else:
            link = k.name
        report = FileReport(path=path, vehicle=vehicle, links=[link])
        if k.from_band and band(path) is None:
            bands = "/".join(f"n{number}" for number in m.band_links)
            report.notes[f"no band ({bands}) in the file name or its folders; "
                         f"link named {k.name}"] += 1
        state_route = Route("state", site, vehicle)
        link_route = Route("link", site, vehicle, link)
        entries: list[Entry] = []
        cells: list[str | None] = []
        anchor: tuple[float, float] | None = None
        heading = 0.0
        last_time: float | None = None

        def number(fields: list[str], name: str | None) -> float | None:
            """A column's value: None when missing (or unmapped); a non-number skips the row."""
            i = index(name)
            return None if i is None else parse_number(fields[i], str(name), missing)

        def first(fields: list[str], names: Columns) -> tuple[str, str] | None:
            """(column, value) of the first of ``names`` with a value in this row."""
            for name, i in indices(names):
                if fields[i].strip() not in missing:
                    return name, fields[i].strip()
            return None

        i_rat = index(k.rat_column)
        probe_columns = indices(k.probe_columns if k.probe_columns is not None
                                else ([k.rtt] if k.rtt and not k.every_row_is_a_probe else []))
        i_rtt = index(k.rtt)

        def rate(fields: list[str], name: str | None) -> float | None:
            """UL/DL in kbit/s (as written when the export says kbps)."""
            value = number(fields, name)
            if value is None or k.rate_unit == "kbps":
                return value
            return value / 1000.0 if k.rate_unit == "bps" else value * 1000.0

        def probe(fields: list[str]) -> tuple[float | None, bool]:
            """(rtt_ms, probe): whether a probe ran in this row, and its answer if any."""
            if k.every_row_is_a_probe:
                rtt = number(fields, k.rtt)
            elif not any(fields[i].strip() not in missing for _, i in probe_columns):
                return None, False  # no probe in this row: no evidence of anything
            else:
                text = fields[i_rtt].strip() if i_rtt is not None else ""
                try:
                    rtt = float(text)
                except ValueError:
                    return None, True  # the probe ran and gave no number: no answer
                if not math.isfinite(rtt):
                    return None, True
                # a number outside a round trip's range (0, -1) is a marker: the screen
                # makes it no probe
            if rtt is not None and k.rtt_unit == "s":
                rtt *= 1000.0
            return rtt, True

        for seq, (fields, recv) in enumerate(zip(data, times, strict=True)):
            try:
                if fields is None:
                    raise RowSkip("unparsable CSV line")
                if len(fields) < width:
                    raise RowSkip("too few fields")
                if recv is None:
                    raise RowSkip(f"bad {t.column}")
                if not 0.0 <= recv <= _MAX_EPOCH_S:
                    raise RowSkip(f"{t.column} out of range")
                ts = recv
                if i_sender is not None:
                    sent = self._stamp(fields[i_sender], tz)
                    if sent is None:
                        raise RowSkip(f"bad {t.sender_column}")
                    ts = sent
                if i_rat is None:
                    rat = k.rat
                else:
                    mode = fields[i_rat].strip()
                    if mode in missing:
                        raise RowSkip(f"no {k.rat_column}")
                    rat = m.rats.get(mode.upper())
                    if rat is None:
                        raise RowSkip(f"unknown {k.rat_column} {mode[:24]!r}")
                convergence = 0.0
                if p.lat is not None:
                    lat, lon = number(fields, p.lat), number(fields, p.lon)
                    if lat is None or lon is None:
                        raise RowSkip("no position")
                else:
                    x, y = number(fields, p.easting), number(fields, p.northing)
                    if x is None or y is None:
                        raise RowSkip("no position")
                    if not (0.0 <= x <= 1_000_000.0 and 0.0 <= y <= 10_000_000.0):
                        raise RowSkip(f"{p.easting}/{p.northing} outside a UTM zone")
                    lat, lon, convergence = utm_to_latlon(
                        x, y, p.utm_zone or 0, p.hemisphere == "N")
                speed = number(fields, p.speed)
                if speed is None:
                    raise RowSkip("no speed")
                cell: str | None = None
                found = first(fields, k.cell_id)
                if found is not None:
                    cell = found[1]
                    if k.cell_id_hex and not _HEX.match(cell):
                        raise RowSkip(f"{found[0]} not a hex string")
                rtt, probed = probe(fields)
                sample, screened = link_sample({
                    "ts": ts, "seq": seq, "rat": rat, "cell_id": cell,
                    "rsrp_dbm": number(fields, k.rsrp), "rsrq_db": number(fields, k.rsrq),
                    "sinr_db": number(fields, k.sinr), "rtt_ms": rtt, "probe": probed,
                    "sender_clock": t.sender_clock,
                    "ul_kbps": rate(fields, k.ul), "dl_kbps": rate(fields, k.dl)})
                course, new_anchor = heading, anchor
                given = first(fields, p.heading)
                if given is not None:
                    course = self._course(number(fields, given[0]), convergence)
                elif not p.heading_from_track:
                    raise RowSkip("no heading")
                elif anchor is None:
                    new_anchor = (lat, lon)
                else:
                    moved, direction = track_bearing(anchor[0], anchor[1], lat, lon)
                    if moved >= HEADING_MIN_M:
                        course, new_anchor = direction, (lat, lon)
                state = wire(VehicleState, {
                    "ts": ts, "seq": seq, "lat": lat, "lon": lon,
                    "speed_mps": speed / 3.6 if p.speed_unit == "km/h" else speed,
                    "heading_deg": course, "mode": "autonomous"})
            except RowSkip as skip:
                report.skipped[skip.reason] += 1
                continue
            heading, anchor = course, new_anchor
            report.kept_row(screened)
            if len(fields) > width:
                report.notes[f"rows with {len(fields)} values under a header of {width} names "
                              "(the named ones first; the rest ignored)"] += 1
            if last_time is not None and recv < last_time:
                report.notes[f"{t.column} went backwards"] += 1
            last_time = recv
            entries.append((recv, state_route, state))
            entries.append((recv, link_route, sample))
            cells.append(cell)
        finish(report, path, rows=len(data), cells=cells)
        return report, entries

    def _course(self, value: float | None, convergence: float) -> float:
        """A heading value as degrees clockwise from true north, in [0, 360)."""
        assert value is not None  # first() found a value that is not a missing token
        unit = self.mapping.spec.position.heading_unit
        if unit == "deg":
            return value % 360.0
        if unit == "rad":
            return math.degrees(value) % 360.0
        return (90.0 - math.degrees(value) + convergence) % 360.0


__all__ = ["Importer", "Mapping", "MappingError", "load_mapping", "shipped"]
