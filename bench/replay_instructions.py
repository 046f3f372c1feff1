"""Instructions per record of a replay, this tree against another copy: repeatable under load.

Run: ``.venv/bin/python bench/replay_instructions.py --baseline TREE [--short 0]
[--long 65536]``; needs ``valgrind`` and bench/replay.py's cached log (run that once first).

Wall and CPU time on a shared 2-core machine move by tens of percent from run to run, which
hides a change of a few percent; instruction counts do not move. Each tree replays the first
``--short`` and ``--long`` records of bench/replay.py's 10-shuttle hour the way ``l4mon
replay LOG --speed max`` does (``prepare``, ``run_prepared``: the streamed Parquet reader,
``Hub.ingest``, the ticks, the KPI books and the results document) under ``valgrind
--tool=callgrind``; the difference of the two counts over the difference of records is the
cost of a record, free of start-up and imports. ``--short 0`` only prepares (imports, the
manifest, the files' footers). The reader converts ``BATCH_ROWS`` (65,536) rows at a time,
so both lengths should be multiples of it, or its cost falls in one run and not the other
(two prefixes within one batch cancel it out entirely). Each replay's results document is
hashed, and the trees' hashes compared.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTED = re.compile(r"Collected : (\d+)")
LOG_NAME = "l4mon-bench-replay-sim-10v-60m-v3"  # bench/replay.py's cache (LOG_VERSION 3)


def drive(log: str, records: int) -> None:
    """Replay the first ``records`` of ``log``; print the results' SHA-256."""
    import hashlib
    from itertools import islice

    from scenarios.scenario import encode_results, prepare, run_prepared

    prepared = prepare(log)
    if not records:  # start-up only: the baseline of the difference
        print("-")
        return
    prepared.stream = islice(prepared.stream, records)
    doc = run_prepared(prepared)
    print(hashlib.sha256(encode_results(doc)).hexdigest())


def counted(tree: Path, log: Path, records: int) -> tuple[int, str]:
    """(instructions, results hash) of one ``drive`` run from ``tree`` under callgrind."""
    out = Path(tempfile.gettempdir()) / f"replay-instructions-{os.getpid()}.out"
    try:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             str(ROOT / "bench" / "replay_instructions.py"), "--drive", str(log),
             str(records)],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"},
            capture_output=True, text=True, check=True, timeout=3_600)
    finally:
        out.unlink(missing_ok=True)
    match = COLLECTED.search(proc.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total from {tree}:\n{proc.stderr[-2000:]}")
    return int(match.group(1)), proc.stdout.split()[0]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        drive(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--short", type=int, default=0, help="records, short run (0: start-up)")
    ap.add_argument("--long", type=int, default=65_536, help="records, long run")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        ap.error("valgrind is not installed (Debian package valgrind)")
    if not 0 <= args.short < args.long:
        ap.error("need 0 <= --short < --long")
    log = Path(tempfile.gettempdir()) / LOG_NAME
    if not (log / "manifest.json").exists():
        ap.error(f"no {log}: run bench/replay.py once to generate it")
    per: dict[str, float] = {}
    hashes: dict[str, list[str]] = {}
    for label, tree in (("baseline", args.baseline.resolve()), ("subject", ROOT)):
        (short, h_short), (long, h_long) = (counted(tree, log, n)
                                            for n in (args.short, args.long))
        per[label] = (long - short) / (args.long - args.short)
        hashes[label] = [h_short, h_long]
        print(f"{label}: {per[label]:,.0f} instructions per record ({short:,} and {long:,} "
              f"in all; results {h_short[:16]} / {h_long[:16]})", flush=True)
    print(f"subject / baseline: {per['subject'] / per['baseline']:.3f} (instruction counts: "
          "repeatable, no spread to report)", flush=True)
    same = hashes["subject"] == hashes["baseline"]
    print(f"results documents, both lengths: {'IDENTICAL' if same else 'DIFFERENT'}",
          flush=True)


if __name__ == "__main__":
    main()
