"""What a mapped file's figures say about the mapping: speed derived from the track, and the
sanity checks that catch a mapping that reads the file wrongly.

A mapping that swaps latitude and longitude, reads seconds as milliseconds or RTTs in the
wrong unit still gives numbers, and a report graded on them says nothing true. Such a mistake
shows in the file as a whole, so it is looked for there, once, after the rows are read: what
is certainly wrong refuses the file with the fix; what is only unlikely is a warning in the
import's report.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Final

from scenarios.importers import DriveLogImportError
from scenarios.importers.gnettrack import track_bearing
from scenarios.importers.mapped_spec import AreaSpec

#: Positions this far apart in time give a speed: GPS noise over shorter spans reads as motion.
TRACK_SPEED_MIN_S: Final = 1.0
#: 2000-01-01 UTC: no drive-test export is older, so earlier stamps are a unit or clock error.
EPOCH_2000: Final = 946_684_800.0
#: Epoch seconds of 2100: larger "seconds" are milliseconds.
EPOCH_2100: Final = 4_102_444_800.0
#: A cellular round trip or one-way delay below this is no measurement in milliseconds.
DELAY_MS_FLOOR: Final = 0.5
#: Medians beyond this are thousands of times too large (milliseconds read as seconds).
DELAY_MS_CEILING: Final = 20_000.0


def track_speeds(times: Sequence[float], points: Sequence[tuple[float, float]]
                 ) -> list[float | None]:
    """Speed (m/s) at each point of one vehicle's track, time-ordered: distance over time
    from the latest point at least ``TRACK_SPEED_MIN_S`` earlier; the points before any such
    one take the speed towards the first that is far enough ahead. None where the track spans
    less than that."""
    out: list[float | None] = [None] * len(times)
    back = 0
    for i, (t, here) in enumerate(zip(times, points, strict=True)):
        while back + 1 < i and t - times[back + 1] >= TRACK_SPEED_MIN_S:
            back += 1
        if back < i and t - times[back] >= TRACK_SPEED_MIN_S:
            out[i] = _speed(times[back], points[back], t, here)
    first = next((i for i, s in enumerate(out) if s is not None), None)
    if first is not None:
        for i in range(first):
            ahead = next((j for j in range(i + 1, len(times))
                          if times[j] - times[i] >= TRACK_SPEED_MIN_S), None)
            if ahead is not None:
                out[i] = _speed(times[i], points[i], times[ahead], points[ahead])
    return out


def _speed(t1: float, p1: tuple[float, float], t2: float, p2: tuple[float, float]) -> float:
    distance, _ = track_bearing(p1[0], p1[1], p2[0], p2[1])
    return distance / (t2 - t1)


def check_coordinates(path: Path, lat_column: str, lon_column: str,
                      points: Sequence[tuple[float, float]], area: AreaSpec | None) -> None:
    """Refuse latitude and longitude that are swapped or far from the mapping's area."""
    if not points:
        return
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    beyond = sum(1 for v in lats if abs(v) > 90.0)
    if beyond * 2 > len(points) and all(abs(v) <= 90.0 for v in lons):
        raise DriveLogImportError(
            path, f"{beyond} of {len(points)} values of {lat_column!r} (position.lat) lie "
                  f"beyond ±90° while {lon_column!r} (position.lon) stays within: are lat and "
                  "lon swapped in the mapping?")
    if area is None:
        return
    lat, lon = statistics.median(lats), statistics.median(lons)
    far_m, _ = track_bearing(area.lat, area.lon, lat, lon) if abs(lat) <= 90 else (1e9, 0)
    if far_m <= area.radius_km * 1000.0:
        return
    swapped_m, _ = (track_bearing(area.lat, area.lon, lon, lat) if abs(lon) <= 90
                    else (1e9, 0.0))
    if swapped_m <= area.radius_km * 1000.0:
        raise DriveLogImportError(
            path, f"the track's middle ({lat:.4f}, {lon:.4f}) is {far_m / 1000:.0f} km from "
                  f"position.area, but would lie within it with {lat_column!r} and "
                  f"{lon_column!r} swapped: are lat and lon swapped in the mapping?")
    raise DriveLogImportError(
        path, f"the track's middle ({lat:.4f}, {lon:.4f}) is {far_m / 1000:.0f} km from "
              f"position.area ({area.lat:g}, {area.lon:g}, radius {area.radius_km:g} km): "
              "a wrong column, unit or area?")


def check_epoch(path: Path, column: str, fmt: str, stamps: Sequence[float]) -> None:
    """Refuse epoch stamps read in the wrong unit (a thousand times off)."""
    if not stamps or fmt not in ("epoch_s", "epoch_ms"):
        return
    middle = statistics.median(stamps)
    if fmt == "epoch_ms" and middle < EPOCH_2000 <= middle * 1000.0 <= EPOCH_2100:
        raise DriveLogImportError(
            path, f"{column!r} read as epoch_ms falls in {_year(middle)}; the values look like "
                  "epoch seconds: time.format = \"epoch_s\"?")
    if fmt == "epoch_s" and middle > EPOCH_2100 and EPOCH_2000 <= middle / 1000.0 <= EPOCH_2100:
        raise DriveLogImportError(
            path, f"{column!r} read as epoch_s lies past 2100; the values look like epoch "
                  "milliseconds: time.format = \"epoch_ms\"?")


def _year(epoch_s: float) -> int:
    return 1970 + int(epoch_s // 31_556_952)


def check_backwards(column: str, times: Sequence[float | None], notes: Counter[str]) -> None:
    """Warn when the time column goes backwards (rows are imported in time order anyway)."""
    steps = [b - a for a, b in pairwise(times)
             if a is not None and b is not None]
    back = [-s for s in steps if s < 0]
    if not back:
        return
    what = f"{column} went backwards, by up to {max(back):.3f} s"
    if len(back) * 2 > len(steps):
        what += " (most rows: newest first?)"
    notes[what] = len(back)


def check_delays(label: str, key: str, values_ms: Sequence[float], notes: Counter[str]
                 ) -> None:
    """Warn when the median delay looks a thousand times off (a wrong unit)."""
    if not values_ms:
        return
    middle = statistics.median(values_ms)
    if middle < DELAY_MS_FLOOR:
        notes[f"{label} median {middle:.3g} ms: no cellular delay is that short; a unit "
              f"1,000 times too small ({key} = \"s\" rather than \"ms\"?)"] = len(values_ms)
    elif middle > DELAY_MS_CEILING:
        notes[f"{label} median {middle:.0f} ms: a unit 1,000 times too large ({key} = \"ms\" "
              "rather than \"s\"?)"] = len(values_ms)
