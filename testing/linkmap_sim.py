"""Simulated drives of the demo site with placed weak spots on the local 5G link: the data
the link map's evaluation bench (bench/linkmap_eval.py) and its tests build maps from.

Two spots: on the east leg the modem reports no service on 80 % of passes, on the north leg
RTT rises by 400 ms on 70 % of passes. Which passes a spot affects is a hash of the seed,
vehicle and pass number, so the same seed gives the same drive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from scenarios.conditions import model_for
from scenarios.sim import SimFleet
from telemetry import codec
from telemetry.decode import Decoder
from telemetry.drivelog import DriveLogWriter, Manifest
from telemetry.site import DEMO_SITE_PATH, distance_m, load_site
from telemetry.wire import LinkSample

SIM_START: Final = 1_767_225_600.0


@dataclass(frozen=True)
class PlacedSpot:
    name: str
    lat: float
    lon: float
    radius_m: float
    share: float  # of passes affected
    kind: str  # "no_service" or "rtt"


SPOTS: Final = (
    PlacedSpot("east leg", 36.063349, 136.346398, 40.0, 0.8, "no_service"),
    PlacedSpot("north leg", 36.065076, 136.341781, 40.0, 0.7, "rtt"),
)


def placed(stream: Iterator[tuple[float, str, bytes]], seed: int,
           spots: Sequence[PlacedSpot] = SPOTS) -> Iterator[tuple[float, str, bytes]]:
    """The local 5G link inside a weak spot, on the passes the spot affects."""
    where: dict[str, tuple[float, float]] = {}
    inside: dict[tuple[str, str], bool] = {}
    passes: dict[tuple[str, str], int] = {}
    for at, topic, original in stream:
        payload = original
        parts = topic.split("/")
        vehicle = parts[4] if len(parts) > 4 else ""
        if parts[-1] == "state":
            data = codec.decode(payload, None)
            where[vehicle] = (data["lat"], data["lon"])
        elif parts[-1] == "l5g" and vehicle in where:
            for spot in spots:
                key = (vehicle, spot.name)
                now_in = distance_m(*where[vehicle], spot.lat, spot.lon) <= spot.radius_m
                if now_in and not inside.get(key):
                    passes[key] = passes.get(key, 0) + 1
                inside[key] = now_in
                digest = hashlib.blake2s(f"{seed}|{key}|{passes.get(key)}".encode(),
                                         digest_size=4).digest()
                if not now_in or int.from_bytes(digest, "big") / 2**32 >= spot.share:
                    continue
                msg = codec.decode(payload, None, LinkSample)
                if spot.kind == "no_service":
                    msg = LinkSample(ts=msg.ts, seq=msg.seq, rat="none", probe=False,
                                     sender_clock=msg.sender_clock)
                elif msg.rtt_ms is not None:
                    msg = msgspec.structs.replace(msg, rtt_ms=msg.rtt_ms + 400.0)
                payload = codec.encode(msg, None)
        yield at, topic, payload


def sim_logs(tmp: Path, drives: int = 5, laps_s: float = 900.0, *,
             condition: str = "snow-daylight", first_seed: int = 1,
             spots: Sequence[PlacedSpot] = SPOTS) -> list[Path]:
    """``drives`` logs of one vehicle driving the demo loop for ``laps_s`` under
    ``condition``, a day apart, in ``tmp``."""
    site = load_site(DEMO_SITE_PATH)
    model = model_for(condition)
    decoder = Decoder(max_age_s=1e12, max_ahead_s=1e12)
    logs = []
    for seed in range(first_seed, first_seed + drives):
        start = SIM_START + seed * 86_400.0  # a drive a day
        fleet = SimFleet(site=site, vehicles=1, rate_hz=10.0, rsu_rate_hz=0.0, seed=seed,
                         start=start, conditions=model)

        def raw(fleet: SimFleet = fleet, start: float = start
                ) -> Iterator[tuple[float, str, bytes]]:
            n = 1
            while (now := start + n * 0.05) <= start + laps_s:
                for topic, payload in fleet.advance(now):
                    yield now, topic, payload
                n += 1

        out = tmp / f"sim-{seed}"
        writer = DriveLogWriter(out, manifest=Manifest(
            site=site.name, conditions=model.conditions,
            source={"kind": "generator", "seed": str(seed), "weak_spots": "placed"}))
        for at, topic, payload in placed(raw(), seed, spots):
            route, msg, _ = decoder.decode(topic, payload, at)
            writer.add(at, route, msg, topic=topic, payload=payload)
        writer.close()
        logs.append(out)
    return logs
