"""The hub's look-ahead: for each vehicle and link, what the link map says of the road ahead.

One object per hub, built from ``[linkmap]`` (``telemetry/linkmap/settings.py``); the alert
rules read it through the link facts ``weak_ahead*`` (rule ``weak_link_ahead``) and the
console through the vehicle brief. Everything here is a function of the vehicle's last pose,
the map and the time it is asked at, so a replay under the log's clock gets the outlook live
got at the same moments.

Absence is not failure: a vehicle whose pose is unknown or older than ``POSE_MAX_AGE_S`` has
no outlook (None: unknown), and a road the map has too few passes of is "not mapped"
(``mapped`` false), which the console shows as such, never as safe.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from telemetry.daylight import light_at
from telemetry.fleet import RsuTrack
from telemetry.linkmap.ahead import STANDING_MPS, Outlook, WeakAhead
from telemetry.linkmap.cause import DEFAULT_DEGRADED, Cause, cause_of
from telemetry.linkmap.grid import CellIndex
from telemetry.linkmap.model import LinkMap, LinkMapError
from telemetry.linkmap.settings import LinkMapSettings
from telemetry.linkmap.store import CELLS, read_map
from telemetry.linkmap.stretch import Stretches
from telemetry.linkstate import Limits
from telemetry.site import Site, distance_m
from telemetry.vehicle import VehicleTrack

#: A pose older than this says nothing of where the vehicle is now (the map builder does not
#: place samples by an older one either).
POSE_MAX_AGE_S: Final = 3.0
#: A weak stretch is said to be "before" a junction within this distance of its zone.
NEAR_JUNCTION_M: Final = 100.0


@dataclass(frozen=True, slots=True)
class LinkAhead:
    """One link's outlook at one moment, with what the warning and the console say of it."""

    link: str
    outlook: Outlook
    speed_mps: float
    weather: str
    light: str
    #: The vehicle's links: its camera streams ride on them together.
    links: tuple[str, ...] = ()
    #: The map's pass counter the spot failed (the look-ahead's measure).
    measure: str = "passes_impaired"

    @property
    def weak(self) -> bool:
        return self.outlook.spot is not None

    @property
    def in_s(self) -> float | None:
        """Seconds until the vehicle enters the weak stretch (0: it is in it)."""
        spot = self.outlook.spot
        if spot is None:
            return None
        if spot.distance_m <= 0 or self.speed_mps < STANDING_MPS:
            return 0.0
        return spot.distance_m / self.speed_mps


class LookAhead:
    """Never called concurrently: the hub's loop owns it, as it owns the alert engine."""

    def __init__(self, linkmap: LinkMap, settings: LinkMapSettings, *,
                 site: Site | None = None, fingerprint: str = "",
                 degraded: Limits = DEFAULT_DEGRADED,
                 rsus: Callable[[], Iterable[RsuTrack]] = tuple) -> None:
        self.linkmap = linkmap
        self.settings = settings
        #: The hub's ``[links] degraded`` limits: the card says which a stretch went past.
        self.degraded = degraded
        self.site = site
        self.fingerprint = fingerprint
        self.rule = WeakAhead(linkmap, horizon_s=settings.horizon_s,
                              threshold=settings.threshold, min_passes=settings.min_passes,
                              measure=settings.measure)
        #: The hub's RSUs, for their weather reports (a fleet replaces its RSU table at a
        #: session's end, so this is asked each time, not kept).
        self.rsus = rsus
        self._weather: tuple[float, dict[str, str | None]] = (-1.0, {})
        #: vehicle id → (time asked, outlook per link): the rules and the console brief ask
        #: for the same vehicle at the same tick.
        self._last: dict[str, tuple[float, dict[str, LinkAhead]]] = {}
        self._light: dict[tuple[int, float, float], str] = {}
        self.stretches = Stretches(self.rule)

    @classmethod
    def load(cls, settings: LinkMapSettings, *, site: Site | None = None,
             degraded: Limits = DEFAULT_DEGRADED,
             rsus: Callable[[], Iterable[RsuTrack]] = tuple) -> LookAhead:
        """The map at ``settings.path``; raises ``LinkMapError`` (a ValueError) if unreadable."""
        return cls(read_map(settings.path), settings, site=site,
                   fingerprint=fingerprint(settings.path), degraded=degraded, rsus=rsus)

    def reported_weather(self, site: str, now: float) -> str | None:
        """The newest weather an RSU of ``site`` reported within ``weather_max_age_s``."""
        at, by_site = self._weather
        if at != now:
            newest: dict[str, tuple[float, str]] = {}
            oldest = now - self.settings.weather_max_age_s
            for rsu in self.rsus():
                last, rx = rsu.last, rsu.last_rx
                if last is None or last.weather is None or rx is None or rx < oldest:
                    continue
                if rsu.site not in newest or rx > newest[rsu.site][0]:
                    newest[rsu.site] = (rx, last.weather)
            by_site = {name: weather for name, (_, weather) in newest.items()}
            self._weather = (now, by_site)
        return by_site.get(site)

    def condition(self, lat: float, lon: float, now: float,
                  site: str | None = None) -> tuple[str, str]:
        """(weather, light) to pick the map's rows by: the site's RSUs' newest weather
        report, else the configured weather; the light configured or from the sun."""
        weather = (self.reported_weather(site, now) if site is not None else None) \
            or self.settings.weather
        light = self.settings.light
        if light == "auto":
            # The light changes over minutes and kilometres: worked out once a minute per
            # ~1 km square, at the minute's start, so the answer depends on nothing else.
            minute = math.floor(now / 60.0)
            key = (minute, round(lat, 2), round(lon, 2))
            cached = self._light.get(key)
            if cached is None:
                if len(self._light) > 10_000:
                    self._light.clear()
                cached = self._light[key] = light_at(minute * 60.0, key[1], key[2])
            light = cached
        return weather, light

    def links(self, vehicle: VehicleTrack, now: float) -> dict[str, LinkAhead] | None:
        """Each link's outlook, or None when the vehicle's pose is unknown or too old."""
        state = vehicle.state
        if state is None or vehicle.state_rx is None or now - vehicle.state_rx > POSE_MAX_AGE_S:
            return None
        cached = self._last.get(vehicle.id)
        if cached is not None and cached[0] == now:
            return cached[1]
        weather, light = self.condition(state.lat, state.lon, now, vehicle.site)
        out = {}
        names = tuple(vehicle.links)
        cells = self.rule.cells_ahead(state.lat, state.lon, state.heading_deg, state.speed_mps)
        for name in names:
            outlook = self.rule.outlook(cells, name, weather, light)
            out[name] = LinkAhead(name, outlook, state.speed_mps, weather, light, names,
                                  self.rule.measure)
        if len(self._last) > 4 * 10_000:  # bounded: vehicles come and go over months
            self._last.clear()
        self._last[vehicle.id] = (now, out)
        return out

    def stretch_of(self, vehicle: str, link: str) -> str | None:
        """The stretch of road the weak spot ahead of ``vehicle``'s ``link`` lies in, as last
        judged (the warning is raised at the tick that judged it): "stretch 22:14 near
        Araya junction". None without a weak spot."""
        cached = self._last.get(vehicle)
        ahead = None if cached is None else cached[1].get(link)
        spot = None if ahead is None else ahead.outlook.spot
        if ahead is None or spot is None:
            return None
        x, y = self.stretches.name(spot.cell, ahead.weather, ahead.light)
        place = self.place((x, y))
        return f"stretch {x}:{y}" + (f" near {place}" if place else "")

    def place(self, cell: CellIndex) -> str | None:
        """The site's junction the stretch lies in or leads to, by name (None: none near)."""
        if self.site is None:
            return None
        lat, lon = self.linkmap.grid.centre(cell)
        best: tuple[float, str] | None = None
        for ix in self.site.intersections:
            if ix.contains(lat, lon):
                return ix.name
            c_lat, c_lon = ix.centre
            d = distance_m(lat, lon, c_lat, c_lon) - (ix.radius_m or 0.0)
            if d <= NEAR_JUNCTION_M and (best is None or d < best[0]):
                best = (d, ix.name)
        return None if best is None else best[1]

    def describe(self, ahead: LinkAhead, required_kbps: float | None) -> str:
        """The warning's words: which link, how bad, in how many seconds, how sure, and
        what the operator can do about it where the map says."""
        spot = ahead.outlook.spot
        if spot is None:
            return f"{ahead.link}: no weak stretch ahead"
        in_s = ahead.in_s or 0.0
        when = "here" if in_s <= 0 else f"in {in_s:.0f} s ({spot.distance_m:.0f} m ahead)"
        place = self.place(spot.cell)
        where = f" at {place}" if place else ""
        basis = "all conditions pooled" if spot.pooled else \
            f"under {ahead.weather}/{ahead.light}"
        text = (f"{ahead.link} weak {when}{where}: {self.cause(ahead).words(spot.passes)} "
                f"({basis})")
        action = advice(self.usable_p05_kbps(spot.cell, ahead), required_kbps, place)
        return f"{text}; {action}" if action else text

    def cause(self, ahead: LinkAhead) -> Cause:
        """Which way the weak spot ahead failed its passes (down, short of uplink, impaired
        and by what); call only with a spot."""
        spot = ahead.outlook.spot
        assert spot is not None
        return cause_of(spot.stats, self.rule.measure, self.degraded)

    def usable_p05_kbps(self, cell: CellIndex, ahead: LinkAhead) -> float | None:
        """What the vehicle's links together carried there on 95 % of their samples: the
        sum of each link's usable uplink p5 (a lower bound of the sum's p5), a link that
        was down on every pass counting 0. None when a link's uplink is unknown there."""
        total = 0.0
        for name in ahead.links or (ahead.link,):
            stats, _ = self.rule.stats(cell, name, ahead.weather, ahead.light)
            if stats is None:
                return None
            if stats.ul.n:
                total += stats.ul.percentiles(5)[0] or 0.0
            elif not (stats.passes and stats.passes_down == stats.passes):
                return None
        return total


def measure_words(counter: str) -> str:
    return {"passes_unfit": "down or short of uplink",
            "passes_impaired": "impaired, down or short of uplink",
            "passes_down": "down", "passes_ul_short": "short of uplink"}[counter]


def advice(ul_p05_kbps: float | None, required_kbps: float | None,
            place: str | None) -> str | None:
    """Lower the camera streams to what the stretch carried on 95 % of its samples, when
    that is short of what they need and not nothing (a stretch that carries nothing needs a
    stop or the other link, not a lower bitrate)."""
    if ul_p05_kbps is None or required_kbps is None or ul_p05_kbps >= required_kbps:
        return None
    if ul_p05_kbps < 0.05 * required_kbps:
        return None
    before = f" before {place}" if place else " before the stretch"
    return (f"usable uplink p5 there {ul_p05_kbps / 1000:.1f} Mbit/s against "
            f"{required_kbps / 1000:.1f} required: reduce camera bitrate to "
            f"{ul_p05_kbps / 1000:.1f} Mbit/s{before}")


def fingerprint(path: str | Path) -> str:
    """A short hash of the map's cells: a replay can tell whether it has the map the
    recording hub looked ahead on."""
    digest = hashlib.sha256()
    try:
        with open(Path(path) / CELLS, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise LinkMapError(f"{path}: not a link map ({error.strerror}: {CELLS})") from None
    return digest.hexdigest()[:16]
