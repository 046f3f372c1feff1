"""``[linkmap]`` of the hub config: which map the hub looks ahead on, and how.

Without a ``path`` the hub has no map: the look-ahead facts are unknown (None), never "no
weak spot", and the ``weak_link_ahead`` rule cannot fire.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from telemetry.drivelog import Weather
from telemetry.linkmap.ahead import (
    DEFAULT_HORIZON_S,
    DEFAULT_MEASURE,
    DEFAULT_MIN_PASSES,
    DEFAULT_THRESHOLD,
    MeasureName,
)

LightSetting = Literal["auto", "daylight", "dusk", "night", "unknown"]


class LinkMapSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: A map directory built by ``l4mon linkmap build``; empty: no look-ahead.
    path: str = ""
    #: How far ahead to look, in seconds at the vehicle's speed.
    horizon_s: float = DEFAULT_HORIZON_S
    #: A stretch is weak when at least this share of its past passes failed the measure...
    threshold: float = DEFAULT_THRESHOLD
    #: ...over at least this many passes (fewer: the map does not know the stretch).
    min_passes: int = DEFAULT_MIN_PASSES
    #: What failing a pass means (telemetry/linkmap/ahead.py): ``impaired`` = degraded
    #: (RTT, loss, signal), down, or short of the vehicle's uplink requirement: whatever costs
    #: the operator the vehicle's picture (issue 25: ``unfit`` saw 3 of 10 recurring RTT
    #: degradations, ``impaired`` 10 of 10).
    measure: MeasureName = DEFAULT_MEASURE
    #: The weather when no RSU of the site reports one (a replay takes its log's tag when
    #: it has one).
    weather: Weather = "unknown"
    #: An RSU's ``weather`` report stands this long; the newest of the site's wins.
    weather_max_age_s: float = 1_800.0
    #: The light now; ``auto``: from the sun at the vehicle's position and the hub's clock.
    light: LightSetting = "auto"

    def __post_init__(self) -> None:
        if not 0 < self.horizon_s <= 600:
            raise ValueError("linkmap: horizon_s must be in (0, 600]")
        if not 0 < self.threshold <= 1:
            raise ValueError("linkmap: threshold must be in (0, 1]")
        if self.min_passes < 1:
            raise ValueError("linkmap: min_passes must be >= 1")
        if self.weather_max_age_s <= 0:
            raise ValueError("linkmap: weather_max_age_s must be > 0")
