"""A stream's own pace: silence is judged against how often the stream usually reports.

One rule for link staleness (telemetry/link.py), vehicle telemetry freshness
(telemetry/vehicle.py) and handover outages (handover/detect.py): a gap is a gap only if it
also lasts more than ``OUTAGE_INTERVALS`` of the stream's usual interval, i.e. at least three
samples in a row are missing. At 10 Hz that is 0.3 s, and the configured 1 s decides; a
drive-test logger writing once a second, which skips a row every 13-16 s, is not silent for
each row it skipped, but is after 3 s.

A stream's pace is *learned* from its own receive times once it has shown ``LEARNED_AFTER``
intervals; a sender (or an importer that read the whole file) may also *declare* it
(``interval_s`` on the wire). Before either, the pace is unknown, and silence is judged against
the slowest pace l4mon expects of a real sender (``[links] unlearned_stale_after_s``): the first
seconds of a drive never make a link stale for want of a pace.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice, pairwise
from typing import Final

#: An outage or staleness must pass this many of the stream's usual sample intervals.
OUTAGE_INTERVALS: Final = 3
#: Intervals the usual interval is the median of.
SPACING_N: Final = 20
#: Intervals a stream must have shown before its median is taken as its pace: one or two
#: intervals of a logger that doubles or skips rows say little about its pace.
LEARNED_AFTER: Final = 4


def usual_interval(times: Sequence[float]) -> float | None:
    """The median of the last ``SPACING_N`` intervals between ``times`` (ascending); None
    with fewer than two times."""
    n = len(times)
    if n < 2:
        return None
    recent = islice(times, max(0, n - SPACING_N - 1), None)  # a list or a deque
    steps = sorted([b - a for a, b in pairwise(recent)])
    half = len(steps) // 2
    return steps[half] if len(steps) % 2 else (steps[half - 1] + steps[half]) / 2


def learned_interval(times: Sequence[float]) -> float | None:
    """The stream's usual interval once it has shown ``LEARNED_AFTER`` intervals, else None."""
    return usual_interval(times) if len(times) > LEARNED_AFTER else None


def silence_limit(floor_s: float, interval_s: float | None) -> float:
    """How long a stream may be silent before it counts: the configured ``floor_s``, or
    OUTAGE_INTERVALS of its usual interval when that is longer."""
    if interval_s is None:
        return floor_s
    return max(floor_s, OUTAGE_INTERVALS * interval_s)


def stream_limit(floor_s: float, unlearned_s: float, learned_s: float | None,
                 declared_s: float | None) -> float:
    """The silence a stream may keep: by its learned pace, or the pace it declares when that
    is slower (a sender knows its own schedule; a lie the other way is caught by learning);
    by the declared pace alone before one is learned; ``unlearned_s`` with neither."""
    if learned_s is None:
        return max(floor_s, unlearned_s) if declared_s is None \
            else silence_limit(floor_s, declared_s)
    if declared_s is not None and declared_s > learned_s:
        learned_s = declared_s
    return silence_limit(floor_s, learned_s)
