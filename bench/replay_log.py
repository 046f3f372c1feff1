"""Replay of a long drive log: wall time, messages/s and peak RSS of ``l4mon replay``.

Run: ``.venv/bin/python bench/replay_log.py [--vehicles 100] [--hours 1] [--baseline TREE]``

Generates a log with bench/report.py's generator (``--vehicles`` x ``--hours`` x 3 streams at
``--rate`` Hz, hourly partitions of 10-minute files, no recorded payloads: every row is
re-encoded, as for an import) under the system temp dir, then runs ``python -m l4mon replay
LOG --out results.json`` — the command's own path, streamed reader and all — in a child
process and reports its wall time, messages/s and peak RSS: the child's own ``VmHWM``, which
it writes at exit. (Not ``ru_maxrss`` from ``wait4``: Linux carries the parent's high-water
mark into a vforked child's at exec, so it would report the generator's peak, not the
replay's.)

``--baseline TREE`` also runs the same command from another copy of the project on the same
log, e.g. a tree made with ``git archive <rev> | tar -x -C TREE``; with ``--repeats N`` the two
alternate N times, the order swapping every repeat (baseline, subject; subject, baseline;
...), and the ratio subject / baseline of the wall times is printed as the median with its
range. The two results documents are compared on every figure both produce. A baseline older
than drive-log version 2 is given the log with a version 1 manifest (the new manifest fields
dropped; the rows are the same). A child whose RSS passes ``--rss-limit-gb`` is stopped and
reported as not fitting, so a baseline that cannot load a large log does not take the machine
down.

The log and the results are deleted afterwards unless ``--keep`` (a day's log is ~6 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import generate  # a sibling script: see bench/__init__.py

from testing.peak_memory import CHILD

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    label: str
    wall_s: float
    peak_rss_mib: float
    status: str  # "ok", or why the run did not finish
    doc: dict[str, Any] | None
    cpu_s: float = 0.0  # the child's user + system time (wait4's rusage)
    summary: str = ""  # what the command printed


def tree_env(tree: Path) -> dict[str, str]:
    """The environment for a ``python -m l4mon`` child that must run ``tree``'s code: its
    folder first on the path (the venv's editable install points at this project, and a
    ``PYTHONPATH`` inherited from the caller could point anywhere)."""
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}


def code_path(tree: Path) -> str:
    """Where a child started as the benches start it in ``tree`` imports l4mon from: printed
    once per tree, so an A/B run shows it really ran two codes."""
    probe = ("import l4mon, scenarios, telemetry; "
             "print(l4mon.__file__, scenarios.__file__, telemetry.__file__)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=tree_env(tree),
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: cannot import l4mon there:\n{done.stderr[-2000:]}")
    paths = [Path(p).resolve().parent.parent for p in done.stdout.split()]
    if any(p != tree.resolve() for p in paths):
        raise SystemExit(f"{tree}: a child there imports code from {sorted(set(map(str, paths)))}")
    return done.stdout.split()[0]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0




def replay_in_child(tree: Path, log: Path, out: Path, *, label: str, timeout_s: float,
                    rss_limit_kib: int, extra: Sequence[str] = ()) -> Run:
    """``python -m l4mon replay LOG --speed max --out OUT [EXTRA...]`` from ``tree``: its
    wall and CPU time and its own peak RSS."""
    return command_in_child(tree, ["replay", str(log), "--speed", "max", "--out", str(out),
                                   *extra], out, label=label, timeout_s=timeout_s,
                            rss_limit_kib=rss_limit_kib)


def command_in_child(tree: Path, argv: Sequence[str], out: Path, *, label: str,
                     timeout_s: float, rss_limit_kib: int) -> Run:
    """``python -m l4mon ARGV...`` from ``tree``: its wall and CPU time and its own peak RSS;
    ``out``, when the command wrote it as JSON, is the run's document."""
    hwm = out.with_suffix(".hwm")
    env = {**tree_env(tree), "L4MON_BENCH_HWM": str(hwm)}
    out.unlink(missing_ok=True)
    hwm.unlink(missing_ok=True)
    peak_kib = 0
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        began = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, *argv], cwd=tree, env=env,
                                 stdout=stdout, stderr=stderr)
        status = "ok"
        # Bounded: the timeout below stops it. Exit is polled every 10 ms (the wall time's
        # resolution), RSS every 0.2 s (reading /proc costs this process, not the child).
        next_rss = began
        while True:
            pid, code, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            elapsed = now - began
            rss = 0
            if now >= next_rss:
                rss = _rss_kib(child.pid)
                peak_kib = max(peak_kib, rss)  # what a stopped child reached
                next_rss = now + 0.2
            if elapsed > timeout_s or rss > rss_limit_kib:
                status = (f"stopped after {elapsed:.0f} s: over the {timeout_s:.0f} s timeout"
                          if elapsed > timeout_s else
                          f"stopped after {elapsed:.0f} s: RSS over the limit "
                          f"({rss_limit_kib / 2**20:.1f} GiB), did not fit")
                child.send_signal(signal.SIGKILL)
                _, code, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(code)
        if status == "ok" and child.returncode not in (0, 1):  # 1: expectations failed
            stderr.seek(0)
            status = f"exit {child.returncode}: {stderr.read().decode()[-2000:]}"
        stdout.seek(0)
        summary = stdout.read().decode().strip()
    doc = json.loads(out.read_bytes()) if status == "ok" and out.is_file() else None
    if hwm.exists():
        peak_kib = int(hwm.read_text())
        hwm.unlink()
    return Run(label=label, wall_s=wall, peak_rss_mib=peak_kib / 1024, status=status, doc=doc,
               cpu_s=usage.ru_utime + usage.ru_stime, summary=summary)


def _v1_copy(log: Path) -> Path:
    """The log for a baseline from before drive-log version 2: the same Parquet files (hard
    links), a manifest without the fields version 2 added. Old readers ignore the new
    columns."""
    copy = log.with_name(log.name + "-v1")
    if not (copy / "manifest.json").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(log, copy, copy_function=os.link)
        manifest = json.loads((log / "manifest.json").read_text())
        for key in ("hub_config", "rules", "site_plan", "not_measured"):
            manifest.pop(key, None)
        manifest["version"] = 1
        (copy / "manifest.json").unlink()
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


#: Run in a baseline tree: the recorded hub config with every field that tree's config
#: loader does not know removed (printed as JSON), so a log recorded by newer code replays there.
_PRUNE = r"""
import json, re, sys
from l4mon.config import config_from_dict
cfg = json.load(open(sys.argv[1])).get("hub_config") or {}
dropped = []
for _ in range(50):
    try:
        config_from_dict(cfg)
        break
    except Exception as error:
        text = str(error)
        field = re.search(r"unknown field `([^`]+)`", text)
        where = re.search(r"at `\$((?:\.[A-Za-z_][\w]*|\[\d+\])*)`", text)
        if field is None:
            raise
        node = cfg
        path = re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]", where.group(1)) if where else []
        for key, index in path:
            node = node[int(index)] if index else node[key]
        node.pop(field.group(1))
        dropped.append(((where.group(1) if where else "") + "." + field.group(1)).lstrip("."))
rules = json.load(open(sys.argv[1])).get("rules")
keep_rules = True
if rules:
    from l4mon.alerts.rules import parse_rules
    try:
        parse_rules(rules, source="the recording's rules")
    except Exception:  # a rule naming facts this tree does not have: its own defaults
        keep_rules = False
        dropped.append("rules (the baseline's own defaults instead)")
print(json.dumps({"hub_config": cfg, "dropped": dropped, "keep_rules": keep_rules}))
"""


def compat_copy(log: Path, tree: Path) -> tuple[Path, list[str]]:
    """The log as ``tree`` can replay it: the same Parquet files (hard links) and a manifest
    whose recorded hub config lacks the fields that tree's config does not know (a newer hub
    records sections an older one refuses), and without the recorded rules if that tree cannot
    compile them (a rule on facts it does not have). The log itself when nothing needs
    dropping."""
    done = subprocess.run([sys.executable, "-c", _PRUNE, str(log / "manifest.json")], cwd=tree,
                          env=tree_env(tree), capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: cannot load this log's recorded config:\n"
                         f"{done.stderr[-2000:]}")
    pruned = json.loads(done.stdout.strip().splitlines()[-1])
    if not pruned["dropped"]:
        return log, []
    copy = log.with_name(log.name + "-compat-" + tree.name)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(log, copy, copy_function=os.link)
    manifest = json.loads((log / "manifest.json").read_text())
    manifest["hub_config"] = pruned["hub_config"]
    if not pruned.get("keep_rules", True):
        manifest["rules"] = None
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy, pruned["dropped"]


def differences(old: Any, new: Any, where: str = "") -> tuple[list[str], list[str]]:
    """(figures that differ, keys only the new document has), over what both produce."""
    if isinstance(old, dict) and isinstance(new, dict):
        diff: list[str] = []
        added = [f"{where}/{k}" for k in new if k not in old]
        for key in old.keys() & new.keys():
            d, a = differences(old[key], new[key], f"{where}/{key}")
            diff += d
            added += a
        return diff, added
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        diff, added = [], []
        for n, (o, w) in enumerate(zip(old, new, strict=True)):
            d, a = differences(o, w, f"{where}[{n}]")
            diff += d
            added += a
        return diff, added
    return ([] if old == new else [where]), []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=100)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another copy of the project, run alternately with this one")
    ap.add_argument("--timeout", type=float, default=3_600.0, help="seconds per replay")
    ap.add_argument("--rss-limit-gb", type=float, default=12.0,
                    help="stop a replay whose RSS passes this (GiB)")
    ap.add_argument("--keep", action="store_true", help="keep the generated log")
    ap.add_argument("--repeats", type=int, default=1,
                    help="with --baseline: alternate baseline and subject this many times")
    args = ap.parse_args()
    if args.vehicles < 1 or args.hours <= 0 or args.rate <= 0:
        ap.error("--vehicles must be >= 1, --hours and --rate > 0")
    tmp = Path(tempfile.gettempdir())
    log = tmp / f"l4mon-bench-replay-log-{args.vehicles}v-{args.hours:g}h-{args.rate:g}hz"
    out = tmp / f"{log.name}-results.json"
    try:
        if not (log / "manifest.json").exists():
            began = time.perf_counter()
            generate(log, vehicles=args.vehicles, hours=args.hours, rate=args.rate)
            print(f"generated {log} in {time.perf_counter() - began:.0f} s", flush=True)
        rows = int(json.loads((log / "manifest.json").read_text())["messages"])
        size = sum(f.stat().st_size for f in log.rglob("*.parquet"))
        print(f"log: {args.vehicles} vehicles x {args.hours:g} h x 3 streams x {args.rate:g} Hz"
              f" = {rows:,} rows, {size / 1e6:,.0f} MB Parquet", flush=True)
        limit = int(args.rss_limit_gb * 2**20)
        runs = []
        old_log = _v1_copy(log) if args.baseline else None
        trees = ([("baseline", args.baseline.resolve(), old_log)] if args.baseline else []) \
            + [("subject", ROOT, log)]
        for label, tree, _ in trees:
            print(f"{label}: l4mon from {code_path(tree)}", flush=True)
        walls: dict[str, list[float]] = {label: [] for label, _, _ in trees}
        for repeat in range(max(1, args.repeats) if args.baseline else 1):
            # the order swaps every repeat, so neither side always runs on a warmer machine
            for label, tree, path in (trees if repeat % 2 == 0 else trees[::-1]):
                run = replay_in_child(tree, path, out, label=label, timeout_s=args.timeout,
                                      rss_limit_kib=limit)
                if run.summary:
                    print(f"  [{label}] {run.summary}", flush=True)
                runs.append(run)
                walls[label].append(run.wall_s)
                rate = f"{rows / run.wall_s:,.0f} msgs/s" if run.status == "ok" \
                    else run.status
                print(f"{label}: {run.wall_s:.1f} s wall, {rate}, peak RSS "
                      f"{run.peak_rss_mib:,.0f} MiB", flush=True)
        if args.baseline:
            ratios = sorted(n / o for o, n in zip(walls["baseline"], walls["subject"],
                                                  strict=True))
            print(f"subject / baseline wall time: median {statistics.median(ratios):.3f} "
                  f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}, {len(ratios)} pairs)", flush=True)
        last = {r.label: r for r in runs}  # each side's last run
        done = [last[label] for label, _, _ in trees if last[label].doc is not None]
        if len(done) == 2:
            old, new_doc = ({k: v for k, v in r.doc.items() if k != "input"} for r in done)
            diff, added = differences(old, new_doc)
            print(f"results: {len(diff)} figure(s) differ"
                  f"{' (' + ', '.join(diff[:5]) + ')' if diff else ''}; new fields: "
                  f"{sorted({a.rsplit('/', 1)[-1] for a in added}) or 'none'}", flush=True)
        new = last["subject"]
        if new.status == "ok":
            day = rows * 24.0 / args.hours
            print(f"extrapolated, not measured: a day of {args.vehicles} vehicles at "
                  f"{args.rate:g} Hz (~{day / 1e6:.0f} M rows) would take "
                  f"{day / (rows / new.wall_s) / 3600:.1f} h at this rate", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(log, ignore_errors=True)
        if args.baseline:
            shutil.rmtree(log.with_name(log.name + "-v1"), ignore_errors=True)
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
