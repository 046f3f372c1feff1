"""Instructions per message of the hub's pipeline, this tree against another copy: repeatable.

Run: ``.venv/bin/python bench/hub_instructions.py --baseline TREE [--vehicles 60]``, where TREE
is e.g. ``git archive <rev> | tar -x -C TREE``; needs ``valgrind``.

Wall-clock figures on a shared 2-core machine move by ±30 % between runs (bench/hub_cost_ab.py
shows it); instruction counts do not. Each tree runs this file's ``drive`` under
``valgrind --tool=callgrind``: the simulated fleet (``--vehicles`` on the demo site, 10 Hz)
is generated for N steps of 0.1 s, then fed to a hub built as ``serve`` builds it (default
config, handover detection on, the full alert engine) with a tick every 0.25 s. Run with
generation only and with the hub, for two lengths, the difference of differences is the hub's
marginal cost per message, free of start-up, imports and the generator:

    ((full_long - gen_long) - (full_short - gen_short)) / (messages_long - messages_short)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = 1_767_225_600.0
COLLECTED = re.compile(r"Collected : (\d+)")


def drive(mode: str, steps: int, vehicles: int) -> int:
    """Generate ``steps`` x 0.1 s of the fleet; with ``mode == "full"`` feed it to a hub."""
    from l4mon.assembly import build_runtime
    from l4mon.clock import ManualClock
    from l4mon.config import config_from_dict
    from scenarios.sim import SimFleet

    try:
        from telemetry.site import DEMO_SITE_PATH, load_site
    except ImportError:  # a baseline tree from before the site model moved down (4013d91)
        from l4mon.site import DEMO_SITE_PATH, load_site  # type: ignore[no-redef]

    fleet = SimFleet(site=load_site(DEMO_SITE_PATH), vehicles=vehicles, seed=3, start=START)
    batches = []
    for k in range(steps):
        t = START + (k + 1) * 0.1
        batches.append((t, [(topic, payload, None) for topic, payload in fleet.advance(t)]))
    if mode == "full":
        clock = ManualClock(START)
        hub = build_runtime(config_from_dict({"alerts": {"journal": ":memory:"}}),
                            clock=clock).hub
        next_tick = START + 0.25
        for at, batch in batches:
            while next_tick <= at:
                clock.set(next_tick)
                hub.tick(next_tick)
                next_tick += 0.25
            clock.set(at)
            hub.ingest(batch, at)
    return sum(len(batch) for _, batch in batches)


def counted(tree: Path, mode: str, steps: int, vehicles: int) -> tuple[int, int]:
    """(instructions, messages) of one ``drive`` run from ``tree`` under callgrind."""
    out = tree / f".hub-instructions-{os.getpid()}.out"
    try:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             str(ROOT / "bench" / "hub_instructions.py"), "--drive", mode, str(steps),
             str(vehicles)],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree),
                           "PYTHONHASHSEED": "0"},
            capture_output=True, text=True, check=True, timeout=3_600)
    finally:
        out.unlink(missing_ok=True)
    match = COLLECTED.search(proc.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total from {tree}:\n{proc.stderr[-2000:]}")
    return int(match.group(1)), int(proc.stdout.strip().splitlines()[-1])


def per_message(tree: Path, vehicles: int, short: int, long: int) -> float:
    runs = {(m, n): counted(tree, m, n, vehicles) for m in ("gen", "full") for n in (short, long)}
    hub_long = runs[("full", long)][0] - runs[("gen", long)][0]
    hub_short = runs[("full", short)][0] - runs[("gen", short)][0]
    messages = runs[("full", long)][1] - runs[("full", short)][1]
    return (hub_long - hub_short) / messages


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        print(drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--vehicles", type=int, default=60)
    ap.add_argument("--short", type=int, default=100, help="steps of 0.1 s, short run")
    ap.add_argument("--long", type=int, default=300, help="steps of 0.1 s, long run")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        ap.error("valgrind is not installed (Debian package valgrind)")
    base = per_message(args.baseline.resolve(), args.vehicles, args.short, args.long)
    subject = per_message(ROOT, args.vehicles, args.short, args.long)
    print(f"baseline: {base:,.0f} instructions per message", flush=True)
    print(f"subject:  {subject:,.0f} instructions per message", flush=True)
    print(f"subject / baseline: {subject / base:.3f} (instruction counts: repeatable, "
          "no spread to report)", flush=True)


if __name__ == "__main__":
    main()
