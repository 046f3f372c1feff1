"""Driving a route loop: cruise speed, braking before junctions, and keeping a following distance.

Rural L4 shuttles run at ~20 km/h (Eiheiji's Level 4 section is slower, ~12 km/h); inside an
intersection they slow to walking-plus pace, and they never close in on the shuttle ahead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Final

from telemetry.site import LocalFrame, Route, Site

CRUISE_MPS: Final = (5.8, 7.4)  # per-vehicle cruise speed range
JUNCTION_MPS: Final = 3.0  # inside an intersection
ACCEL: Final = 0.8  # m/s², comfortable for standing passengers
BRAKE: Final = 1.0  # m/s², planned slowing before junctions
PLAN_BRAKE: Final = 0.7  # m/s², the slope of the speed-limit profile ahead of junctions
HARD_BRAKE: Final = 2.5  # m/s², following distance and the minimal risk manoeuvre
HEADWAY_S: Final = 1.5
MIN_GAP_M: Final = 12.0
LIMIT_STEP_M: Final = 1.0  # resolution of the precomputed speed-limit profile


class Track:
    """A route loop in site metres, with a speed-limit profile that brakes before junctions.

    ``speed`` scales every limit (a condition model's speed factor: slower on snow).
    """

    def __init__(self, route: Route, frame: LocalFrame, site: Site, speed: float = 1.0) -> None:
        pts: list[tuple[float, float]] = []
        for lat, lon in route.waypoints:
            p = frame.to_xy(lat, lon)
            if not pts or p != pts[-1]:
                pts.append(p)
        if len(pts) > 2 and pts[-1] == pts[0]:
            pts.pop()
        n = len(pts)
        self.x0 = [p[0] for p in pts]
        self.y0 = [p[1] for p in pts]
        self.ux: list[float] = []
        self.uy: list[float] = []
        self.heading: list[float] = []
        self.cum = [0.0]
        for i in range(n):
            (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
            d = math.hypot(xb - xa, yb - ya)
            self.ux.append((xb - xa) / d)
            self.uy.append((yb - ya) / d)
            self.heading.append(round(math.degrees(math.atan2(xb - xa, yb - ya)) % 360.0, 1))
            self.cum.append(self.cum[-1] + d)
        self.length = self.cum[-1]
        # Speed limit every metre: junction speed inside intersections, and a braking ramp
        # before them (two backward passes so the ramp wraps around the loop's start). The
        # ramp is gentler than the brakes so that tracking it one tick late still arrives slow.
        steps = int(self.length / LIMIT_STEP_M) + 1
        limit = []
        seg = 0
        for k in range(steps):
            x, y, seg = self.position(k * LIMIT_STEP_M, seg)
            inside = site.intersection_at(*frame.to_latlon(x, y)) is not None
            limit.append((JUNCTION_MPS if inside else CRUISE_MPS[1]) * speed)
        for k in range(2 * steps - 1, -1, -1):
            i, j = k % steps, (k + 1) % steps
            ramp = math.sqrt(limit[j] ** 2 + 2.0 * PLAN_BRAKE * LIMIT_STEP_M)
            limit[i] = min(limit[i], ramp)
        self.limit = limit

    def position(self, s: float, seg: int) -> tuple[float, float, int]:
        """Point at arc length ``s`` (``0 <= s < length``), searching forward from ``seg``."""
        cum = self.cum
        if s < cum[seg]:
            seg = 0
        while s >= cum[seg + 1] and seg < len(self.ux) - 1:
            seg += 1
        d = s - cum[seg]
        return self.x0[seg] + self.ux[seg] * d, self.y0[seg] + self.uy[seg] * d, seg

    def limit_at(self, s: float) -> float:
        """The speed limit at arc length ``s`` (``0 <= s < length``)."""
        return self.limit[int(s / LIMIT_STEP_M)]


class Motion:
    """Where one shuttle is on its track and how fast it goes.

    It draws from the vehicle's own RNG (its cruise speed when built, a little speed wander
    every tick), which the vehicle shares with the radio: the order of draws is part of the
    output.
    """

    __slots__ = ("ahead", "cruise", "jitter", "rng", "s", "seg", "speed", "track")

    def __init__(self, track: Track, rng: random.Random, speed_factor: float = 1.0) -> None:
        self.track = track
        self.rng = rng
        self.cruise = rng.uniform(*CRUISE_MPS) * speed_factor
        self.jitter = 0.0
        self.s = 0.0  # arc length along the loop, metres
        self.seg = 0  # the track segment ``s`` is on
        self.speed = 0.0
        #: The shuttle ahead on the same loop (``None`` when alone): keep the distance to it.
        self.ahead: Motion | None = None

    @property
    def heading(self) -> float:
        """Degrees from north of the segment being driven."""
        return self.track.heading[self.seg]

    def drive(self, dt: float, *, mrm: bool) -> tuple[float, float, float]:
        """Move one tick along the loop; returns the new position and the distance moved.

        ``mrm``: a minimal risk manoeuvre, a hard-braked stop in lane.
        """
        track = self.track
        self.jitter = 0.98 * self.jitter + self.rng.gauss(0.0, 0.05)  # ~0.25 m/s of wander
        ahead_s = (self.s + self.speed * dt) % track.length  # the limit where this tick will end
        target = min(self.cruise + self.jitter, track.limit_at(ahead_s))
        brake = BRAKE
        if mrm:
            target, brake = 0.0, HARD_BRAKE
        ahead = self.ahead
        if ahead is not None:
            gap = (ahead.s - self.s) % track.length
            follow = max(0.0, (gap - MIN_GAP_M) / HEADWAY_S)
            if follow < target:
                target, brake = follow, HARD_BRAKE
        dv = target - self.speed
        self.speed = max(0.0, self.speed + max(-brake * dt, min(ACCEL * dt, dv)))
        moved = self.speed * dt
        s = self.s + moved
        if s >= track.length:
            s -= track.length
        self.s = s
        x, y, self.seg = track.position(s, self.seg)
        return x, y, moved


def space_evenly(track: Track, group: Sequence[Motion]) -> None:
    """Put ``group`` on ``track`` at equal spacing, each following the next, at a safe speed."""
    spacing = track.length / max(1, len(group))
    for k, m in enumerate(group):
        m.s = (k * spacing) % track.length
        m.ahead = group[(k + 1) % len(group)] if len(group) > 1 else None
        m.speed = min(m.cruise, track.limit_at(m.s))
        _, _, m.seg = track.position(m.s, 0)
