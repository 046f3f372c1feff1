"""Looking ahead of a moving vehicle on the map: is a weak stretch coming for this link?

A stretch is weak for a link when, over at least ``min_passes`` past passes of that link
through the cell, the share of passes in which it failed the ``measure`` reaches
``threshold``. The measures (``MEASURES``) are pass counters of the map:

* ``impaired`` (the live warning's default): degraded (RTT, loss or signal past the
  ``[links] degraded`` limits), down or stale, or short of uplink as ``unfit`` says, at some
  moment of the pass: whatever costs the operator the vehicle's picture (maps before v4 did
  not count the shortage here);
* ``unfit``: down or stale, or usable while the vehicle's usable links together carried
  less uplink than its requirement, at some moment of the pass (a link short alone but
  bonded with a good one is fit: the camera streams ride on both);
* ``down``, ``ul_short``: either part of ``unfit`` alone.

What is ahead is the line along the vehicle's heading out to ``speed × horizon_s`` metres,
the cell it is in included: a road bends, but within the few hundred metres of a short
horizon a straight line stays within a cell or two of it.

The map's rows for the vehicle's own condition are used when they have enough passes;
otherwise every condition's pooled (the map knows the place, if not in this weather), and
the spot says so (``pooled``). This is the rule the evaluation bench (bench/linkmap_eval.py)
measures, and the one the live and replay warning (rule ``weak_link_ahead``) rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import CellIndex
from telemetry.linkmap.model import LinkMap

MeasureName = Literal["unfit", "impaired", "down", "ul_short"]
#: Measure name → the map's pass counter it reads.
MEASURES: Final[dict[str, str]] = {"unfit": "passes_unfit", "impaired": "passes_impaired",
                                   "down": "passes_down", "ul_short": "passes_ul_short"}
DEFAULT_MEASURE: Final = "impaired"
DEFAULT_HORIZON_S: Final = 20.0
DEFAULT_THRESHOLD: Final = 0.5
DEFAULT_MIN_PASSES: Final = 2
#: Slower than this the vehicle counts as standing: only the cell it is in is ahead.
STANDING_MPS: Final = 0.5


@dataclass(frozen=True)
class WeakSpot:
    distance_m: float
    cell: CellIndex
    share: float
    passes: int
    stats: CellStats
    #: True when the vehicle's condition had too few passes here: every condition's pooled.
    pooled: bool = False


@dataclass(frozen=True)
class Outlook:
    """What the map says of the road ahead for one link: the nearest weak spot (or None),
    and whether any cell ahead had enough passes to say anything (``mapped``)."""

    spot: WeakSpot | None
    mapped: bool


#: Judged (cell, link, weather, light) kept by a WeakAhead: the map does not change while a
#: hub runs, and a fleet asks about the same few hundred cells all day.
JUDGED_KEPT: Final = 200_000
#: (figures or None, pooled, share failing or None below min_passes)
_Judged = tuple[CellStats | None, bool, float | None]


@dataclass(frozen=True)
class WeakAhead:
    linkmap: LinkMap
    horizon_s: float = DEFAULT_HORIZON_S
    threshold: float = DEFAULT_THRESHOLD
    min_passes: int = DEFAULT_MIN_PASSES
    #: A measure name (``MEASURES``) or the counter itself (``passes_impaired``).
    measure: str = "passes_impaired"
    _judged: dict[tuple[int, int, str, str, str], _Judged] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counter = MEASURES.get(self.measure, self.measure)
        if counter not in MEASURES.values():
            raise ValueError(f"unknown measure {self.measure!r} (known: "
                             f"{', '.join(MEASURES)})")
        object.__setattr__(self, "measure", counter)

    def stats(self, cell: CellIndex, link: str, weather: str,
              light: str) -> tuple[CellStats | None, bool]:
        """The figures to judge the cell by, and whether they are every condition's pooled."""
        own = self.linkmap.get(cell, link, weather, light)
        if own is not None and own.passes >= self.min_passes:
            return own, False
        return self.linkmap.pooled(cell, link), True

    def judge(self, cell: CellIndex, link: str, weather: str, light: str) -> _Judged:
        """The cell's figures, whether pooled, and its share of passes failing (None: too
        few passes to say), computed once per (cell, link, condition)."""
        key = (cell[0], cell[1], link, weather, light)
        judged = self._judged.get(key)
        if judged is None:
            stats, pooled = self.stats(cell, link, weather, light)
            share = None if stats is None or stats.passes < self.min_passes else \
                getattr(stats, self.measure) / stats.passes
            if len(self._judged) >= JUDGED_KEPT:
                self._judged.clear()
            judged = self._judged[key] = (stats, pooled, share)
        return judged

    def cells_ahead(self, lat: float, lon: float, heading_deg: float | None,
                    speed_mps: float | None) -> list[tuple[float, CellIndex]]:
        """The cells within the horizon along the heading, nearest first (only the cell the
        vehicle is in when it stands)."""
        moving = speed_mps is not None and speed_mps >= STANDING_MPS
        reach = speed_mps * self.horizon_s if moving and speed_mps is not None else 0.0
        return self.linkmap.grid.ahead(lat, lon, heading_deg if moving else None, reach)

    def outlook(self, cells: list[tuple[float, CellIndex]], link: str, weather: str,
                light: str) -> Outlook:
        """The nearest weak cell of ``cells`` for the link, and whether any was known."""
        mapped = False
        for distance, cell in cells:
            stats, pooled, share = self.judge(cell, link, weather, light)
            if share is None or stats is None:
                continue
            mapped = True
            if share >= self.threshold:
                return Outlook(WeakSpot(distance, cell, share, stats.passes, stats, pooled),
                               True)
        return Outlook(None, mapped)

    def look(self, *, lat: float, lon: float, heading_deg: float | None,
             speed_mps: float | None, link: str, weather: str = "unknown",
             light: str = "unknown") -> Outlook:
        """The nearest weak cell ahead within the horizon, and whether anything ahead is
        known at all."""
        return self.outlook(self.cells_ahead(lat, lon, heading_deg, speed_mps), link,
                            weather, light)

    def check(self, *, lat: float, lon: float, heading_deg: float | None,
              speed_mps: float | None, link: str, weather: str = "unknown",
              light: str = "unknown") -> WeakSpot | None:
        """The nearest weak cell ahead within the horizon, or None."""
        return self.look(lat=lat, lon=lon, heading_deg=heading_deg, speed_mps=speed_mps,
                         link=link, weather=weather, light=light).spot

    def risk(self, stats: CellStats) -> float | None:
        """The share of past passes failing the measure (None below ``min_passes``): what a
        map layer colours a stretch by."""
        if stats.passes < self.min_passes:
            return None
        return getattr(stats, self.measure) / stats.passes
