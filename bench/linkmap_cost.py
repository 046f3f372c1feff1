"""What the link map costs: building one from a fleet's log, and looking ahead on it in replay.

Run: ``.venv/bin/python bench/linkmap_cost.py [--vehicles 10] [--minutes 30] [--repeats 3]``

Two logs of the simulated fleet on the demo site, as ``serve --record`` writes them
(bench/replay.py's generator, cached under the system temp dir): a *training* log (seed 43)
and a *subject* log (seed 42, bench/replay.py's own). Every figure is a real command in a
child process (bench/replay_log.py: wall, CPU, the child's own peak RSS), alternating with
its baseline and swapping the order every repeat:

1. **build**: ``l4mon linkmap build TRAINING --out MAP`` against ``l4mon replay TRAINING``,
   the replay a build must do anyway (it replays the log through the hub for its link
   states): the ratio is what placing samples, ticks and handovers in cells adds. Also
   printed: the build's records/s and the map's rows.
2. **look-ahead**: ``l4mon replay SUBJECT --linkmap MAP`` against ``l4mon replay SUBJECT``:
   what looking ahead of every vehicle, at every evaluation of its link rules, costs a
   replay (and so a live hub's tick). The two results documents must agree on every figure
   but the alerts; the warnings raised are counted.

Printed: each run, and subject / baseline wall and CPU as the median with its min-max.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from replay import LOG_VERSION, generate  # sibling scripts: see bench/__init__.py
from replay_log import Run, command_in_child, differences, replay_in_child

from telemetry.drivelog import read_manifest
from telemetry.linkmap import read_manifest as read_map_manifest

ROOT = Path(__file__).resolve().parent.parent


def _log(vehicles: int, minutes: float, seed: int) -> Path:
    name = f"l4mon-bench-replay-sim-{vehicles}v-{minutes:g}m-v{LOG_VERSION}"
    log = Path(tempfile.gettempdir()) / (name if seed == 42 else f"{name}-seed{seed}")
    if not (log / "manifest.json").exists():
        began = time.perf_counter()
        generate(log, vehicles, minutes, seed=seed)
        print(f"generated {log} in {time.perf_counter() - began:.1f} s", flush=True)
    return log


def _spread(values: list[float], fmt: str = ".3f") -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):{fmt}} (min-max {ordered[0]:{fmt}}-"
            f"{ordered[-1]:{fmt}}, n={len(ordered)})")


def _show(run: Run, records: int) -> None:
    if run.status != "ok":
        print(f"    {run.label:9} {run.status}", flush=True)
        return
    print(f"    {run.label:9} wall {run.wall_s:7.2f} s  CPU {run.cpu_s:7.2f} s  peak RSS "
          f"{run.peak_rss_mib:6,.0f} MiB  {records / run.wall_s:9,.0f} records/s", flush=True)


def _pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    base = [r for r in runs if r.label == "baseline"]
    subj = [r for r in runs if r.label != "baseline"]
    return [(b, s) for b, s in zip(base, subj, strict=True) if b.status == s.status == "ok"]


def _ratio(runs: list[Run]) -> None:
    pairs = _pairs(runs)
    if pairs:
        print(f"  subject / baseline wall: {_spread([s.wall_s / b.wall_s for b, s in pairs])}; "
              f"CPU: {_spread([s.cpu_s / b.cpu_s for b, s in pairs])}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    args = ap.parse_args()
    if args.vehicles < 1 or args.minutes <= 0 or args.repeats < 1:
        ap.error("--vehicles and --repeats must be >= 1, --minutes > 0")
    limit_kib = 8 * 2**20
    training = _log(args.vehicles, args.minutes, seed=43)
    subject = _log(args.vehicles, args.minutes, seed=42)
    work = Path(tempfile.mkdtemp(prefix="l4mon-bench-linkmap-"))
    try:
        linkmap = work / "map"
        out = work / "results.json"
        records = read_manifest(training).messages
        print(f"\nbuild: {training} ({records:,} records, {args.vehicles} vehicles, "
              f"{args.minutes:g} min)", flush=True)
        runs: list[Run] = []
        for repeat in range(args.repeats):
            order = ["baseline", "build"] if repeat % 2 == 0 else ["build", "baseline"]
            for label in order:
                if label == "build":
                    shutil.rmtree(linkmap, ignore_errors=True)
                    run = command_in_child(ROOT, ["linkmap", "build", str(training), "--out",
                                                  str(linkmap)], work / "build.json",
                                           label="build", timeout_s=args.timeout,
                                           rss_limit_kib=limit_kib)
                else:
                    run = replay_in_child(ROOT, training, out, label="baseline",
                                          timeout_s=args.timeout, rss_limit_kib=limit_kib)
                runs.append(run)
                _show(run, records)
        _ratio(runs)
        if not (linkmap / "manifest.json").exists():
            raise SystemExit("the build did not write a map")
        info = read_map_manifest(linkmap)
        print(f"  map: {info.rows:,} rows, {info.drives} drives, links {info.links}, "
              f"conditions {info.conditions}", flush=True)

        records = read_manifest(subject).messages
        print(f"\nlook-ahead: {subject} ({records:,} records) with that map", flush=True)
        runs = []
        for repeat in range(args.repeats):
            for label in (["baseline", "linkmap"] if repeat % 2 == 0
                          else ["linkmap", "baseline"]):
                extra = ["--linkmap", str(linkmap)] if label == "linkmap" else []
                run = replay_in_child(ROOT, subject, work / f"{label}.json", label=label,
                                      timeout_s=args.timeout, rss_limit_kib=limit_kib,
                                      extra=extra)
                runs.append(run)
                _show(run, records)
        _ratio(runs)
        pairs = _pairs(runs)
        if pairs:
            base, subj = (r.doc or {} for r in pairs[-1])
            warned = [a for a in subj.get("alerts", []) if a["rule"] == "weak_link_ahead"]
            others = [a for a in subj.get("alerts", []) if a["rule"] != "weak_link_ahead"]
            same = len(others) == len(base.get("alerts", []))
            diff, _ = differences({k: v for k, v in base.items() if k not in ("input", "alerts")},
                                  {k: v for k, v in subj.items() if k not in ("input", "alerts")})
            print(f"  weak_link_ahead warnings: {len(warned)} on "
                  f"{len({a['vehicle'] for a in warned})} vehicles; other alerts "
                  f"{'the same count' if same else 'DIFFER'} ({len(others)}); other figures "
                  f"differing: {len(diff)}{' ' + ', '.join(diff[:5]) if diff else ''}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
