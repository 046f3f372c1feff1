"""The hub's CPU cost per message, this tree against another copy of the project.

Run: ``.venv/bin/python bench/hub_cost_ab.py --baseline TREE [--repeats 5] [--vehicles 300]
[--seconds 30]``, where TREE is e.g. ``git archive <rev> | tar -x -C TREE``.

Runs ``bench/hub_cost.py --variants default --rounds 1`` (the hub as ``serve`` runs it, fed the
simulated fleet offline: ``Hub.ingest`` and ``Hub.tick`` timed with ``process_time``) from the
baseline tree and from this one, alternating (baseline, subject, baseline, ...) ``--repeats``
times in child processes, and prints each run's µs per message and the ratio subject /
baseline as the median with its range. Both trees run their own ``bench/hub_cost.py`` on the
same venv, so a change to the wire model, decoding or link tracking shows here.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| default \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", re.MULTILINE)


def cost(tree: Path, vehicles: int, seconds: float) -> tuple[float, float, float]:
    """(ingest, ticks, total) µs per message, one round, from ``tree``'s own bench."""
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "hub_cost.py"), "--variants", "default",
         "--rounds", "1", "--vehicles", str(vehicles), "--seconds", str(seconds)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
        check=True, timeout=1_800).stdout
    match = ROW.search(out)
    if match is None:
        raise RuntimeError(f"no 'default' row in {tree}'s hub_cost output:\n{out}")
    ingest, ticks, total = (float(g) for g in match.groups())
    return ingest, ticks, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--vehicles", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "subject": []}
    for _ in range(max(1, args.repeats)):
        for label, tree in (("baseline", args.baseline.resolve()), ("subject", ROOT)):
            figures = cost(tree, args.vehicles, args.seconds)
            runs[label].append(figures)
            print(f"{label}: ingest {figures[0]:.3f} + ticks {figures[1]:.3f} = "
                  f"{figures[2]:.3f} µs/msg", flush=True)
    for n, part in enumerate(("ingest", "ticks", "total")):
        ratios = sorted(s[n] / b[n] for b, s in zip(runs["baseline"], runs["subject"],
                                                    strict=True))
        print(f"{part}: subject / baseline median {statistics.median(ratios):.3f} "
              f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}, {len(ratios)} pairs)", flush=True)


if __name__ == "__main__":
    main()
