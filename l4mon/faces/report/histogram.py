"""The report's distributions: every value counted, percentiles exact or within 0.1 %.

A report over ~260 M samples cannot keep them all, so each distribution is a
``telemetry.quantiles.Quantiles``: exact order statistics while it holds at most
``telemetry.quantiles.EXACT_MAX`` values, a relative sketch within 0.1 % after — over the whole
range a wire value can take, so no percentile is ever capped at the end of a range. The same
estimator and the same limit give the replay's KPIs, so a figure is exact in both or in neither,
and the tables say which (their ``exact`` column).
"""

from __future__ import annotations

from typing import Final

from telemetry.quantiles import Quantiles

#: The largest value each kind tells apart: the wire's RTT bound (ms), 24 h of one-way delay
#: (the hub's max_age_s, in ms), the wire's throughput bound (kbit/s).
RTT_HIGH_MS: Final = 600_000.0
DELAY_HIGH_MS: Final = 86_400_000.0
RATE_HIGH_KBPS: Final = 100_000_000.0

Histogram = Quantiles  # the name the report's modules knew it by


def rtt_histogram() -> Quantiles:
    return Quantiles(high=RTT_HIGH_MS)


def delay_histogram() -> Quantiles:
    """One-way delay goes negative with a clock running ahead: both signs are kept."""
    return Quantiles(high=DELAY_HIGH_MS)


def rate_histogram() -> Quantiles:
    return Quantiles(high=RATE_HIGH_KBPS)
