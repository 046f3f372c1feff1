"""What the map knows of one link in one cell under one condition, and how two add up.

Everything here is a count, a time or a sketch, so two drives' figures of the same cell add
up exactly and no figure depends on the order drives were merged in. Shares are derived
when read, never stored as the truth. Absence is not failure: a cell whose samples carried
no probe has RTT unknown (None), not 0, and a cell never judged has no share of time down.
"""

from __future__ import annotations

from typing import Final

from telemetry.linkmap.sketch import DB, LOG, Sketch
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE, UNKNOWN

#: Cell pairs kept per row for handover hot spots; further pairs are counted as ``OTHER``.
PAIRS_KEPT: Final = 16
OTHER: Final = "(other)"
#: Link states a tick is counted in (``unknown``: not judged yet, counted apart).
TIMED: Final = (OK, DEGRADED, DOWN, STALE, UNKNOWN)
COUNTS: Final = ("samples", "probes", "probe_timeouts", "drives", "passes", "passes_degraded",
                 "passes_down", "passes_impaired", "passes_ul_short", "passes_unfit",
                 "outage_starts",
                 "degradation_starts", "handovers", "ping_pongs", "failures", "too_frequent")
TIMES: Final = ("time_ok_s", "time_degraded_s", "time_down_s", "time_stale_s",
                "time_unknown_s", "time_ul_judged_s", "time_ul_short_s")
SKETCHES: Final = {"rtt": LOG, "rsrp": DB, "sinr": DB, "ul": LOG}
_TIME_OF: Final = {OK: "time_ok_s", DEGRADED: "time_degraded_s", DOWN: "time_down_s",
                   STALE: "time_stale_s", UNKNOWN: "time_unknown_s"}


class CellStats:
    """One (cell, link, condition) row of the map. ``drive_seen`` holds the drives of the
    build in progress (indices); ``drives`` those of earlier builds it was merged with."""

    __slots__ = ("drive_seen", "pairs", "rtt", "rsrp", "sinr", "ul", *COUNTS, *TIMES)

    def __init__(self) -> None:
        for name in COUNTS:
            setattr(self, name, 0)
        for name in TIMES:
            setattr(self, name, 0.0)
        self.rtt = Sketch(LOG)
        self.rsrp = Sketch(DB)
        self.sinr = Sketch(DB)
        self.ul = Sketch(LOG)
        self.pairs: dict[str, int] = {}
        self.drive_seen: set[int] = set()

    # -- accumulation -----------------------------------------------------------------------

    def add_time(self, state: str, seconds: float) -> None:
        name = _TIME_OF.get(state, "time_unknown_s")
        setattr(self, name, getattr(self, name) + seconds)

    def add_pair(self, from_cell: str | None, to_cell: str | None, count: int = 1) -> None:
        pair = f"{from_cell or '-'}>{to_cell or '-'}"
        if pair not in self.pairs and len(self.pairs) >= PAIRS_KEPT:
            pair = OTHER
        self.pairs[pair] = self.pairs.get(pair, 0) + count

    def merge(self, other: CellStats) -> None:
        """Add ``other``'s figures: the drives behind the two must be different ones."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in TIMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in SKETCHES:
            getattr(self, name).merge(getattr(other, name))
        self.drives += len(other.drive_seen)
        for pair, count in sorted(other.pairs.items(), key=lambda kv: -kv[1]):
            if pair == OTHER:
                self.pairs[OTHER] = self.pairs.get(OTHER, 0) + count
            else:
                self.add_pair(*pair.split(">", 1), count=count)

    # -- figures ----------------------------------------------------------------------------

    @property
    def drive_count(self) -> int:
        return self.drives + len(self.drive_seen)

    @property
    def time_judged_s(self) -> float:
        """Time the hub had a verdict on the link here (unknown excluded)."""
        return self.time_ok_s + self.time_degraded_s + self.time_down_s + self.time_stale_s

    def share_degraded(self) -> float | None:
        judged = self.time_judged_s
        return self.time_degraded_s / judged if judged > 0 else None

    def share_down(self) -> float | None:
        """Down or stale (the hub heard nothing): unusable, as the vehicle's connectivity
        and the intersections' ``time_down_s`` count it."""
        judged = self.time_judged_s
        return (self.time_down_s + self.time_stale_s) / judged if judged > 0 else None

    def pass_share(self, counter: str) -> float | None:
        """``passes_impaired`` etc. over the passes; None without a pass."""
        return getattr(self, counter) / self.passes if self.passes else None

    def share_ul_short(self) -> float | None:
        judged = self.time_ul_judged_s
        return self.time_ul_short_s / judged if judged > 0 else None

    def rtt_coverage(self) -> float | None:
        return self.probes / self.samples if self.samples else None
