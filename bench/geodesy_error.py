"""How far l4mon's hand-written geodesy is from PROJ: the local frame, distances and UTM.

Run: ``.venv/bin/python bench/geodesy_error.py`` (needs pyproj, the ``test`` extra).

Printed, per origin latitude and distance from the origin (every 5° of bearing):

* **frame**: the largest distance between ``LocalFrame.to_xy`` and PROJ's
  ``+proj=aeqd +ellps=WGS84`` (the projection it implements), and the same for
  ``to_latlon`` (metres on the ground, by PROJ's geodesic);
* **distance**: the largest error of ``distance_m`` against PROJ's geodesic distance;
* **sphere**: what the spherical equirectangular frame l4mon used before (mean radius
  6,371,008.8 m) was off by, for scale;

then UTM: ``utm_to_latlon`` against PROJ's ``+proj=utm`` over zones, both hemispheres and
1,000 km either side of the central meridian (position in metres, convergence in degrees).
"""

from __future__ import annotations

import math
from typing import Final

from pyproj import Geod, Proj, Transformer

from telemetry.geodesy import LocalFrame, distance_m
from telemetry.utm import utm_to_latlon

LATITUDES: Final = (0.0, 36.0, 60.0, 75.0)
DISTANCES_KM: Final = (1.0, 10.0, 30.0, 100.0)
LON0: Final = 136.0
_SPHERE_M_PER_DEG: Final = 6_371_008.8 * math.pi / 180.0
GEOD: Final = Geod(ellps="WGS84")


def aeqd(lat0: float, lon0: float) -> Transformer:
    return Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m",
        always_xy=True)


def frame_errors(lat0: float, km: float) -> tuple[float, float, float, float]:
    """(to_xy, to_latlon, distance_m, old sphere) worst errors in metres."""
    frame, proj = LocalFrame.at(lat0, LON0), aeqd(lat0, LON0)
    fwd = inv = dist = sphere = 0.0
    for bearing in range(0, 360, 5):
        lon, lat, _ = GEOD.fwd(LON0, lat0, bearing, km * 1000.0)
        px, py = proj.transform(lon, lat)
        x, y = frame.to_xy(lat, lon)
        fwd = max(fwd, math.hypot(x - px, y - py))
        back_lat, back_lon = frame.to_latlon(px, py)
        inv = max(inv, GEOD.inv(lon, lat, back_lon, back_lat)[2])
        dist = max(dist, abs(distance_m(lat0, LON0, lat, lon) - km * 1000.0))
        sx = (lon - LON0) * _SPHERE_M_PER_DEG * math.cos(math.radians(lat0))
        sy = (lat - lat0) * _SPHERE_M_PER_DEG
        sphere = max(sphere, math.hypot(sx - px, sy - py))
    return fwd, inv, dist, sphere


def utm_errors() -> tuple[float, float]:
    """(position in metres, convergence in degrees) worst errors of ``utm_to_latlon``."""
    pos = conv = 0.0
    for zone in range(1, 61, 7):
        for north in (True, False):
            crs = f"+proj=utm +zone={zone}{'' if north else ' +south'} +ellps=WGS84"
            to_grid, proj = Transformer.from_crs("EPSG:4326", crs, always_xy=True), Proj(crs)
            for easting in range(-500_000, 1_500_001, 100_000):
                first = 0 if north else 1_000_000
                for northing in range(first, first + 9_000_001, 500_000):
                    lat, lon, gamma = utm_to_latlon(easting, northing, zone, north)
                    x, y = to_grid.transform(lon, lat)
                    pos = max(pos, math.hypot(x - easting, y - northing))
                    conv = max(conv, abs(gamma - proj.get_factors(lon, lat).meridian_convergence))
    return pos, conv


def main() -> None:
    print("lat   km    to_xy mm  to_latlon mm  distance_m mm  old sphere m")
    for lat0 in LATITUDES:
        for km in DISTANCES_KM:
            fwd, inv, dist, sphere = frame_errors(lat0, km)
            print(f"{lat0:4.0f} {km:4.0f} {fwd * 1e3:11.3f} {inv * 1e3:13.3f} "
                  f"{dist * 1e3:14.3f} {sphere:13.2f}")
    pos, conv = utm_errors()
    print(f"UTM inverse vs PROJ: position {pos * 1e3:.4f} mm, convergence {conv:.2e} deg")


if __name__ == "__main__":
    main()
