"""The UTM inverse against PROJ over zones, hemispheres and the width of a zone and more."""

from __future__ import annotations

import math

import pytest

from telemetry.utm import utm_to_latlon
from tests.parts import import_part

pyproj = import_part("pyproj")


@pytest.mark.parametrize("zone", [1, 17, 31, 51, 54, 60])
@pytest.mark.parametrize("north", [True, False])
def test_utm_inverse_is_procs(zone: int, north: bool) -> None:
    """Position within 0.01 mm of PROJ's, convergence within 1e-8°, 1,000 km either side of
    the central meridian (a zone is ±~330 km at the equator)."""
    crs = f"+proj=utm +zone={zone}{'' if north else ' +south'} +ellps=WGS84"
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    proj = pyproj.Proj(crs)
    first = 0 if north else 1_000_000
    for easting in range(-500_000, 1_500_001, 125_000):
        for northing in range(first, first + 9_000_001, 750_000):
            lat, lon, gamma = utm_to_latlon(easting, northing, zone, north)
            assert -180.0 <= lon <= 180.0 and (lat >= 0 if north else lat <= 0)
            x, y = to_grid.transform(lon, lat)
            assert math.hypot(x - easting, y - northing) < 1e-5, (easting, northing)
            assert gamma == pytest.approx(proj.get_factors(lon, lat).meridian_convergence,
                                          abs=1e-8)


def test_central_meridian_and_zone_edges() -> None:
    """On the central meridian the convergence is 0; zone 1 and 60 edges wrap at 180°."""
    lat, lon, gamma = utm_to_latlon(500_000.0, 0.9996 * 4_984_944.378, 51)
    assert lat == pytest.approx(45.0, abs=1e-8) and lon == pytest.approx(123.0, abs=1e-12)
    assert gamma == 0.0
    assert utm_to_latlon(200_000.0, 1_000_000.0, 1)[1] == pytest.approx(
        pyproj.Transformer.from_crs("+proj=utm +zone=1 +ellps=WGS84", "EPSG:4326",
                                    always_xy=True).transform(200_000.0, 1_000_000.0)[0])
    assert -179.0 < utm_to_latlon(1_000_000.0, 1_000_000.0, 60)[1] < -178.0
