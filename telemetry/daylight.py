"""Daylight, dusk or night at a place and time, from the sun's elevation.

The link map splits its figures by light (docs/linkmap.md) because public cells carry the
day's load and not the night's; a live hub that is not told the light works it out from the
clock it is given and the vehicle's position, so a replay decides it exactly as live did.

The sun's position is the low-precision formula of the Astronomical Almanac (accurate to
about 0.01° for 1950-2050, far inside the 6° that separate daylight from night). Against NREL's
Solar Position Algorithm (tests/test_daylight.py: its published test vectors, and its
sunrise, transit and sunset times at 40°N and 35°S) it is within 0.001° of the elevation and
0.004° at sunrise and sunset, which puts the light's changes within a few seconds of SPA's. Light is
``daylight`` while the sun's upper limb is above the horizon (elevation above -0.833°, which
allows for refraction and the sun's radius), ``dusk`` during civil twilight (down to -6°),
``night`` below.
"""

from __future__ import annotations

import math
from typing import Final

SUNRISE_DEG: Final = -0.833
CIVIL_TWILIGHT_DEG: Final = -6.0
_J2000_UNIX: Final = 946_728_000.0  # 2000-01-01 12:00 UTC


def sun_elevation_deg(epoch_s: float, lat: float, lon: float) -> float:
    """The sun's elevation above the horizon at ``lat``, ``lon`` (degrees, east positive)."""
    d = (epoch_s - _J2000_UNIX) / 86_400.0
    g = math.radians((357.529 + 0.98560028 * d) % 360.0)
    q = (280.459 + 0.98564736 * d) % 360.0
    ecliptic_lon = math.radians(q + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g))
    obliquity = math.radians(23.439 - 0.00000036 * d)
    right_ascension = math.atan2(math.cos(obliquity) * math.sin(ecliptic_lon),
                                 math.cos(ecliptic_lon))
    declination = math.asin(math.sin(obliquity) * math.sin(ecliptic_lon))
    sidereal_deg = (280.46061837 + 360.98564736629 * d) % 360.0
    hour_angle = math.radians(sidereal_deg + lon) - right_ascension
    phi = math.radians(lat)
    sin_el = (math.sin(phi) * math.sin(declination)
              + math.cos(phi) * math.cos(declination) * math.cos(hour_angle))
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))


def light_at(epoch_s: float, lat: float, lon: float) -> str:
    """``daylight``, ``dusk`` or ``night`` (the drive log's light tags)."""
    elevation = sun_elevation_deg(epoch_s, lat, lon)
    if elevation > SUNRISE_DEG:
        return "daylight"
    if elevation > CIVIL_TWILIGHT_DEG:
        return "dusk"
    return "night"
