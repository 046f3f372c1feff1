"""Replay speed: a generated drive log through the live pipeline at ``--speed max``.

Run: ``.venv/bin/python bench/replay.py [--vehicles 10] [--minutes 60]``

Generates (once, cached under the system temp dir) a drive log of ``--vehicles`` shuttles x
``--minutes`` x 3 streams x 10 Hz from the simulator (~1.1 M records for 10 vehicles x 1 h),
then replays it the way ``l4mon replay LOG --speed max`` does, timing the parts separately
(reading and re-encoding the log; the replay itself) on one core (this process). The baseline
is real time: the ratio is log duration / replay wall time.

Target (issue 4): >= 200x real time, i.e. under 18 s for 10 vehicles x 1 h.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scenarios import replay
from scenarios.simfleet import SimFleet
from telemetry.decode import Decoder
from telemetry.drivelog import (
    DriveLogWriter,
    Manifest,
    read_manifest,
    read_table,
    wire_messages,
)
from telemetry.site import DEMO_SITE_PATH, load_site

START = 1_767_225_600.0


def generate(path: Path, vehicles: int, minutes: float) -> None:
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=vehicles, seed=42, start=START)
    decoder = Decoder(max_age_s=1e12)
    writer = DriveLogWriter(path, manifest=Manifest(site=site.name,
                                                    source={"kind": "generator"}))
    t = START
    end = START + minutes * 60
    while t < end:
        t = round(t + 0.1, 6)
        for topic, payload in fleet.advance(t):
            route, msg = decoder.decode(topic, payload, t)
            writer.add(t, route, msg, topic=topic, payload=payload)
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=60.0)
    args = ap.parse_args()
    path = Path(tempfile.gettempdir()) / f"l4mon-bench-log-{args.vehicles}v-{args.minutes:g}m"
    if not (path / "manifest.json").exists():
        began = time.perf_counter()
        generate(path, args.vehicles, args.minutes)
        print(f"generated {path} in {time.perf_counter() - began:.1f} s", flush=True)
    manifest = read_manifest(path)
    duration = (manifest.end or 0) - (manifest.start or 0)
    began = time.perf_counter()
    cpu = time.process_time()
    table = read_table(path)
    deliveries = list(wire_messages(table))
    read_s = time.perf_counter() - began
    outcome = replay.run(deliveries)
    kpis = replay.kpis(outcome)
    total_s = time.perf_counter() - began
    cpu_s = time.process_time() - cpu
    print(f"log: {manifest.messages:,} records, {len(manifest.vehicles)} vehicles, "
          f"{duration / 60:.1f} min")
    print(f"read + re-encode: {read_s:.2f} s; replay (ingest + ticks + alerts): "
          f"{total_s - read_s:.2f} s; total {total_s:.2f} s wall, {cpu_s:.2f} s CPU")
    print(f"{manifest.messages / total_s:,.0f} records/s; {duration / total_s:,.0f}x real time "
          f"(target >= 200x: {'PASS' if duration / total_s >= 200 else 'FAIL'})")
    print(f"alerts: {len(outcome.alerts)}; vehicles in KPIs: {len(kpis)}")


if __name__ == "__main__":
    main()
