"""A stream's own pace: silence is judged against how often the stream usually reports.

One rule for link staleness (telemetry/link.py) and handover outages (handover/detect.py): a
gap is a gap only if it also lasts more than ``OUTAGE_INTERVALS`` of the stream's usual
interval, i.e. at least three samples in a row are missing. At 10 Hz that is 0.3 s, and the
configured 1 s decides; a drive-test logger writing once a second, which skips a row every
13-16 s, is not silent for each row it skipped, but is after 3 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Final

#: An outage or staleness must pass this many of the stream's usual sample intervals.
OUTAGE_INTERVALS: Final = 3
#: Intervals the usual interval is the median of.
SPACING_N: Final = 20


def usual_interval(times: Sequence[float]) -> float | None:
    """The median of the last ``SPACING_N`` intervals between ``times`` (ascending); None
    with fewer than two times."""
    n = len(times)
    if n < 2:
        return None
    recent = times[max(0, n - SPACING_N - 1):]
    steps = sorted([b - a for a, b in pairwise(recent)])
    half = len(steps) // 2
    return steps[half] if len(steps) % 2 else (steps[half - 1] + steps[half]) / 2


def silence_limit(floor_s: float, interval_s: float | None) -> float:
    """How long a stream may be silent before it counts: the configured ``floor_s``, or
    OUTAGE_INTERVALS of its usual interval when that is longer."""
    if interval_s is None:
        return floor_s
    return max(floor_s, OUTAGE_INTERVALS * interval_s)
