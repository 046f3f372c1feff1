"""Metres around an origin on the WGS84 ellipsoid: the frame sites, grids and geofences share.

``LocalFrame`` is the azimuthal equidistant projection (PROJ's ``+proj=aeqd +ellps=WGS84``):
a point's distance from the origin and its bearing there are the geodesic ones, so a 25 m
link-map cell is 25 m and a 30 m geofence is 30 m wherever the site is. The spherical
equirectangular frame it replaces put points 2-6 m wrong at 1 km, 29-62 m at 10 km.

How, in closed form (no iteration, a few microseconds a point): the point's offset from the
origin in east-north-up axes (through earth-centred coordinates) gives the bearing; the chord
is turned into the arc of the normal section with that bearing, whose radius is Euler's
``1/R = cos²α/M + sin²α/N`` (M, N: the meridional and prime-vertical radii at the origin).
Measured against PROJ 9.5 (bench/geodesy_error.py: origins at latitudes 0, 36, 60 and 75,
every 5° of bearing), the largest position error is under 0.001 mm at 1 km, 0.014 mm at
10 km, 0.4 mm at 30 km and 14 mm at 100 km, the inverse the same; distances are within 0.2 mm
of the geodesic at 100 km. Beyond ~100 km the normal section's changing curvature starts to
tell: a site frame is not meant for that. tests/test_geodesy.py holds it to these figures at
many more origins.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # numpy stays out of the live hub's start-up: imported where arrays are used
    import numpy as np

__all__ = ["WGS84_A", "WGS84_F", "LocalFrame", "distance_and_bearing", "distance_m"]

#: The WGS84 ellipsoid: semi-major axis (m) and flattening.
WGS84_A: Final = 6_378_137.0
WGS84_F: Final = 1 / 298.257223563
_E2: Final = WGS84_F * (2 - WGS84_F)  # first eccentricity squared
_B: Final = WGS84_A * (1 - WGS84_F)  # semi-minor axis
_EP2: Final = _E2 / (1 - _E2)  # second eccentricity squared


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """Metre offsets (x east, y north) around an origin, azimuthal equidistant on WGS84."""

    lat0: float
    lon0: float
    #: The scale at the origin (metres per degree): for bounding boxes, not for positions.
    m_per_deg_lat: float
    m_per_deg_lon: float
    _sin0: float
    _cos0: float
    _m0: float  # meridional radius of curvature at the origin
    _n0: float  # prime-vertical radius of curvature at the origin
    _p0: float  # the origin's distance from the earth's axis
    _z0: float  # the origin's height above the equatorial plane

    @classmethod
    @functools.lru_cache(maxsize=1024)  # geofences and grids ask for the same few origins
    def at(cls, lat0: float, lon0: float) -> LocalFrame:
        phi = math.radians(lat0)
        sin0, cos0 = math.sin(phi), math.cos(phi)
        w = 1.0 - _E2 * sin0 * sin0
        n0 = WGS84_A / math.sqrt(w)
        m0 = WGS84_A * (1.0 - _E2) / (w * math.sqrt(w))
        per_rad = math.pi / 180.0
        return cls(lat0, lon0, m0 * per_rad, n0 * cos0 * per_rad, sin0, cos0, m0, n0,
                   n0 * cos0, n0 * (1.0 - _E2) * sin0)

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        east, north, up = self._enu(lat, lon)
        level2 = east * east + north * north
        if level2 == 0.0:
            return 0.0, 0.0
        radius = level2 / (north * north / self._m0 + east * east / self._n0)
        chord = math.sqrt(level2 + up * up)
        scale = 2.0 * radius * math.asin(min(1.0, chord / (2.0 * radius))) / math.sqrt(level2)
        return east * scale, north * scale

    def distance_to(self, lat: float, lon: float) -> float:
        """The geodesic distance from the origin, in ``distances_m``'s arithmetic, so that a
        geofence answers the same one point at a time as over arrays."""
        east, north, up = self._enu(lat, lon)
        level2 = east * east + north * north
        inv_r = (north * north / self._m0 + east * east / self._n0) / level2 \
            if level2 > 0.0 else 1.0 / self._n0
        chord = math.sqrt(level2 + up * up)
        return 2.0 / inv_r * math.asin(min(1.0, chord * inv_r / 2.0))

    def _enu(self, lat: float, lon: float) -> tuple[float, float, float]:
        """(east, north, up) metres of the point from the origin, in a straight line."""
        phi, dlon = math.radians(lat), math.radians(lon - self.lon0)
        s = math.sin(phi)
        n = WGS84_A / math.sqrt(1.0 - _E2 * s * s)
        p = n * math.cos(phi)
        # Earth-centred, turned so that the origin's meridian is the x-z plane.
        dx, dz = p * math.cos(dlon) - self._p0, n * (1.0 - _E2) * s - self._z0
        return p * math.sin(dlon), self._cos0 * dz - self._sin0 * dx, \
            self._cos0 * dx + self._sin0 * dz

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        d = math.hypot(x, y)
        if d == 0.0:
            return self.lat0, self.lon0
        sin_a, cos_a = x / d, y / d
        radius = 1.0 / (cos_a * cos_a / self._m0 + sin_a * sin_a / self._n0)
        half = d / (2.0 * radius)  # half the arc's angle: the chord's dip below the horizon
        chord = 2.0 * radius * math.sin(half)
        level, up = chord * math.cos(half), -chord * math.sin(half)
        east, north = level * sin_a, level * cos_a
        px = self._p0 + self._cos0 * up - self._sin0 * north
        z = self._z0 + self._cos0 * north + self._sin0 * up
        return _geodetic_lat(math.hypot(px, east), z), \
            _wrap_lon(self.lon0 + math.degrees(math.atan2(east, px)))

    def distances_m(self, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
        """``hypot(*to_xy(lat, lon))`` for arrays of positions: the geodesic distances."""
        import numpy as np

        phi = np.radians(np.asarray(lats, dtype=np.float64))
        dlon = np.radians(np.asarray(lons, dtype=np.float64) - self.lon0)
        s = np.sin(phi)
        n = WGS84_A / np.sqrt(1.0 - _E2 * s * s)
        p = n * np.cos(phi)
        dx, east, dz = p * np.cos(dlon) - self._p0, p * np.sin(dlon), n * (1.0 - _E2) * s - self._z0
        north = self._cos0 * dz - self._sin0 * dx
        up = self._cos0 * dx + self._sin0 * dz
        level2 = east * east + north * north
        inv_r = np.divide(north * north / self._m0 + east * east / self._n0, level2,
                          out=np.full_like(level2, 1.0 / self._n0), where=level2 > 0.0)
        chord = np.sqrt(level2 + up * up)
        return 2.0 / inv_r * np.arcsin(np.minimum(1.0, chord * inv_r / 2.0))


def distance_and_bearing(lat1: float, lon1: float, lat2: float,
                         lon2: float) -> tuple[float, float]:
    """(geodesic distance in m, its initial bearing in degrees from north) from point 1 to
    point 2: the azimuthal equidistant frame keeps both as seen from its origin."""
    x, y = LocalFrame.at(lat1, lon1).to_xy(lat2, lon2)
    return math.hypot(x, y), math.degrees(math.atan2(x, y)) % 360.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The geodesic distance in metres (within 0.2 mm of PROJ's up to 100 km)."""
    return LocalFrame.at(lat1, lon1).distance_to(lat2, lon2)


def _geodetic_lat(p: float, z: float) -> float:
    """Latitude (degrees) of an earth-centred point near the surface: Bowring's formula, exact
    to micrometres for heights of metres, which is all ``to_latlon`` leaves."""
    theta = math.atan2(z * WGS84_A, p * _B)
    st, ct = math.sin(theta), math.cos(theta)
    return math.degrees(math.atan2(z + _EP2 * _B * st**3, p - _E2 * WGS84_A * ct**3))


def _wrap_lon(lon: float) -> float:
    """Into [-180, 180]: a frame near the antimeridian reaches across it."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0
