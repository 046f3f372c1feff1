"""UTM grid positions to latitude and longitude on WGS84: drive-test exports often log UTM.

The inverse is the Krüger series to fourth order in n, in Karney's form (J. Geodesy 85, 2011;
Snyder's "Map Projections - A Working Manual" gives the series to lower order). Measured
against PROJ 9.5 over zones and both hemispheres (bench/geodesy_error.py, tests/test_utm.py):
within 0.003 mm of position and 1e-9° of convergence, even 1,000 km from the central
meridian, further than any real UTM position lies.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["utm_to_latlon"]

_A: Final = 6_378_137.0
_F: Final = 1 / 298.257223563
_K0: Final = 0.9996
_E0: Final = 500_000.0
_N: Final = _F / (2 - _F)
_RECT: Final = _A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64)  # rectifying radius
_BETA: Final = (
    _N / 2 - 2 * _N**2 / 3 + 37 * _N**3 / 96 - _N**4 / 360,
    _N**2 / 48 + _N**3 / 15 - 437 * _N**4 / 1440,
    17 * _N**3 / 480 - 37 * _N**4 / 840,
    4397 * _N**4 / 161280,
)
_DELTA: Final = (
    2 * _N - 2 * _N**2 / 3 - 2 * _N**3 + 116 * _N**4 / 45,
    7 * _N**2 / 3 - 8 * _N**3 / 5 - 227 * _N**4 / 45,
    56 * _N**3 / 15 - 136 * _N**4 / 35,
    4279 * _N**4 / 630,
)


def utm_to_latlon(easting: float, northing: float, zone: int,
                  north: bool = True) -> tuple[float, float, float]:
    """(latitude, longitude, meridian convergence), all in degrees, of a UTM position.

    The convergence is the true bearing of grid north: add it to a bearing measured from grid
    north to get one from true north (negative west of the central meridian).
    """
    xi = (northing - (0.0 if north else 10_000_000.0)) / (_K0 * _RECT)
    eta = (easting - _E0) / (_K0 * _RECT)
    xi1, eta1, sigma, tau = xi, eta, 1.0, 0.0
    for j, beta in enumerate(_BETA, start=1):
        s, c = math.sin(2 * j * xi), math.cos(2 * j * xi)
        sh, ch = math.sinh(2 * j * eta), math.cosh(2 * j * eta)
        xi1 -= beta * s * ch
        eta1 -= beta * c * sh
        sigma -= 2 * j * beta * c * ch
        tau += 2 * j * beta * s * sh
    chi = math.asin(math.sin(xi1) / math.cosh(eta1))
    lat = chi + sum(d * math.sin(2 * j * chi) for j, d in enumerate(_DELTA, start=1))
    lon0 = math.radians(zone * 6 - 183)
    lon = math.degrees(lon0 + math.atan2(math.sinh(eta1), math.cos(xi1)))
    if not -180.0 <= lon <= 180.0:  # zone 1's west and zone 60's east edge cross 180°
        lon = (lon + 180.0) % 360.0 - 180.0
    t = math.tan(xi1) * math.tanh(eta1)
    gamma = math.atan2(tau + sigma * t, sigma - tau * t)
    return math.degrees(lat), lon, math.degrees(gamma)
