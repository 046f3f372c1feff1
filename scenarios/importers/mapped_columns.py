"""One row's values, read as the mapping says: by column name, each column with its own
markers and range, composed values, and the row filter.

A version 1 mapping reads as it always did (a value that is not a number skips the row); from
version 2 a bad value costs its field only: it is not measured, counted per column in the
file's notes, and the row stands with its other fields (a modem's -125 marker beside a valid
uplink figure).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection

from scenarios.importers import RowSkip
from scenarios.importers import number as strict_number
from scenarios.importers.mapped_spec import PLACEHOLDER, Columns, Mapping, Values, listed

#: Why version 2 set a column's value aside, as the manifest's ``fields_not_measured`` says it
#: (telemetry/ranges.py ``describe``): a field that was only ever a marker is then said to be
#: not measured, with its count, rather than silently empty.
MARKER = "mapping_marker"
BELOW = "below_mapping_range"
ABOVE = "above_mapping_range"
NOT_A_NUMBER = "not_a_number"


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Markers:
    """A column's "no value" markers: equal as written, or as numbers (``-125`` and
    ``-125.0`` are one marker)."""

    def __init__(self, markers: Collection[str]) -> None:
        self.texts = frozenset(m.strip() for m in markers) | frozenset(markers)
        self.numbers = frozenset(n for n in map(_as_number, markers) if n is not None)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        text = text.strip()
        if text in self.texts:
            return True
        value = _as_number(text) if self.numbers else None
        return value is not None and value in self.numbers


class RowValues:
    """Reads the mapped columns out of split rows; counts what version 2 sets aside."""

    def __init__(self, mapping: Mapping, index: dict[str, int], notes: Counter[str]) -> None:
        self.mapping = mapping
        self.index = index
        self.notes = notes
        self.lenient = mapping.version >= 2
        spec = mapping.spec
        file_wide = list(spec.file.missing)
        self.missing = {name: Markers(file_wide + list(spec.columns[name].missing)
                                      if name in spec.columns else file_wide)
                        for name in mapping.columns()}
        self.file_missing = Markers(file_wide)
        self.ranges = {name: (c.min, c.max) for name, c in spec.columns.items()}
        #: column -> why its value in the current row was set aside (``begin_row`` clears it)
        self.set_aside: dict[str, str] = {}
        rows = spec.rows
        self.keep = {c: _values(v) for c, v in rows.keep.items()} if rows else {}
        self.drop = {c: _values(v) for c, v in rows.drop.items()} if rows else {}

    def begin_row(self) -> None:
        self.set_aside.clear()

    def markers(self, name: str) -> Markers:
        return self.missing.get(name, self.file_missing)

    def raw(self, fields: list[str], name: str | None) -> str | None:
        """The column's text, or None when unmapped, absent from the header, or a marker."""
        i = None if name is None else self.index.get(name)
        if i is None:
            return None
        text = fields[i].strip()
        return None if text in self.markers(str(name)) else text

    def number(self, fields: list[str], name: str | None) -> float | None:
        """The column's value: None when missing (or unmapped). A value that is not a number
        skips the row (version 1) or is not measured (version 2), as is one outside the
        column's range."""
        i = None if name is None else self.index.get(name)
        if i is None or name is None:
            return None
        markers = self.markers(name)
        if not self.lenient:
            return strict_number(fields[i], name, markers)
        text = fields[i].strip()
        if text in markers:
            # the file-wide markers are plain absence; a column's own is a "no value" figure
            if text not in self.file_missing:
                self.set_aside[name] = MARKER
            return None
        value = _as_number(text)
        if value is None:
            self.notes[f"{name}: values that are not numbers, not measured"] += 1
            self.set_aside[name] = NOT_A_NUMBER
            return None
        low, high = self.ranges.get(name, (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            self.notes[f"{name}: values outside the mapping's range "
                       f"{_bound(low)} … {_bound(high)}, not measured"] += 1
            self.set_aside[name] = BELOW if low is not None and value < low else ABOVE
            return None
        return value

    def first(self, fields: list[str], names: Columns) -> tuple[str, str] | None:
        """(column, value) of the first of ``names`` with a value in this row."""
        for name in listed(names):
            value = self.raw(fields, name)
            if value is not None:
                return name, value
        return None

    def composed(self, fields: list[str], template: str) -> str | None:
        """``"{EARFCN}:{PCI}"`` filled from the row; None when any part is not measured (half
        an identity would merge different cells). Whole numbers written as floats
        (``1300.0``) are written as integers, so one cell has one name."""
        parts: dict[str, str] = {}
        for name in PLACEHOLDER.findall(template):
            value = self.raw(fields, name)
            if value is None:
                return None
            number = _as_number(value)
            parts[name] = (str(int(number)) if number is not None and number.is_integer()
                           and "." in value else value)
        return PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)

    def cell(self, fields: list[str], cell_id: Columns) -> tuple[str, str] | None:
        """(where from, cell id) of this row, or None when it names no cell."""
        names = listed(cell_id)
        if len(names) == 1 and PLACEHOLDER.search(names[0]):
            value = self.composed(fields, names[0])
            return None if value is None else (names[0], value)
        return self.first(fields, names)

    def wanted(self, fields: list[str]) -> bool:
        """Whether the row filter keeps this row (every keep condition holds, no drop one)."""
        for name, values in self.keep.items():
            if fields[self.index[name]].strip().casefold() not in values:
                return False
        return not any(fields[self.index[name]].strip().casefold() in values
                       for name, values in self.drop.items())

    def require(self, fields: list[str], name: str, what: str) -> str:
        value = self.raw(fields, name)
        if value is None:
            raise RowSkip(f"no {what} ({name})")
        return value


def _values(values: Values) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in listed(values))


def _bound(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"
