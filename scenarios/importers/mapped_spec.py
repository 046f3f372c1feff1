"""The mapping document: its TOML tables as types, loaded and checked whole before any file is
read (docs/mapping.md is the reference).

A mistake in a mapping is found here, with the mapping file and the dotted key, and where a
key takes one of a few values the error lists them: a user writing a mapping from the docs
alone must be able to fix it from the message. Version 1 (no ``version`` key) is the format
the shipped mappings and every mapping written before version 2 use: it keeps working as it
did; the keys that came with version 2 need ``version = 2``.
"""

from __future__ import annotations

import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from scenarios.importers.gnettrack import zone

#: Where the shipped mappings are (data files, not a package).
MAPPINGS: Final = Path(__file__).resolve().parent / "mappings"
#: What a RAT value may map to: a generation, or "none" for a tool's own "no service" (a
#: fact the hub judges as down, unlike an unknown mode, which skips the row).
RATS: Final = ("nr", "lte", "umts", "gsm", "none")
NAME: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: ``{column}`` in a value composed of several columns (``"{EARFCN}:{PCI}"``).
PLACEHOLDER: Final = re.compile(r"\{([^{}]+)\}")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_REQUIRED = re.compile(r"missing required field `([^`]*)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_INDEX = re.compile(r"\[\d+\]")

Delimiter = Literal[",", "\t", ";", "whitespace", "auto"]
SpeedUnit = Literal["m/s", "km/h"]
HeadingUnit = Literal["deg", "rad", "rad_ccw_east"]
TimeUnit = Literal["ms", "s", "us"]
RateUnit = Literal["bps", "kbps", "Mbps"]
Quantity = Literal["loss", "capacity"]
Columns = str | list[str]
Values = str | list[str]


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


class RowsSpec(_Section, kw_only=True):
    """Which rows are measurements of the mapped links (v2): a long export writes a row per
    measured cell, and only its serving rows are the link."""

    keep: dict[str, Values] = msgspec.field(default_factory=dict)
    drop: dict[str, Values] = msgspec.field(default_factory=dict)


class ColumnSpec(_Section, kw_only=True):
    """One column's own "no value" markers and valid range (v2): a marker in one column is no
    marker in another (an RSRP of 0 is none, a speed of 0 is standing still)."""

    missing: list[str] = msgspec.field(default_factory=list)
    min: float | None = None
    max: float | None = None


class TimeSpec(_Section, kw_only=True):
    column: str
    format: str
    timezone: str | None = None
    spread_same_second: bool = False
    sender_column: str | None = None
    sender_clock: bool = False


class AreaSpec(_Section, kw_only=True):
    """Where the drive was (v2): positions far from it are a mapping mistake, not a drive."""

    lat: float
    lon: float
    radius_km: float = 100.0


class PositionSpec(_Section, kw_only=True):
    lat: str | None = None
    lon: str | None = None
    easting: str | None = None
    northing: str | None = None
    utm_zone: int | None = None
    hemisphere: Literal["N", "S"] = "N"
    speed: str | None = None
    speed_unit: SpeedUnit = "m/s"
    heading: Columns = msgspec.field(default_factory=list)
    heading_unit: HeadingUnit = "deg"
    heading_from_track: bool = True
    area: AreaSpec | None = None


class LinkSpec(_Section, kw_only=True):
    name: str = "cell"
    name_column: str | None = None
    names: dict[str, str] = msgspec.field(default_factory=dict)
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
    rtt_unit: TimeUnit = "ms"
    probe_columns: list[str] | None = None
    every_row_is_a_probe: bool = False
    delay: str | None = None
    delay_unit: TimeUnit = "ms"
    ul: str | None = None
    dl: str | None = None
    rate_unit: RateUnit = "kbps"


class MappingFile(_Section, kw_only=True):
    """The TOML document as written (docs/mapping.md)."""

    version: int = 1
    time: TimeSpec
    position: PositionSpec | None = None
    link: LinkSpec = LinkSpec()
    file: FileSpec = FileSpec()
    rows: RowsSpec | None = None
    columns: dict[str, ColumnSpec] = msgspec.field(default_factory=dict)
    vehicle_column: str | None = None
    name: str | None = None
    description: str | None = None
    citation: str | None = None
    licence: str | None = None
    note: str | None = None
    default_site: str | None = None
    not_measured: list[Quantity] = msgspec.field(default_factory=lambda: ["loss", "capacity"])
    hub_config: dict[str, Any] | None = None


#: The table at each path, to list its keys when one is unknown and its allowed values.
_TABLES: Final[dict[str, type[msgspec.Struct]]] = {
    "": MappingFile, "file": FileSpec, "time": TimeSpec, "position": PositionSpec,
    "position.area": AreaSpec, "link": LinkSpec, "rows": RowsSpec}
#: Keys that came with version 2, as (table, key): a version 1 mapping that uses one is told.
_V2_KEYS: Final = (("", "rows"), ("", "columns"), ("", "vehicle_column"),
                   ("position", "area"), ("link", "name_column"), ("link", "names"),
                   ("link", "delay"), ("link", "delay_unit"))


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: the document plus what was derived from it once."""

    path: Path
    spec: MappingFile
    name: str
    rats: dict[str, str]  # upper-cased source value -> wire RAT
    band_links: dict[int, str]

    @property
    def version(self) -> int:
        return self.spec.version

    def groups(self) -> list[list[str]]:
        """The columns the mapping names, grouped: the header must hold one of each group
        (a single column, or any of a list such as ``cell_id``) unless all are optional.
        A composed value (``"{EARFCN}:{PCI}"``) needs each of its columns."""
        t, p, k, s = self.spec.time, self.spec.position, self.spec.link, self.spec
        single: list[str | None] = [t.column, t.sender_column, k.rat_column, k.rsrp, k.rsrq,
                                    k.sinr, k.rtt, k.delay, k.ul, k.dl, k.name_column,
                                    s.vehicle_column]
        lists = [*([c] for c in k.probe_columns or [])]
        if p is not None:
            single += [p.lat, p.lon, p.easting, p.northing, p.speed]
            lists.append(listed(p.heading))
        cells = listed(k.cell_id)
        if len(cells) == 1 and composed(cells[0]):
            lists += [[c] for c in PLACEHOLDER.findall(cells[0])]
        else:
            lists.append(cells)
        if s.rows is not None:
            single += [*s.rows.keep, *s.rows.drop]
        return [[c] for c in single if c] + [g for g in lists if g]

    def columns(self) -> set[str]:
        return {c for group in self.groups() for c in group}


def listed(columns: Columns) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def composed(value: str) -> bool:
    """Whether a column reference is a template of several columns."""
    return PLACEHOLDER.search(value) is not None


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
                                       f"{', '.join(shipped())}; the format: "
                                       "docs/mapping.md)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(path, None, f"cannot read the mapping: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(path, None, f"not valid TOML: {error}") from None
    _check_version(path, data)
    try:
        doc = msgspec.convert(data, type=MappingFile)
    except msgspec.ValidationError as error:
        key, what = _where(str(error))
        raise MappingError(path, key, what) from None
    return _checked(path, doc)


def _check_version(path: Path, data: dict[str, Any]) -> None:
    """Version 2 keys in a version 1 mapping: said before anything else, with the fix."""
    version = data.get("version", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise MappingError(path, "version", f"{version!r} is not a mapping version "
                                            "(allowed: 1, 2)")
    if version == 2:
        return
    for table, key in _V2_KEYS:
        section = data.get(table, {}) if table else data
        if isinstance(section, dict) and key in section:
            dotted = f"{table}.{key}" if table else key
            raise MappingError(path, dotted, "needs version = 2 at the top of the mapping "
                                             "(docs/mapping.md, \"Versions\")")


def _allowed(dotted: str) -> tuple[str, ...]:
    """The values a Literal-typed key takes, for the error that names a wrong one."""
    table, _, key = _INDEX.sub("", dotted).rpartition(".")
    struct = _TABLES.get(table)
    if struct is None:
        return ()
    hint = typing.get_type_hints(struct).get(key)
    for candidate in (hint, *typing.get_args(hint)):
        inner = (typing.get_args(candidate)[0] if typing.get_origin(candidate) is list
                 else candidate)
        if typing.get_origin(inner) is Literal:
            return tuple(str(v) for v in typing.get_args(inner))
    return ()


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
    allowed = _allowed(base) if base else ()
    if allowed:
        what = f"{what} (allowed: {', '.join(allowed)})"
    return base or None, what


def _checked(path: Path, doc: MappingFile) -> Mapping:
    """What the types cannot say: choices that go together, names, RATs, zones, the config."""

    def fail(key: str, what: str) -> MappingError:
        return MappingError(path, key, what)

    _check_time(doc, fail)
    if not 1 <= doc.file.header_line <= 1000:
        raise fail("file.header_line", "a line number from 1 to 1000")
    if doc.position is None:
        if doc.version == 1:
            raise fail("position", "required key missing (optional from version = 2)")
    else:
        _check_position(doc, doc.position, fail)
    rats, band_links = _check_link(doc, fail)
    _check_extras(doc, fail)
    name = doc.name or path.stem
    mapping = Mapping(path=path, spec=doc, name=name, rats=rats, band_links=band_links)
    _check_columns_named(mapping, fail)
    return mapping


#: Makes the error of one key of the mapping file.
Fail = Callable[[str, str], MappingError]


def _check_time(doc: MappingFile, fail: Fail) -> None:
    t = doc.time
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


def _check_link(doc: MappingFile, fail: Fail) -> tuple[dict[str, str], dict[int, str]]:
    """The link table's choices; returns its RATs and its links by band."""
    t, k = doc.time, doc.link
    if k.rtt_unit == "us" and doc.version == 1:
        raise fail("link.rtt_unit", "\"us\" needs version = 2 (allowed in version 1: ms, s)")
    if not NAME.match(k.name):
        raise fail("link.name", f"{k.name!r} is not a wire name (^[A-Za-z0-9_.:-]{{1,64}}$)")
    for value, link in k.names.items():
        if not NAME.match(link):
            raise fail(f"link.names.{value}", f"{link!r} is not a wire name")
    if k.names and k.name_column is None:
        raise fail("link.names", "applies with link.name_column only")
    if k.name_column is not None and k.from_band:
        raise fail("link.from_band", "or link.name_column, not both")
    band_links: dict[int, str] = {}
    for key, link in k.from_band.items():
        if not key.isdigit() or not NAME.match(link):
            raise fail(f"link.from_band.{key}", "a band number = a link (wire) name")
        band_links[int(key)] = link
    rats = _check_rats(k, fail)
    if k.every_row_is_a_probe and k.probe_columns is not None:
        raise fail("link.every_row_is_a_probe", "or link.probe_columns, not both")
    if (k.every_row_is_a_probe or k.probe_columns) and k.rtt is None:
        raise fail("link.rtt", "needed: a probe rule is given but no rtt column")
    if k.delay is not None and t.sender_column is not None:
        raise fail("link.delay", "or time.sender_column (the delay is receive - send): "
                                 "not both")
    cells = listed(k.cell_id)
    if any(composed(c) for c in cells) and len(cells) != 1:
        raise fail("link.cell_id", "a composed value (\"{EARFCN}:{PCI}\") stands alone, "
                                   "not in a list of alternatives")
    if doc.version == 1 and any(composed(c) for c in cells):
        raise fail("link.cell_id", "a composed value needs version = 2")
    return rats, band_links


def _check_extras(doc: MappingFile, fail: Fail) -> None:
    """Column ranges, row filters, the default site and the hub configuration."""
    for column, spec in doc.columns.items():
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise fail(f"columns.{column}", f"min {spec.min:g} is above max {spec.max:g}")
    if doc.rows is not None and not (doc.rows.keep or doc.rows.drop):
        raise fail("rows", "give rows.keep and/or rows.drop (column = value or [values])")
    if doc.default_site is not None and not NAME.match(doc.default_site):
        raise fail("default_site", f"{doc.default_site!r} is not a wire name")
    if doc.hub_config is not None:
        from l4mon.config import ConfigError, config_from_dict

        try:
            config_from_dict(doc.hub_config)
        except ConfigError as error:
            raise fail("hub_config", str(error)) from None


def _check_columns_named(mapping: Mapping, fail: Fail) -> None:
    """Every column the file lists as optional or bounds is one the mapping reads."""
    doc = mapping.spec
    used = mapping.columns()
    for column in doc.file.optional:
        if column not in used:
            raise fail("file.optional", f"{column!r} is not a column this mapping names")
    for column in doc.columns:
        if column not in used:
            raise fail(f"columns.{column}", "not a column this mapping names (known: "
                                            f"{', '.join(sorted(used))})")


def _check_position(doc: MappingFile, p: PositionSpec, fail: Any) -> None:
    utm = (p.easting, p.northing, p.utm_zone)
    if (p.lat is None) != (p.lon is None) or (p.lat is None) == all(v is None for v in utm):
        raise fail("position", "give lat and lon, or easting, northing and utm_zone")
    if p.lat is None and None in utm:
        raise fail("position", "UTM positions need easting, northing and utm_zone")
    if p.lat is not None and p.lat == p.lon:
        raise fail("position.lon", f"the same column as position.lat ({p.lat!r})")
    if p.utm_zone is not None and not 1 <= p.utm_zone <= 60:
        raise fail("position.utm_zone", f"{p.utm_zone} is not a UTM zone (1-60)")
    if p.speed is None and doc.version == 1:
        raise fail("position.speed", "required key missing (from version = 2 it may be left "
                                     "out: the speed is then derived from the track)")
    if not listed(p.heading) and not p.heading_from_track:
        raise fail("position.heading", "needed unless position.heading_from_track is true")
    area = p.area
    if area is not None and not (-90 <= area.lat <= 90 and -180 <= area.lon <= 180
                                 and area.radius_km > 0):
        raise fail("position.area", "lat in -90..90, lon in -180..180, radius_km > 0")


def _check_rats(k: LinkSpec, fail: Any) -> dict[str, str]:
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
    return rats
