"""The one percentile every latency bench prints, so their figures are computed alike."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile by linear interpolation between the closest ranks (numpy's
    default), without numpy in the benches that do not need it; NaN for no values, so a
    round that measured nothing prints as such and fails any ``<`` target."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
