"""Any drive-test tool's text export, read through a small TOML mapping of its columns.

Validators bring exports of many tools (Network Survey, QualiPoc, Nemo, MobileInsight, a
modem's logger...). Rather than an importer per tool, a mapping names the columns and their
units, so a new tool's export imports without code: ``l4mon import mapped --mapping my.toml
FILE...``. The format, with worked examples, is docs/mapping.md. Shipped mappings
(``--mapping gnettrack`` / ``cicv5g``, in ``mappings/``) read the two known formats to the very
same drive log as their dedicated importers (tests/test_mapped_importer.py proves it on the
real files).

The contract is the dedicated importers' (scenarios/importers/__init__.py): a bad row skipped
with its reason counted, a file that is not what the mapping says refused with its name and
line, a mapping checked whole before any file is read (scenarios/importers/mapped_spec.py).
The modules beside this one: ``mapped_spec`` (the document), ``mapped_columns`` (a row's
values), ``mapped_rows`` (rows into messages), ``mapped_checks`` (the track and the sanity
checks).
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scenarios.importers import (
    DriveLogImportError,
    Entry,
    FileReport,
    read_text,
    split_lines,
)
from scenarios.importers.cicv5g import band
from scenarios.importers.gnettrack import spread_same_second, zone
from scenarios.importers.mapped_checks import check_coordinates, check_epoch
from scenarios.importers.mapped_columns import RowValues
from scenarios.importers.mapped_rows import FileRows
from scenarios.importers.mapped_spec import (
    MAPPINGS,
    RATS,
    Mapping,
    MappingError,
    load_mapping,
    shipped,
)

_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")

#: One vehicle's share of a file: its report and messages.
Run = tuple[FileReport, list[Entry]]


class Importer:
    """One mapping's importer, with the attributes and ``parse`` a format module has."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        spec = mapping.spec
        self.SOURCE: dict[str, Any] = {"kind": "mapped", "mapping": mapping.path.name,
                                       "name": mapping.name}
        if mapping.version != 1:
            self.SOURCE["mapping_version"] = mapping.version
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

    @property
    def names_links(self) -> bool:
        """Whether the file itself says each row's link (``--link`` would contradict it)."""
        return self.mapping.spec.link.name_column is not None

    @property
    def names_vehicles(self) -> bool:
        """Whether the file itself says each row's vehicle (``--vehicle`` would contradict)."""
        return self.mapping.spec.vehicle_column is not None

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
              ) -> Run:
        """Read one export of one vehicle into (report, messages); raises
        DriveLogImportError if unusable."""
        runs = self.parse_runs(path, vehicle=vehicle, site=site, timezone=timezone)
        if len(runs) != 1:
            raise DriveLogImportError(path, f"holds {len(runs)} vehicles "
                                            f"({self.mapping.spec.vehicle_column}): "
                                            "import it with import_files")
        return runs[0]

    def parse_runs(self, path: Path, *, vehicle: str, site: str,
                   timezone: str | None = None) -> list[Run]:
        """Read one export into (report, messages) per vehicle in it (one, unless the
        mapping takes the vehicle from a column); raises DriveLogImportError if unusable."""
        m = self.mapping
        t, fs = m.spec.time, m.spec.file
        kind = f"{m.name} export (mapping {m.path.name})"
        lines = split_lines(read_text(path, kind))
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
        tz_name = timezone if timezone is not None else t.timezone
        tz = zone(tz_name) if tz_name is not None else None
        i_time = col[t.column]
        data = [split(line) for line in lines[at + 1:] if line.strip()]
        if not data:
            raise DriveLogImportError(path, "no data rows after the header", at + 2)
        times = [self._stamp(f[i_time], tz) if f is not None and len(f) >= width else None
                 for f in data]
        if t.spread_same_second:
            times = spread_same_second(times)
        check_epoch(path, t.column, t.format, [s for s in times if s is not None])
        rows = FileRows(m, path, RowValues(m, col, Counter()),
                        vehicle=vehicle, site=site, stamp=lambda text: self._stamp(text, tz))
        values = rows.values
        for fields, recv in zip(data, times, strict=True):
            rows.row(fields, width, recv)
        runs = rows.finish(len(data), times)
        first = runs[0][0]
        first.notes.update(values.notes)
        k = m.spec.link
        if k.from_band and band(path) is None:
            bands = "/".join(f"n{number}" for number in m.band_links)
            first.notes[f"no band ({bands}) in the file name or its folders; "
                        f"link named {k.name}"] += 1
        p = m.spec.position
        if p is not None and p.lat is not None and m.version >= 2:
            check_coordinates(path, p.lat, str(p.lon),
                              _raw_positions(values, data, width, p.lat, str(p.lon)), p.area)
        return runs


def _raw_positions(values: RowValues, data: list[list[str] | None], width: int, lat: str,
                   lon: str) -> list[tuple[float, float]]:
    """Every row's position as written, wire bounds or not: a swapped mapping's evidence."""
    out = []
    for fields in data:
        if fields is None or len(fields) < width:
            continue
        i, j = values.index.get(lat), values.index.get(lon)
        if i is None or j is None:
            continue
        try:
            a, b = float(fields[i]), float(fields[j])
        except ValueError:
            continue
        if math.isfinite(a) and math.isfinite(b):
            out.append((a, b))
    return out


__all__ = ["MAPPINGS", "RATS", "Importer", "Mapping", "MappingError", "load_mapping",
           "shipped"]
