"""Replay speed: ``l4mon replay LOG --speed max`` on a generated fleet hour, as users run it.

Run: ``.venv/bin/python bench/replay.py [--vehicles 10] [--minutes 60] [--baseline TREE
--repeats 3] [--trace FILE ...]``

Generates (once, cached under the system temp dir) a drive log of ``--vehicles`` shuttles x
``--minutes`` x 3 streams x 10 Hz plus the site's RSUs from the simulator on the demo site
(~1.1 M records for 10 vehicles x 1 h), recorded as ``serve --record`` would with the demo
site configured: topic and payload as received, and the hub's default config, rules and site
plan in the manifest, so the replay detects handovers and tags intersections as a user's
replay of a recording does. Then times the real command, ``python -m l4mon replay LOG --speed
max --out results.json``, in a child process (bench/replay_log.py's ``replay_in_child``):
wall time, CPU time (the child's rusage), peak RSS (its own VmHWM: testing/peak_memory.py),
records/s and times real time (log duration / wall; the child's start-up is included, as a
user waits for it too).

``--baseline TREE`` runs the same command from another copy of the project (e.g. ``git
worktree add /tmp/base REV``) on the same log, alternating with this tree in every repeat
and swapping the order each repeat; each tree's import path is printed once, to show which
code ran. Printed: every run, and subject / baseline wall and CPU as the median with its
min-max over the repeats; the last two results documents are compared figure by figure (a
baseline from before the WGS84 frame, telemetry/geodesy.py, measures distances 0.2-0.6 %
differently: figures that hang on a position near a zone's edge, such as time in an
intersection, may differ there, and that is the frame, not a regression). A
baseline that cannot read this log's manifest (drive-log version 1) gets a copy with a
version 1 manifest: the same rows, without the recorded config, rules and site plan.

``--trace FILE`` (repeatable) also imports real drive-test traces (``--trace-format``,
default cicv5g: ../shared/data/cicv5g) with this tree and replays that log the same way: the
import path, every row re-encoded.

Identity (issue 27): every run's results file is hashed (SHA-256 of its bytes, the
``input`` block with the log's path and all); the sides' hashes are printed and compared, so
"bit for bit" is checked, not assumed. Both sides replay the same log path unless the baseline
needs a compatible copy, whose different path would show in ``input``: then only the figures
are compared.

Start-up: each tree's own packages are compiled to bytecode first (``compileall``), as an
installed package is. Otherwise a shell with ``PYTHONDONTWRITEBYTECODE`` set (as this
project's sessions have) compiles every module in every run, ~1 s of CPU that no user pays.

Target (issue 4): >= 200x real time, i.e. under 18 s for 10 vehicles x 1 h; issue 27: >=
1,000x per core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from replay_log import (  # a sibling script: see bench/__init__.py
    Run,
    _v1_copy,
    code_path,
    compat_copy,
    differences,
    replay_in_child,
    tree_env,
)

from l4mon.config import HubConfig, SiteSettings
from l4mon.context import recorded
from scenarios.sim import SimFleet
from telemetry.decode import Decoder
from telemetry.drivelog import DriveLogWriter, Manifest, read_manifest
from telemetry.site import DEMO_SITE_PATH, load_site
from testing.entry import cli

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600.0
#: Part of the cache's name: bump it when ``generate`` writes something else, so that a log
#: cached by an older version of this script is not measured as if it were today's.
LOG_VERSION = 3
TARGET_X = 1_000.0
#: The tree's own packages, compiled before timing (see the docstring).
PACKAGES = ("l4mon", "telemetry", "scenarios", "handover")


def generate(path: Path, vehicles: int, minutes: float, *, seed: int = 42) -> None:
    """The simulated fleet as a recording hub with the demo site would have written it.
    Written to a temp name and renamed, so an interrupted run leaves no half log cached."""
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=vehicles, seed=seed, start=START)
    decoder = Decoder(max_age_s=1e12)
    context = recorded(HubConfig(site=SiteSettings(path=str(DEMO_SITE_PATH))), site)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    writer = DriveLogWriter(partial, manifest=Manifest(
        site=site.name,
        source={"kind": "generator", "notes": f"bench/replay.py: SimFleet seed {seed}"},
        **context))
    steps = round(minutes * 600)  # 0.1 s steps: a bounded loop
    for step in range(1, steps + 1):
        t = round(START + step * 0.1, 6)
        for topic, payload in fleet.advance(t):
            route, msg, _ = decoder.decode(topic, payload, t)
            writer.add(t, route, msg, topic=topic, payload=payload)
    writer.close()
    partial.rename(path)


def import_trace(files: list[Path], fmt: str) -> Path:
    """``l4mon import FMT FILES --out LOG`` with this tree, cached by the files' names, sizes
    and times."""
    key = hashlib.sha1(json.dumps(
        [fmt] + [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime] for f in files])
        .encode()).hexdigest()[:12]
    log = Path(tempfile.gettempdir()) / f"l4mon-bench-replay-trace-{key}"
    if not (log / "manifest.json").exists():
        shutil.rmtree(log, ignore_errors=True)
        done = subprocess.run([*cli(ROOT), "import", fmt,
                               *map(str, files), "--out", str(log)], cwd=ROOT,
                              env=tree_env(ROOT), capture_output=True, text=True,
                              timeout=600, check=False)
        if done.returncode != 0:
            raise SystemExit(f"import failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return log


def precompile(tree: Path) -> None:
    """Bytecode for ``tree``'s packages, so a timed run imports rather than compiles them."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=tree,
                   capture_output=True, timeout=300, check=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "(none)"


def readable(tree: Path, log: Path) -> bool:
    """Whether ``tree``'s code reads this log's manifest (an older tree may not know its
    version or fields)."""
    probe = "import sys; from telemetry.drivelog import read_manifest; read_manifest(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", probe, str(log)], cwd=tree, env=tree_env(tree),
                          capture_output=True, timeout=60, check=False)
    return done.returncode == 0


@dataclass
class Side:
    label: str
    tree: Path
    log: Path


def _spread(values: list[float], fmt: str = ".3f") -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):{fmt}} (min-max {ordered[0]:{fmt}}-"
            f"{ordered[-1]:{fmt}}, n={len(ordered)})")


def series(name: str, log: Path, baseline: Path | None, repeats: int, *, timeout_s: float,
           rss_limit_kib: int) -> None:
    """Replay ``log`` ``repeats`` times per tree, alternating, and print what was measured."""
    manifest = read_manifest(log)
    records = manifest.messages
    duration = (manifest.end or 0.0) - (manifest.start or 0.0)
    size = sum(f.stat().st_size for f in log.rglob("*.parquet"))
    print(f"\n{name}: {log}\n  {records:,} records, {len(manifest.vehicles)} vehicles, "
          f"{duration / 60:.1f} min, {size / 1e6:.1f} MB Parquet", flush=True)
    sides = [Side("subject", ROOT, log)]
    if baseline is not None:
        own = readable(baseline, log)
        theirs, dropped = compat_copy(log, baseline) if own else (_v1_copy(log), [])
        sides.insert(0, Side("baseline", baseline, theirs))
        if not own:
            print("  the baseline cannot read this manifest: it replays the version 1 copy "
                  "(same rows; no recorded config, rules or site plan)", flush=True)
        elif dropped:
            print("  the baseline does not know these recorded config fields; it replays a "
                  f"copy without them (same rows): {', '.join(dropped)}", flush=True)
    out = Path(tempfile.gettempdir()) / f"l4mon-bench-replay-{name}-results.json"
    runs: list[Run] = []
    hashes: dict[str, set[str]] = {side.label: set() for side in sides}
    for repeat in range(repeats):
        # the order swaps every repeat, so neither tree always runs second on a warm cache
        for side in sides if repeat % 2 == 0 else sides[::-1]:
            run = replay_in_child(side.tree, side.log, out, label=side.label,
                                  timeout_s=timeout_s, rss_limit_kib=rss_limit_kib)
            runs.append(run)
            hashes[side.label].add(digest(out))
            if run.status != "ok":
                print(f"  [{repeat}] {side.label}: {run.status}", flush=True)
                continue
            print(f"  [{repeat}] {side.label:<8} {run.wall_s:7.2f} s wall {run.cpu_s:7.2f} s CPU "
                  f"peak RSS {run.peak_rss_mib:6,.0f} MiB {records / run.wall_s:10,.0f} "
                  f"records/s {duration / run.wall_s:7,.0f}x real time", flush=True)
            print(f"      {run.summary.splitlines()[0] if run.summary else '(no output)'}",
                  flush=True)
    out.unlink(missing_ok=True)
    ok = {side.label: [r for r in runs if r.label == side.label and r.status == "ok"]
          for side in sides}
    for label, done in ok.items():
        if done:
            print(f"  {label}: wall {_spread([r.wall_s for r in done], '.2f')} s; "
                  f"x real time {_spread([duration / r.wall_s for r in done], ',.0f')}",
                  flush=True)
    if ok["subject"] and name == "simulated":  # the target is for a fleet's log, not a trace
        times = statistics.median(duration / r.wall_s for r in ok["subject"])
        print(f"  subject x real time: median {times:,.0f} (target >= {TARGET_X:.0f}x: "
              f"{'PASS' if times >= TARGET_X else 'FAIL'})", flush=True)
    for label, seen in hashes.items():
        print(f"  {label} results SHA-256: {', '.join(sorted(seen))}"
              f"{'' if len(seen) == 1 else ' (differs between its own runs!)'}", flush=True)
    if baseline is not None:
        same_log = sides[0].log == sides[1].log
        verdict = ("IDENTICAL (byte for byte)" if hashes["baseline"] == hashes["subject"]
                   and len(hashes["subject"]) == 1 else "DIFFERENT")
        note = "" if same_log else " (the baseline replayed a compatible copy: its input differs)"
        print(f"  results files, baseline vs subject: {verdict}{note}", flush=True)
        pairs = [(b, s) for b, s in zip(
            [r for r in runs if r.label == "baseline"], [r for r in runs if r.label == "subject"],
            strict=True) if b.status == s.status == "ok"]
        if pairs:
            print(f"  subject / baseline wall: {_spread([s.wall_s / b.wall_s for b, s in pairs])}"
                  f"; CPU: {_spread([s.cpu_s / b.cpu_s for b, s in pairs])}", flush=True)
            old, new = ({k: v for k, v in (r.doc or {}).items() if k != "input"}
                        for r in pairs[-1])
            diff, added = differences(old, new)
            print(f"  results (last pair): {len(diff)} figure(s) differ"
                  f"{' (' + ', '.join(diff[:5]) + ')' if diff else ''}; fields only the "
                  f"subject has: {sorted({a.rsplit('/', 1)[-1] for a in added}) or 'none'}",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another copy of the project: replayed alternately with this one")
    ap.add_argument("--repeats", type=int, default=1, help="runs per tree")
    ap.add_argument("--trace", type=Path, action="append", default=[],
                    help="a real drive-test trace to import and replay too (repeatable)")
    ap.add_argument("--trace-format", choices=["cicv5g", "gnettrack"], default="cicv5g")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per replay")
    ap.add_argument("--rss-limit-gb", type=float, default=8.0,
                    help="stop a replay whose RSS passes this (GiB)")
    args = ap.parse_args()
    if args.vehicles < 1 or args.minutes <= 0 or args.repeats < 1:
        ap.error("--vehicles and --repeats must be >= 1, --minutes > 0")
    baseline = args.baseline.resolve() if args.baseline is not None else None
    for label, tree in [("subject", ROOT)] + ([("baseline", baseline)] if baseline else []):
        precompile(tree)
        print(f"{label}: l4mon from {code_path(tree)}", flush=True)
    log = Path(tempfile.gettempdir()) / (f"l4mon-bench-replay-sim-{args.vehicles}v-"
                                         f"{args.minutes:g}m-v{LOG_VERSION}")
    if not (log / "manifest.json").exists():
        began = time.perf_counter()
        generate(log, args.vehicles, args.minutes)
        print(f"generated {log} in {time.perf_counter() - began:.1f} s", flush=True)
    limit_kib = int(args.rss_limit_gb * 2**20)
    series("simulated", log, baseline, args.repeats, timeout_s=args.timeout,
           rss_limit_kib=limit_kib)
    if args.trace:
        trace = import_trace(args.trace, args.trace_format)
        series("trace", trace, baseline, args.repeats, timeout_s=args.timeout,
               rss_limit_kib=limit_kib)


if __name__ == "__main__":
    main()
