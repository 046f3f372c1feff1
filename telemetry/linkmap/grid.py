"""The map's grid: square cells of ``cell_m`` metres on a local metric projection.

Why a grid and not road stretches: drive logs carry positions, not a road network (real
imported traces have no site plan at all), and a grid needs none; on a road, a 25 m cell is
a 25 m stretch. 25 m by default: about 3 s at 30 km/h, 1 s at 90 km/h, so a cell is crossed
in a few link judgements (one a second) and holds a few dozen 10 Hz samples per pass, while
GPS error (a few metres) rarely puts a sample in the wrong cell.

The projection is azimuthal equidistant on WGS84 around an origin
(``telemetry.geodesy.LocalFrame``): within the ~10 km a map covers a cell is its size on the
ground to a fraction of a millimetre (the sphere of map format v1-v2 was tens of metres off
at 10 km, so those maps are refused: telemetry/linkmap/store.py). The origin is the site's when the
first log has a site plan, else the first position rounded to 0.01° (so two maps built
separately from drives of the same area share it); it is stored with the map, and every
drive merged later is placed on the same grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from telemetry.site import LocalFrame

#: (column, row) of a cell: floor(x / cell_m), floor(y / cell_m), x east and y north.
CellIndex = tuple[int, int]
DEFAULT_CELL_M: Final = 25.0
MIN_CELL_M: Final = 5.0
MAX_CELL_M: Final = 1_000.0


@dataclass(frozen=True)
class Grid:
    origin_lat: float
    origin_lon: float
    cell_m: float = DEFAULT_CELL_M
    frame: LocalFrame = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MIN_CELL_M <= self.cell_m <= MAX_CELL_M:
            raise ValueError(f"cell size must be {MIN_CELL_M:g}..{MAX_CELL_M:g} m, "
                             f"got {self.cell_m:g}")
        object.__setattr__(self, "frame", LocalFrame.at(self.origin_lat, self.origin_lon))

    @classmethod
    def around(cls, lat: float, lon: float, cell_m: float = DEFAULT_CELL_M) -> Grid:
        """A grid whose origin is the position rounded to 0.01° (about 1 km)."""
        return cls(round(lat, 2), round(lon, 2), cell_m)

    def cell(self, lat: float, lon: float) -> CellIndex:
        x, y = self.frame.to_xy(lat, lon)
        return math.floor(x / self.cell_m), math.floor(y / self.cell_m)

    def centre(self, cell: CellIndex) -> tuple[float, float]:
        """(lat, lon) of the cell's centre."""
        return self.frame.to_latlon((cell[0] + 0.5) * self.cell_m, (cell[1] + 0.5) * self.cell_m)

    def ahead(self, lat: float, lon: float, heading_deg: float | None,
              distance_m: float) -> list[tuple[float, CellIndex]]:
        """The cells along the heading from the position out to ``distance_m``, nearest
        first, each with the distance at which the line enters it (0 for the cell the
        position is in). Without a heading, only that cell."""
        here = self.cell(lat, lon)
        out = [(0.0, here)]
        if heading_deg is None or distance_m <= 0:
            return out
        x0, y0 = self.frame.to_xy(lat, lon)
        rad = math.radians(heading_deg)  # a compass bearing: clockwise from north
        dx, dy = math.sin(rad), math.cos(rad)
        step = self.cell_m / 4.0  # fine enough not to skip a cell the line clips
        seen = {here}
        d = step
        while d <= distance_m + 1e-9:
            c = (math.floor((x0 + dx * d) / self.cell_m), math.floor((y0 + dy * d) / self.cell_m))
            if c not in seen:
                seen.add(c)
                out.append((d, c))
            d += step
        return out
