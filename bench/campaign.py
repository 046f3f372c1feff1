"""Campaign scaling: ``l4mon replay FOLDER --workers 1`` against ``--workers 2`` (and a Dask
cluster), the real command in a child process, alternating, with the spread.

Run: ``.venv/bin/python bench/campaign.py [--logs 6] [--vehicles 10] [--minutes 60]
[--repeats 3] [--cluster]``, or ``bench/campaign.py engines [--repeats 2]`` for the engines'
own costs.

The campaign is ``--logs`` copies (hard links: no disk space) of bench/replay.py's generated
fleet log (``--vehicles`` x ``--minutes``, cached under the system temp dir as that script
caches it), so every task is the same known work: the 10-shuttle hour by default. Each run is
``python -m l4mon replay FOLDER --out OUT --workers N`` (``--cluster``: ``--cluster ADDRESS``
of a Dask ``LocalCluster`` of 2 single-threaded worker processes this script starts first),
timed as a user waits for it, start-up included, with the CPU time of the command and its
worker processes (which other load on a shared machine does not inflate, unlike the wall).
The order of the sides swaps every repeat. Printed: every run's wall and CPU time; per pair
the ratio wall(1) / wall(2) with median and min-max; whether every output file of every run
is byte-identical to the first serial run's; and the per-core rate (vehicle-hours replayed per
core-hour, from the serial runs) with the hours the 240,000 vehicle-hour campaign (100 sites x
10 shuttles x 8 h x 30 days) takes on one core and on C cores at the measured efficiency.

``engines``: for Dask and Ray each (Ray only if it imports: it is not a dependency; measure it
with ``PYTHONPATH=DIR`` of a ``pip install --target DIR ray``), in a fresh child process: the
import, a 2-worker local cluster up to its first 2 tasks done, 500 no-op tasks (per task), 20
tasks returning 4 MB (a large results.json) and the shut-down.

Target: scaling >= 1.8x on 2 cores. The machine may be shared: say so with the
figures, and re-run when the spread is wide.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from replay import LOG_VERSION, generate  # a sibling script: see bench/__init__.py

from telemetry.drivelog import read_manifest
from testing.entry import cli

ROOT = Path(__file__).resolve().parent.parent
TARGET_X = 1.8
CAMPAIGN_VEHICLE_HOURS = 100 * 10 * 8 * 30  # sites x shuttles x hours x days


@dataclass
class Run:
    label: str
    wall_s: float
    out: Path
    summary: str
    cpu_s: float  # the command's and its worker processes' user + system time


def _tree_env() -> dict[str, str]:
    """This tree first on the path; what the caller's path adds (a Ray to measure) after."""
    given = os.environ.get("PYTHONPATH", "")
    path = os.pathsep.join([str(ROOT), *(p for p in given.split(os.pathsep) if p)])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def campaign_folder(logs: int, vehicles: int, minutes: float) -> tuple[Path, float]:
    """``logs`` hard-linked copies of the cached generated log; its vehicle-hours each."""
    source = Path(tempfile.gettempdir()) / (f"l4mon-bench-replay-sim-{vehicles}v-"
                                            f"{minutes:g}m-v{LOG_VERSION}")
    if not (source / "manifest.json").exists():
        began = time.perf_counter()
        generate(source, vehicles, minutes)
        print(f"generated {source} in {time.perf_counter() - began:.1f} s", flush=True)
    folder = Path(tempfile.gettempdir()) / f"l4mon-bench-campaign-{source.name}-x{logs}"
    for n in range(logs):
        copy = folder / f"log-{n:03d}"
        if not (copy / "manifest.json").exists():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source, copy, copy_function=os.link)
    manifest = read_manifest(source)
    hours = len(manifest.vehicles) * ((manifest.end or 0.0) - (manifest.start or 0.0)) / 3600
    return folder, hours


def replay_run(label: str, folder: Path, out: Path, extra: list[str], timeout_s: float) -> Run:
    """``l4mon replay FOLDER --out OUT EXTRA`` in a child, timed from start to exit."""
    shutil.rmtree(out, ignore_errors=True)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([*cli(ROOT), "replay", str(folder), "--out",
                           str(out), *extra], cwd=ROOT, env=_tree_env(), capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{label}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return Run(label=label, wall_s=wall, out=out, cpu_s=cpu,
               summary=(done.stdout.strip().splitlines() or ["(no output)"])[-1])


def files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def _spread(values: list[float], fmt: str = ".2f") -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):{fmt}} (min-max {ordered[0]:{fmt}}-"
            f"{ordered[-1]:{fmt}}, n={len(ordered)})")


def scaling(args: argparse.Namespace) -> None:
    folder, hours_each = campaign_folder(args.logs, args.vehicles, args.minutes)
    total_h = hours_each * args.logs
    print(f"campaign: {folder}: {args.logs} logs x {hours_each:g} vehicle-hours = "
          f"{total_h:g} vehicle-hours; load average now {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    work = Path(tempfile.mkdtemp(prefix="l4mon-bench-campaign-out-"))
    sides: list[tuple[str, list[str]]] = [("workers=1", ["--workers", "1"]),
                                          ("workers=2", ["--workers", "2"])]
    cluster = None
    if args.cluster:
        from distributed import LocalCluster

        began = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        print(f"Dask LocalCluster (2 workers x 1 thread) at {cluster.scheduler_address} up in "
              f"{time.perf_counter() - began:.2f} s", flush=True)
        sides.append(("dask-2", ["--cluster", cluster.scheduler_address]))
    runs: list[Run] = []
    try:
        for repeat in range(args.repeats):
            for label, extra in sides if repeat % 2 == 0 else sides[::-1]:
                run = replay_run(label, folder, work / f"{label}-{repeat}", extra,
                                 args.timeout)
                runs.append(run)
                print(f"  [{repeat}] {label:<9} {run.wall_s:7.2f} s wall {run.cpu_s:7.2f} s CPU "
                      f"{total_h / (run.wall_s / 3600):8,.0f} vehicle-h per wall-h", flush=True)
    finally:
        if cluster is not None:
            cluster.close()
    reference = files_of(runs[0].out) if runs[0].label == "workers=1" else \
        files_of(next(r for r in runs if r.label == "workers=1").out)
    identical = all(files_of(r.out) == reference for r in runs)
    print(f"  outputs: {len(reference)} files per run; every run's bytes identical to "
          f"workers=1's: {'YES' if identical else 'NO'}", flush=True)
    print(f"  last summary: {runs[-1].summary}", flush=True)
    by = {label: [r.wall_s for r in runs if r.label == label] for label, _ in sides}
    for label, walls in by.items():
        cpus = [r.cpu_s for r in runs if r.label == label]
        print(f"  {label}: wall {_spread(walls)} s; CPU {_spread(cpus)} s (a cluster's "
              "workers are not this command's children: their CPU is not counted)", flush=True)
    for label in [label for label, _ in sides if label != "workers=1"]:
        ratios = [one / other for one, other in zip(by["workers=1"], by[label], strict=True)]
        verdict = "PASS" if statistics.median(ratios) >= TARGET_X else "FAIL"
        print(f"  scaling workers=1 / {label}: {_spread(ratios)} (target >= {TARGET_X}: "
              f"{verdict})", flush=True)
    serial_cpu = statistics.median(r.cpu_s for r in runs if r.label == "workers=1")
    parallel_cpu = statistics.median(r.cpu_s for r in runs if r.label == "workers=2")
    print(f"  per core by CPU time (what a shared machine's load does not stretch): "
          f"{total_h / (serial_cpu / 3600):,.0f} vehicle-hours per CPU-hour; CPU workers=2 / "
          f"workers=1: {parallel_cpu / serial_cpu:.3f}", flush=True)
    per_core = total_h / (statistics.median(by["workers=1"]) / 3600)  # vehicle-h per core-h
    efficiency = statistics.median(
        one / two / 2 for one, two in zip(by["workers=1"], by["workers=2"], strict=True))
    one_core_h = CAMPAIGN_VEHICLE_HOURS / per_core
    print(f"  per core by wall time: {per_core:,.0f} vehicle-hours per core-hour; the 240,000 "
          f"vehicle-hour campaign: {one_core_h:,.1f} core-hours, i.e. on C cores at the "
          f"measured 2-core efficiency {efficiency:.0%}: {one_core_h / efficiency:,.1f} / C hours "
          f"(C = 64: {one_core_h / efficiency / 64:,.2f} h)", flush=True)
    shutil.rmtree(work, ignore_errors=True)


_PROBE = r'''
import json, sys, time
def noop(x): return x
def blob(n): return b"x" * n
def main(engine):
    t0 = time.perf_counter()
    if engine == "dask":
        from distributed import Client, LocalCluster
        imported = time.perf_counter() - t0
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        run = lambda fn, xs: client.gather(client.map(fn, xs, pure=False))
        def stop(): client.close(); cluster.close()
    else:
        import ray
        imported = time.perf_counter() - t0
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        remote = {}
        def run(fn, xs):
            r = remote.setdefault(fn, ray.remote(fn))
            return ray.get([r.remote(x) for x in xs])
        stop = ray.shutdown
    run(noop, range(2))
    up = time.perf_counter() - t0
    t = time.perf_counter(); run(noop, range(500)); noop_ms = (time.perf_counter() - t) * 2
    t = time.perf_counter(); run(blob, [4_000_000] * 20); blob_ms = (time.perf_counter() - t) * 50
    t = time.perf_counter(); stop(); down = time.perf_counter() - t
    print(json.dumps({"import_s": imported, "startup_s": up, "noop_ms": noop_ms,
                      "blob4mb_ms": blob_ms, "shutdown_s": down}))
if __name__ == "__main__":
    main(sys.argv[1])
'''


def engines(args: argparse.Namespace) -> None:
    import importlib.util

    present = [e for e, module in (("dask", "distributed"), ("ray", "ray"))
               if importlib.util.find_spec(module) is not None]
    print(f"engines found: {', '.join(present) or 'none'}", flush=True)
    figures: dict[str, list[dict[str, float]]] = {e: [] for e in present}
    for repeat in range(args.repeats):
        for engine in present if repeat % 2 == 0 else present[::-1]:
            done = subprocess.run([sys.executable, "-c", _PROBE, engine], cwd=ROOT,
                                  env=_tree_env(), capture_output=True, text=True,
                                  timeout=args.timeout, check=False)
            line = [s for s in done.stdout.splitlines() if s.startswith("{")]
            if done.returncode != 0 or not line:
                print(f"  [{repeat}] {engine}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            got = json.loads(line[-1])
            figures[engine].append(got)
            print(f"  [{repeat}] {engine:<5} import {got['import_s']:.2f} s, 2 workers up "
                  f"{got['startup_s']:.2f} s, no-op task {got['noop_ms']:.2f} ms, 4 MB result "
                  f"{got['blob4mb_ms']:.1f} ms, shut-down {got['shutdown_s']:.2f} s",
                  flush=True)
    for engine, runs in figures.items():
        if runs:
            print(f"  {engine}: up {_spread([r['startup_s'] for r in runs])} s; per task "
                  f"{_spread([r['noop_ms'] for r in runs])} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", choices=["scaling", "engines"], default="scaling")
    ap.add_argument("--logs", type=int, default=6, help="logs in the campaign")
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3, help="runs per side")
    ap.add_argument("--cluster", action="store_true",
                    help="also run on a Dask LocalCluster of 2 workers")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = ap.parse_args()
    if min(args.logs, args.vehicles, args.repeats) < 1 or args.minutes <= 0:
        ap.error("--logs, --vehicles and --repeats must be >= 1, --minutes > 0")
    (engines if args.mode == "engines" else scaling)(args)


if __name__ == "__main__":
    main()
