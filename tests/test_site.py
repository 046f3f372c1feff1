"""The site model: the demo file, geometry helpers and validation errors."""

from __future__ import annotations

import copy
import math
from itertools import pairwise
from pathlib import Path

import pytest

from telemetry.site import (
    DEMO_SITE_PATH,
    LocalFrame,
    SiteError,
    distance_m,
    load_site,
    parse_site,
)

GOOD = {
    "name": "t",
    "origin": {"lat": 36.0, "lon": 136.0},
    "intersections": [
        {"id": "ix-a", "name": "A", "lat": 36.0, "lon": 136.0, "radius_m": 30},
        {
            "id": "ix-b",
            "name": "B",
            "polygon": [[36.001, 136.001], [36.001, 136.002], [36.002, 136.002], [36.002, 136.001]],
        },
    ],
    "cells": [
        {"id": "c1", "rat": "nr", "band": "n79", "operator": "local5g", "lat": 36.0, "lon": 136.0},
        {"id": "c2", "rat": "lte"},
    ],
    "rsus": [{"id": "r1", "intersection": "ix-a", "lat": 36.0, "lon": 136.0}],
    "routes": [{"id": "loop", "waypoints": [[36.0, 136.0], [36.001, 136.0], [36.001, 136.001]]}],
}


def _with(path: tuple[str | int, ...], value: object) -> dict:
    """A deep copy of GOOD with one value replaced."""
    data = copy.deepcopy(GOOD)
    node: object = data
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return data


def test_demo_site_loads() -> None:
    """The bundled demo site is valid and has what the simulator needs."""
    site = load_site(DEMO_SITE_PATH)
    assert site.name == "eiheiji-demo"
    assert [ix.id for ix in site.intersections] == ["ix-araya", "ix-shihi"]
    assert {c.rat for c in site.cells} == {"nr", "lte"}
    assert all(c.band == "n79" and c.operator == "local5g" for c in site.cells if c.rat == "nr")
    assert {r.intersection for r in site.rsus} == {"ix-araya", "ix-shihi"}
    (route,) = site.routes
    pts = [*route.waypoints, route.waypoints[0]]
    length = sum(distance_m(*a, *b) for a, b in pairwise(pts))
    assert 1_700 < length < 2_300
    for ix in site.intersections:  # the loop passes through both junctions
        assert any(ix.contains(*p) for p in route.waypoints)


def test_intersection_at_circle_and_polygon() -> None:
    """Points inside a circle or polygon find it; points between find nothing."""
    site = parse_site(GOOD)
    frame = LocalFrame.at(36.0, 136.0)
    assert site.intersection_at(*frame.to_latlon(20.0, 0.0)).id == "ix-a"  # type: ignore[union-attr]
    assert site.intersection_at(*frame.to_latlon(0.0, 31.0)) is None
    assert site.intersection_at(36.0015, 136.0015).id == "ix-b"  # type: ignore[union-attr]
    assert site.intersection_at(36.0015, 136.0025) is None
    assert site.intersections[1].centre == pytest.approx((36.0015, 136.0015))
    assert site.cell("c2") is not None and site.cell("nope") is None


def test_local_frame_round_trip_and_distance() -> None:
    """Metre offsets invert exactly and agree with distance_m at site scale."""
    frame = LocalFrame.at(36.06, 136.34)
    lat, lon = frame.to_latlon(300.0, -400.0)
    x, y = frame.to_xy(lat, lon)
    assert (x, y) == pytest.approx((300.0, -400.0))
    assert distance_m(36.06, 136.34, lat, lon) == pytest.approx(500.0, rel=1e-3)
    # 0.001° of latitude at 36°N on WGS84 (PROJ's geodesic: 110.95901 m; a sphere said 111.2)
    assert distance_m(36.0, 136.0, 36.001, 136.0) == pytest.approx(110.959, abs=0.001)
    assert math.isclose(distance_m(1.0, 2.0, 1.0, 2.0), 0.0)


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        (("cells", 1, "id"), "c1", "cells[1].id", "duplicate id 'c1'"),
        (("rsus", 0, "intersection"), "ix-zz", "rsus[0].intersection", "unknown intersection"),
        (("cells", 0, "rat"), "wifi", "cells[0].rat", "Invalid enum value 'wifi'"),
        (("intersections", 0, "radius_m"), 0, "intersections[0].radius_m", "> 0"),
        (("intersections", 0, "lat"), 91.0, "intersections[0].lat", "<= 90"),
        (("routes", 0, "waypoints"), [[36.0, 136.0]], "routes[0].waypoints", "length >= 2"),
        (("routes", 0, "waypoints"), [[36.0, 136.0]] * 3, "routes[0].waypoints", "two distinct"),
        (("cells", 0, "band"), "x9", "cells[0].band", "matching regex"),
        (("rsus", 0, "id"), "r/1", "rsus[0].id", "matching regex"),
        (("intersections", 1, "radius_m"), 5.0, "intersections[1]", "not both"),
        (("intersections", 0, "radius_m"), None, "intersections[0]", "radius_m"),
    ],
)
def test_validation_names_the_field(
    path: tuple[str | int, ...], value: object, field: str, words: str
) -> None:
    """Each kind of bad input raises SiteError naming the offending field."""
    with pytest.raises(SiteError) as info:
        parse_site(_with(path, value), source="t.toml")
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith(f"t.toml: {field}: ")


def test_unknown_and_missing_fields_are_named() -> None:
    """A typo'd key and a missing key are both reported by name."""
    data = _with(("intersections", 0, "radius"), 30)
    with pytest.raises(SiteError, match="unknown field") as info:
        parse_site(data)
    assert info.value.field == "intersections[0].radius"
    data = _with(("cells", 0), {"rat": "nr"})
    with pytest.raises(SiteError, match="missing required field") as info:
        parse_site(data)
    assert info.value.field == "cells[0].id"


def test_load_site_reports_file_and_toml_errors(tmp_path: Path) -> None:
    """load_site names the file; bad TOML and bad content are both SiteErrors (ValueErrors)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\norigin = {lat = 1.0, lon = 2.0\n', encoding="utf-8")
    with pytest.raises(SiteError, match="invalid TOML"):
        load_site(bad)
    dup = tmp_path / "dup.toml"
    dup.write_text(
        'name = "x"\norigin = {lat = 1.0, lon = 2.0}\n'
        '[[intersections]]\nid = "a"\nname = "A"\nlat = 1.0\nlon = 2.0\nradius_m = 30\n'
        '[[intersections]]\nid = "a"\nname = "B"\nlat = 1.1\nlon = 2.0\nradius_m = 30\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"dup\.toml: intersections\[1\]\.id: duplicate id 'a'"):
        load_site(dup)
