"""The site model: where a fleet drives, which cells and roadside units serve it.

A site is written by hand in TOML, so it is validated once, up front, into frozen msgspec
Structs; every problem is reported as a ``SiteError`` naming the field (``cells[2].rat``)
rather than surfacing later as a ``KeyError`` deep inside a stage. Ids become MQTT topic
segments and wire-model names, so they follow the wire model's ``Name`` pattern.

Geometry is ``telemetry.geodesy``'s: metres around the site origin on the WGS84 ellipsoid
(azimuthal equidistant, within a millimetre of PROJ at site scale); re-exported here because
every user of a site wants its frame.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from telemetry.geodesy import LocalFrame, distance_m

__all__ = [
    "DEMO_SITE_PATH",
    "Cell",
    "GeoPoint",
    "Intersection",
    "LocalFrame",
    "Route",
    "Rsu",
    "Site",
    "SiteError",
    "distance_m",
    "load_site",
    "parse_site",
]

#: The bundled demo site (a rural town in Fukui). Found next to the source tree, which is what
#: an editable install and a checkout both provide.
DEMO_SITE_PATH: Path = Path(__file__).resolve().parent.parent / "scenarios" / "sites" / "demo.toml"

Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
#: Same pattern as ``telemetry.wire.Name``: ids end up in topics and in wire fields.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Point = tuple[Lat, Lon]
SiteRat = Literal["nr", "lte"]
Operator = Literal["local5g", "public"]


class SiteError(ValueError):
    """The site description is invalid; ``field`` says where (``cells[2].rat``), if known."""

    def __init__(self, problem: str, *, field: str | None = None, source: str | None = None):
        self.problem = problem
        self.field = field
        self.source = source
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Unknown keys are errors: in a hand-written file they are almost always typos."""


class GeoPoint(_Strict):
    lat: Lat
    lon: Lon


class Intersection(_Strict):
    """A junction, as a circle (``lat``, ``lon``, ``radius_m``) or as a ``polygon``.

    Rules and the simulator ask "is the vehicle in the junction?", so this is an area, not a
    point; a polygon fits skewed or elongated junctions that a circle would overstate.
    """

    id: Id
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    lat: Lat | None = None
    lon: Lon | None = None
    radius_m: Annotated[float, msgspec.Meta(gt=0.0, le=10_000.0)] | None = None
    polygon: Annotated[tuple[Point, ...], msgspec.Meta(min_length=3)] | None = None

    def __post_init__(self) -> None:
        circle = (self.lat, self.lon, self.radius_m)
        if self.polygon is not None:
            if any(v is not None for v in circle):
                raise ValueError("give either lat/lon/radius_m or polygon, not both")
        elif any(v is None for v in circle):
            raise ValueError("needs lat, lon and radius_m (a circle), or polygon")

    @property
    def centre(self) -> tuple[float, float]:
        """The circle's centre, or the polygon's vertex mean (fine for junction-sized shapes)."""
        if self.polygon is None:
            assert self.lat is not None and self.lon is not None
            return self.lat, self.lon
        n = len(self.polygon)
        return sum(p[0] for p in self.polygon) / n, sum(p[1] for p in self.polygon) / n

    def contains(self, lat: float, lon: float) -> bool:
        if self.polygon is None:
            assert self.lat is not None and self.lon is not None and self.radius_m is not None
            return LocalFrame.at(self.lat, self.lon).distance_to(lat, lon) <= self.radius_m
        # Even-odd ray casting directly in degrees: inside-ness survives the axis scaling a
        # projection would apply, so no projection is needed (the antimeridian is not handled).
        inside = False
        pts = self.polygon
        j = len(pts) - 1
        for i in range(len(pts)):
            (ya, xa), (yb, xb) = pts[i], pts[j]
            if (ya > lat) != (yb > lat) and lon < xa + (lat - ya) * (xb - xa) / (yb - ya):
                inside = not inside
            j = i
        return inside


class Cell(_Strict):
    """A radio cell. Position is optional: a cell known only by id still labels samples."""

    id: Id
    rat: SiteRat
    lat: Lat | None = None
    lon: Lon | None = None
    band: Annotated[str, msgspec.Meta(pattern=r"^[nb][0-9]{1,3}$")] | None = None
    operator: Operator | None = None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")


class Rsu(_Strict):
    """A roadside unit broadcasting V2I messages for one intersection."""

    id: Id
    intersection: Id
    lat: Lat
    lon: Lon


class Route(_Strict):
    """A closed loop: the last waypoint joins the first (repeating the first is allowed)."""

    id: Id
    waypoints: Annotated[tuple[Point, ...], msgspec.Meta(min_length=2)]


class Site(_Strict):
    name: Id
    origin: GeoPoint
    intersections: tuple[Intersection, ...] = ()
    cells: tuple[Cell, ...] = ()
    rsus: tuple[Rsu, ...] = ()
    routes: tuple[Route, ...] = ()

    def frame(self) -> LocalFrame:
        """The site's metre grid, centred on ``origin``."""
        return LocalFrame.at(self.origin.lat, self.origin.lon)

    def intersection_at(self, lat: float, lon: float) -> Intersection | None:
        """The first intersection containing the point, or ``None`` between intersections."""
        for ix in self.intersections:
            if ix.contains(lat, lon):
                return ix
        return None

    def intersection(self, intersection_id: str) -> Intersection | None:
        return next((ix for ix in self.intersections if ix.id == intersection_id), None)

    def cell(self, cell_id: str) -> Cell | None:
        for c in self.cells:
            if c.id == cell_id:
                return c
        return None


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]+)`")


def _error_from_msgspec(err: msgspec.ValidationError, source: str | None) -> SiteError:
    """Turn msgspec's ``... - at `$.cells[1].rat``` into a SiteError with ``field``."""
    m = _AT.match(str(err))
    assert m is not None  # the pattern matches any string
    msg, path = m["msg"], (m["path"] or "").lstrip(".")
    named = _NAMED.search(msg)
    if named:
        path = f"{path}.{named['name']}" if path else named["name"]
    return SiteError(msg, field=path or None, source=source)


def _check_refs(site: Site, source: str | None) -> None:
    """Checks that span records: unique ids, existing intersections, non-degenerate routes."""
    groups: tuple[tuple[str, tuple[Any, ...]], ...] = (
        ("intersections", site.intersections),
        ("cells", site.cells),
        ("rsus", site.rsus),
        ("routes", site.routes),
    )
    for group, items in groups:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.id in seen:
                raise SiteError(
                    f"duplicate id {item.id!r} (also {group}[{seen[item.id]}])",
                    field=f"{group}[{i}].id",
                    source=source,
                )
            seen[item.id] = i
    known = {ix.id for ix in site.intersections}
    for i, rsu in enumerate(site.rsus):
        if rsu.intersection not in known:
            raise SiteError(
                f"unknown intersection {rsu.intersection!r}",
                field=f"rsus[{i}].intersection",
                source=source,
            )
    for i, route in enumerate(site.routes):
        if len(set(route.waypoints)) < 2:
            raise SiteError(
                "a route needs at least two distinct waypoints",
                field=f"routes[{i}].waypoints",
                source=source,
            )


def parse_site(data: Mapping[str, Any], *, source: str | None = None) -> Site:
    """Validate already-parsed TOML (or any mapping) into a Site; ``source`` labels errors."""
    try:
        site = msgspec.convert(data, type=Site)
    except msgspec.ValidationError as err:
        raise _error_from_msgspec(err, source) from None
    _check_refs(site, source)
    return site


def load_site(path: str | Path) -> Site:
    """Read and validate a site TOML file. Raises ``SiteError`` (and ``OSError`` if unreadable)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SiteError(f"invalid TOML: {err}", source=str(path)) from None
    return parse_site(data, source=str(path))
