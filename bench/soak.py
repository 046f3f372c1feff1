"""Soak: a real ``l4mon serve`` at the benchmark load for a long time, its memory sampled.

Run: ``.venv/bin/python bench/soak.py [--minutes 30] [--load 30000] [--vehicles 1000]``

A real Mosquitto and ``l4mon serve`` (own process, default config: handover detection, alert
engine, journal), the blaster publishing ``--vehicles`` x 3 streams at ``--load`` msg/s for
``--minutes``. Every ``--sample-s`` the hub's resident memory (``/proc/PID/status`` VmRSS) and
its ingest counters are read. State per vehicle is bounded (60 s windows of at most 1,200
samples per link, a 64-sample handover ring, bounded event, handover and quarantine logs), so
after the windows have filled (``--warmup-min``) memory must stay flat: the bench fails when it
grows by more than ``--bound-mb`` from the end of the warm-up to the end, or when the fitted
trend over that stretch would add more than ``--bound-mb`` per hour. It also fails if the hub
lost messages it received (quarantined or dropped from its buffer).

Bounded in time: the run stops after ``--minutes`` (plus start-up), whatever happens.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from l4mon.auth import hash_token
from testing.blaster import start_blaster
from testing.broker import free_port, running_broker

TOKEN = "soak-token"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _metric(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 60.0 * sum((t - mx) * (m - my) for t, m in points) / var


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup-min", type=float, default=3.0,
                    help="minutes before memory is expected flat (windows filling)")
    ap.add_argument("--load", type=float, default=30_000.0, help="msgs/s")
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--bound-mb", type=float, default=32.0)
    args = ap.parse_args()
    if args.warmup_min >= args.minutes:
        ap.error("--warmup-min must be shorter than --minutes")
    samples: list[tuple[float, float, int]] = []  # (seconds since start, MB, received)
    with running_broker() as broker, tempfile.TemporaryDirectory() as state:
        http_port = free_port()
        config = Path(state) / "hub.toml"
        config.write_text(f'[alerts]\njournal = "{state}/journal.sqlite"\n'
                          f'[[auth.tokens]]\nname = "soak"\nrole = "viewer"\n'
                          f'sha256 = "{hash_token(TOKEN)}"\n')
        hub = subprocess.Popen(
            [sys.executable, "-m", "l4mon", "serve", "--config", str(config), "--broker",
             broker.url, "--http", f"127.0.0.1:{http_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        blaster = None
        health: dict = {}
        dropped = 0.0
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=10.0,
                              headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                for _ in range(200):
                    try:
                        if http.get("/healthz").json()["mqtt"]["connected"]:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.05)
                blaster = start_blaster(host=broker.host, port=broker.port,
                                        vehicles=args.vehicles, rate=args.load,
                                        duration_s=args.minutes * 60 + 5, qos=0)
                start = time.monotonic()
                end = start + args.minutes * 60
                while time.monotonic() < end:
                    time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                    if hub.poll() is not None:
                        raise RuntimeError(f"the hub exited with {hub.returncode}")
                    health = http.get("/healthz").json()
                    dropped = _metric(http.get("/metrics").text, "l4mon_ingest_dropped_total")
                    at = time.monotonic() - start
                    samples.append((at, rss_mb(hub.pid), health["ingest"]["received"]))
                    print(f"  {at / 60:5.1f} min  RSS {samples[-1][1]:7.1f} MB  "
                          f"received {samples[-1][2]:,}", flush=True)
        finally:
            if blaster is not None:
                blaster.terminate()
            hub.terminate()
            hub.wait(timeout=10)
    steady = [(t, mb) for t, mb, _ in samples if t >= args.warmup_min * 60]
    if len(steady) < 2:
        print("too few samples after the warm-up")
        sys.exit(2)
    growth = steady[-1][1] - steady[0][1]
    trend = slope_per_min(steady) * 60.0
    ingest = health.get("ingest", {})
    lost = ingest.get("quarantined", 0) + dropped
    rate = (samples[-1][2] - samples[0][2]) / max(1e-9, samples[-1][0] - samples[0][0])
    print(f"\n{args.minutes:g} min at {args.load:,.0f} msg/s offered ({args.vehicles} vehicles x "
          f"3 streams); hub ingested {rate:,.0f} msg/s, {samples[-1][2]:,} messages")
    print(f"RSS after warm-up ({args.warmup_min:g} min) {steady[0][1]:.1f} MB, at the end "
          f"{steady[-1][1]:.1f} MB, peak {max(mb for _, mb in steady):.1f} MB")
    print(f"growth {growth:+.1f} MB; trend {trend:+.1f} MB/hour (bound {args.bound_mb:g} MB); "
          f"quarantined or dropped: {lost}")
    ok = growth <= args.bound_mb and trend <= args.bound_mb and lost == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
