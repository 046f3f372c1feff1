"""Looking ahead of a moving vehicle on the map: is a weak stretch coming for this link?

A stretch is weak for a link when, over at least ``min_passes`` past passes of that link
through the cell, the share of passes in which it was impaired (``passes_impaired``:
degraded or down at some moment of the pass; or ``passes_down`` / ``passes_ul_short``, per
``measure``) reaches ``threshold``. What is ahead is the line along the vehicle's heading
out to ``speed × horizon_s`` metres, the cell it is in included: a road bends, but within
the few hundred metres of a short horizon a straight line stays within a cell or two of it.

The map's rows for the vehicle's own condition are used when they have enough passes;
otherwise every condition's pooled (the map knows the place, if not in this weather).
This is the rule the evaluation bench (bench/linkmap_eval.py) measures, and the one a live
warning builds on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import CellIndex
from telemetry.linkmap.model import LinkMap

Measure = Literal["passes_impaired", "passes_down", "passes_ul_short"]
#: Slower than this the vehicle counts as standing: only the cell it is in is ahead.
STANDING_MPS: Final = 0.5


@dataclass(frozen=True)
class WeakSpot:
    distance_m: float
    cell: CellIndex
    share: float
    passes: int


@dataclass(frozen=True)
class WeakAhead:
    linkmap: LinkMap
    horizon_s: float = 20.0
    threshold: float = 0.5
    min_passes: int = 2
    measure: Measure = "passes_impaired"

    def stats(self, cell: CellIndex, link: str, weather: str, light: str) -> CellStats | None:
        own = self.linkmap.get(cell, link, weather, light)
        if own is not None and own.passes >= self.min_passes:
            return own
        return self.linkmap.pooled(cell, link)

    def check(self, *, lat: float, lon: float, heading_deg: float | None,
              speed_mps: float | None, link: str, weather: str = "unknown",
              light: str = "unknown") -> WeakSpot | None:
        """The nearest weak cell ahead within the horizon, or None."""
        moving = speed_mps is not None and speed_mps >= STANDING_MPS
        reach = speed_mps * self.horizon_s if moving and speed_mps is not None else 0.0
        for distance, cell in self.linkmap.grid.ahead(lat, lon, heading_deg if moving else None,
                                                      reach):
            stats = self.stats(cell, link, weather, light)
            if stats is None or stats.passes < self.min_passes:
                continue
            share = getattr(stats, self.measure) / stats.passes
            if share >= self.threshold:
                return WeakSpot(distance, cell, share, stats.passes)
        return None
