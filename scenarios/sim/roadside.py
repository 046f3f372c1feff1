"""Roadside units: their own status reports, and the V2I messages passing vehicles receive.

ITS Connect style RSUs broadcast every 100 ms and reach ~300 m; a vehicle reports how many
it has received from each, cumulatively, in its state message.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Final

from telemetry.wire import RsuStatus, Weather

V2I_RATE_HZ: Final = 10.0
V2I_RANGE_M: Final = 300.0


class Rsu:
    """One roadside unit: where it is, since when it is up, and its own status RNG."""

    __slots__ = (
        "boot", "boot_id", "cpu", "id", "intersection", "phase", "rng", "seq", "tick", "topic",
        "weather", "x", "y",
    )  # fmt: skip

    def __init__(self, rsu_id: str, intersection: str, topic: str, rng: random.Random,
                 weather: Weather | None = None) -> None:
        self.id = rsu_id
        #: What its road weather sensor reports: the simulated condition's weather.
        self.weather = weather
        self.intersection = intersection
        self.topic = topic
        self.rng = rng
        self.phase = 0.0  # offset of its status ticks within their period
        self.tick = 0
        self.x = self.y = 0.0
        self.boot = 0.0  # sim time it booted; V2I counts run from there
        self.boot_id = ""
        self.seq = 0
        self.cpu = 20.0

    def boot_before(self, start: float, period: float) -> None:
        """Up since some time in the month before ``start``; the boot id is what resets its
        counters. Status ticks fall at a random phase within ``period``."""
        rng = self.rng
        self.boot = start - rng.uniform(3_600.0, 30 * 86_400.0)
        self.boot_id = f"{self.id}-{rng.getrandbits(32):08x}"
        self.phase = period * (1.0 - rng.random())

    def status(self, t: float) -> RsuStatus:
        """The status report at sim time ``t``; advances ``seq``."""
        rng = self.rng
        # Backhaul over fibre / the local 5G core: a few ms, rarely more.
        rtt = 6.0 * math.exp(0.3 * rng.gauss(0.0, 1.0))
        if rng.random() < 0.005:
            rtt += rng.uniform(20.0, 150.0)
        self.cpu = min(95.0, max(3.0, self.cpu + 0.2 * (20.0 - self.cpu) + rng.gauss(0.0, 2.0)))
        status = RsuStatus(
            ts=t,
            seq=self.seq,
            intersection=self.intersection,
            health="ok",
            boot_id=self.boot_id,
            tx_msgs=math.floor((t - self.boot) * V2I_RATE_HZ),
            backhaul_rtt_ms=round(rtt, 1),
            cpu_pct=round(self.cpu, 1),
            weather=self.weather,
        )
        self.seq += 1
        return status


def v2i_receptions(
    rsus: Sequence[Rsu],
    received: dict[str, int],
    rng: random.Random,
    *,
    x: float,
    y: float,
    t: float,
    dt: float,
) -> dict[str, int] | None:
    """Cumulative V2I receptions from RSUs in range of ``(x, y)``; delivery falls off with
    distance.

    Counts what the RSUs broadcast during ``(t - dt, t]``, adds what got through to
    ``received`` (the vehicle's running totals, updated in place) and returns the totals of
    the RSUs in range, or ``None`` when none is. Draws from ``rng`` (the vehicle's).
    """
    seen: dict[str, int] | None = None
    for r in rsus:
        d = math.hypot(x - r.x, y - r.y)
        if d >= V2I_RANGE_M:
            continue
        sent = math.floor((t - r.boot) * V2I_RATE_HZ) - math.floor(
            (t - dt - r.boot) * V2I_RATE_HZ
        )
        pdr = 0.99 if d < 100.0 else 0.99 - 0.4 * (d - 100.0) / (V2I_RANGE_M - 100.0)
        got = sum(1 for _ in range(sent) if rng.random() < pdr)
        total = received.get(r.id, 0) + got
        received[r.id] = total
        if seen is None:
            seen = {}
        seen[r.id] = total
    return seen
