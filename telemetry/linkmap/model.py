"""A link map: per (cell, link, condition), what past drives saw, and which drives those were.

The drives it holds are named by id (``vehicle@first receive time``), so merging a drive
that is already in the map is refused by the builder instead of counted twice. Memory is
bounded by the rows (``max_rows``), each a fixed set of counters and sparse sketches
(``telemetry.linkmap.sketch``), never by the samples that went in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import msgspec

from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import CellIndex, Grid

SCHEMA_NAME: Final = "l4mon-link-map"
#: 2: passes_unfit. 3: cells on the WGS84 frame (``FRAME``); v1 and v2 placed them on a sphere.
#: 4: passes_impaired counts a pass short of uplink too (degraded, down or short).
SCHEMA_VERSION: Final = 4
#: The first version whose ``passes_impaired`` counts uplink shortage (the warning's default
#: measure since issue 25): an older map is read, but warned of.
IMPAIRED_SHORT_SINCE: Final = 4
#: The projection a map's cell indices are on (telemetry.geodesy.LocalFrame), named in its
#: manifest: a reader on another frame would put cells tens of metres (29-62 m at 10 km from
#: the origin, bench/geodesy_error.py) from where they were seen.
FRAME: Final = "wgs84-aeqd"
#: The first version on ``FRAME``: older maps are refused, never read onto the wrong ground.
FRAME_SINCE: Final = 3
#: Rows (cell, link, condition) a map may hold: ~25 km² of roads fully covered by one link
#: under four conditions at 25 m. A few KiB each: a few hundred MiB at worst.
MAX_ROWS: Final = 200_000

#: (cell column, cell row, link, weather, light)
Key = tuple[int, int, str, str, str]


class LinkMapError(ValueError):
    """A map that cannot be read, built or merged as asked."""


class Drive(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One vehicle's drive that went into the map."""

    id: str
    vehicle: str
    log: str
    source: str  # the log's source kind: recorder, cicv5g, gnettrack, generator, ...
    site: str
    weather: str
    light: str
    start: float
    end: float
    samples: int


def drive_id(vehicle: str, first_recv_time: float) -> str:
    """The id of a vehicle's drive: the same whichever log or import it comes from."""
    return f"{vehicle}@{first_recv_time:.3f}"


@dataclass
class LinkMap:
    grid: Grid
    rows: dict[Key, CellStats] = field(default_factory=dict)
    drives: dict[str, Drive] = field(default_factory=dict)
    max_rows: int = MAX_ROWS
    #: (cell column, cell row, link) -> its rows' keys, one per condition: a look-ahead asks
    #: for a place many times a second.
    _places: dict[tuple[int, int, str], list[Key]] = field(default_factory=dict, repr=False,
                                                           init=False)

    def row(self, cell: CellIndex, link: str, weather: str, light: str) -> CellStats:
        """The row, created empty on first use; raises once the map would pass ``max_rows``."""
        key = (cell[0], cell[1], link, weather, light)
        stats = self.rows.get(key)
        if stats is None:
            if len(self.rows) >= self.max_rows:
                raise LinkMapError(f"the map would pass {self.max_rows} rows (cell, link, "
                                   "condition): build it with larger cells (--cell-m) or "
                                   "from fewer drives")
            stats = self.rows[key] = CellStats()
            self._places.setdefault((key[0], key[1], link), []).append(key)
        return stats

    def get(self, cell: CellIndex, link: str, weather: str, light: str) -> CellStats | None:
        return self.rows.get((cell[0], cell[1], link, weather, light))

    def pooled(self, cell: CellIndex, link: str) -> CellStats | None:
        """The cell's figures for the link over every condition (None if never driven)."""
        found = [self.rows[key] for key in self._places.get((cell[0], cell[1], link), ())]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        total = CellStats()  # a drive has one condition: its passes are in one of them
        for stats in found:
            total.merge(stats)
        return total

    def conditions(self) -> list[tuple[str, str]]:
        return sorted({(w, li) for _, _, _, w, li in self.rows})

    def links(self) -> list[str]:
        return sorted({name for _, _, name, _, _ in self.rows})

    def items(self) -> Iterator[tuple[Key, CellStats]]:
        return iter(sorted(self.rows.items(), key=lambda kv: kv[0]))

    def merge(self, other: LinkMap) -> None:
        """Add ``other`` (built on the same grid from other drives) into this map."""
        if other.grid != self.grid:
            raise LinkMapError(f"grids differ: {other.grid} is not {self.grid}")
        twice = sorted(set(other.drives) & set(self.drives))
        if twice:
            raise LinkMapError(f"drives already in the map: {', '.join(twice[:5])}")
        for key, stats in other.rows.items():
            self.row((key[0], key[1]), key[2], key[3], key[4]).merge(stats)
        self.drives.update(other.drives)

