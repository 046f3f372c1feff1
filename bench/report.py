"""Report on a day of a fleet: time and peak memory of ``l4mon report`` on big drive logs.

Run: ``.venv/bin/python bench/report.py [--vehicles 100] [--hours 24] [--rate 10]``

Generates (once, cached under the system temp dir) a drive log of ``--vehicles`` shuttles x
``--hours`` x 3 streams (state, link/l5g, link/lte) at ``--rate`` Hz — 259 M rows for the
full day of 100 vehicles — straight into the drive-log schema with numpy and pyarrow, hourly
partitions like ``serve --record``. The simulator would take hours for that; the figures only
need plausible distributions (lognormal RTT, some loss and probe timeouts). Then runs
``l4mon report LOG --out ... --csv ...`` in a child process and reports its wall time, CPU
time and peak RSS (the child's own VmHWM: testing/peak_memory.py). Link states, handovers and alerts
are not replayed for a log this size (``--replay auto``): the report says so.
``--baseline TREE --repeats N`` runs another copy's report on the same log too, alternating,
and prints the ratio of the wall times with its range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from telemetry.drivelog import SCHEMA, Conditions, Manifest, write_manifest
from testing.peak_memory import CHILD

ROOT = Path(__file__).resolve().parent.parent
START = 1_795_305_600.0  # 2026-11-22T00:00:00Z
CHUNK_S = 600.0  # generated and written ten minutes at a time: bounded memory
LINKS = (("l5g", "nr", "l5g-araya", 18.0, 0.25, 30_000.0, 0.002, 0.003),
         ("lte", "lte", "lte-matsuoka-w", 45.0, 0.40, 12_000.0, 0.006, 0.004))


def _dict(values: list[str], index: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(values))


def chunk(rng: np.random.Generator, vehicles: int, rate: float, t0: float, seconds: float,
          site: str) -> pa.Table:
    """``seconds`` of the fleet from ``t0``: rows in receive-time order, as a hub gets them."""
    ticks = round(seconds * rate)
    k0 = round((t0 - START) * rate)
    k = np.arange(k0, k0 + ticks, dtype=np.int64)
    t = START + k / rate
    names = [f"shuttle-{i + 1:03d}" for i in range(vehicles)]
    # tick-major: for every tick, every vehicle's state then its links
    tt = np.repeat(t, vehicles)
    kk = np.repeat(k, vehicles)
    vv = np.tile(np.arange(vehicles), ticks)
    parts: list[dict[str, object]] = []
    n = tt.size
    phase = (vv * 0.0007)  # vehicles do not all send on the same microsecond
    parts.append({"order": 0, "recv": tt + phase, "v": vv, "seq": kk})
    for j, (_, _, _, median, sigma, ul, loss, timeout) in enumerate(LINKS):
        keep = rng.random(n) >= loss  # lost on the way: never received
        rtt = np.round(median * np.exp(sigma * rng.standard_normal(n)), 2)
        rtt[rng.random(n) < timeout] = np.nan
        up = np.round(np.clip(ul * (1 + 0.3 * rng.standard_normal(n)), 0, None), 1)
        down = np.round(up * 2.2, 1)
        delay = np.round(np.where(np.isnan(rtt), median, rtt) / 2 + 1.5, 3) / 1000.0
        parts.append({"order": j + 1, "recv": (tt + phase + 0.0002 * (j + 1))[keep],
                      "v": vv[keep], "seq": kk[keep], "rtt": rtt[keep], "ul": up[keep],
                      "dl": down[keep], "delay": delay[keep]})
    recv = np.concatenate([p["recv"] for p in parts])  # type: ignore[misc]
    order = np.argsort(recv, kind="stable")
    kind_idx = np.concatenate([np.full(p["recv"].size, 0 if p["order"] == 0 else 1)  # type: ignore
                               for p in parts])[order]
    link_idx = np.concatenate([np.full(p["recv"].size, int(p["order"]) - 1)  # type: ignore
                               for p in parts])[order]
    vid = np.concatenate([p["v"] for p in parts])[order]  # type: ignore[misc]
    seq = np.concatenate([p["seq"] for p in parts])[order]  # type: ignore[misc]
    recv = recv[order]

    def link_col(key: str) -> np.ndarray:
        return np.concatenate([np.full(parts[0]["recv"].size, np.nan)]  # type: ignore
                              + [p[key] for p in parts[1:]])[order]  # type: ignore[misc]
    delay = link_col("delay")
    is_link = kind_idx == 1
    angle = 2 * np.pi * ((recv - START) / 300.0 + vid / vehicles)
    state = ~is_link
    rows = recv.size
    columns = {
        "recv_time": pa.array(recv),
        "kind": _dict(["state", "link"], kind_idx),
        "site": _dict([site], np.zeros(rows, dtype=np.int64)),
        "source": _dict(names, vid),
        "link": pa.DictionaryArray.from_arrays(
            pa.array(np.where(is_link, link_idx, 0).astype(np.int32), mask=state),
            pa.array([name for name, *_ in LINKS])),
        "ts": pa.array(np.where(is_link, recv - np.nan_to_num(delay), recv - 0.002)),
        "seq": pa.array(seq),
        "lat": pa.array(36.0635 + 0.0015 * np.sin(angle), mask=is_link),
        "lon": pa.array(136.3420 + 0.0020 * np.cos(angle), mask=is_link),
        "speed_mps": pa.array(np.full(rows, 5.5), mask=is_link),
        "heading_deg": pa.array(np.degrees(angle) % 360, mask=is_link),
        "mode": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(rows, dtype=np.int32), mask=is_link), pa.array(["autonomous"])),
        "rat": pa.DictionaryArray.from_arrays(
            pa.array(link_idx.astype(np.int32), mask=state), pa.array([r for _, r, *_ in LINKS])),
        "cell_id": pa.DictionaryArray.from_arrays(
            pa.array(link_idx.astype(np.int32), mask=state),
            pa.array([c for _, _, c, *_ in LINKS])),
        "rsrp_dbm": pa.array(np.full(rows, -85.0), mask=state),
        "sinr_db": pa.array(np.full(rows, 15.0), mask=state),
        "rtt_ms": pa.array(link_col("rtt"), from_pandas=True),
        "ul_kbps": pa.array(link_col("ul"), from_pandas=True),
        "dl_kbps": pa.array(link_col("dl"), from_pandas=True),
    }
    arrays = [columns.get(f.name, pa.nulls(rows, f.type)) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def generate(path: Path, *, vehicles: int, hours: float, rate: float = 10.0, seed: int = 7,
             conditions: Conditions | None = None, site: str = "eiheiji-demo") -> int:
    """Write the log; returns its row count. Deterministic for the same arguments."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    total, files, t = 0, 0, START
    end = START + hours * 3600.0
    while t < end - 1e-9:
        span = min(CHUNK_S, end - t)
        table = chunk(rng, vehicles, rate, t, span, site)
        hour = dt.datetime.fromtimestamp(t, tz=dt.UTC)
        folder = path / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{files:06d}.parquet", compression="zstd",
                       row_group_size=256_000)
        files += 1
        total += table.num_rows
        t += span
    manifest = Manifest(site=site, vehicles=[f"shuttle-{i + 1:03d}" for i in range(vehicles)],
                        conditions=conditions or Conditions(weather="snow", light="daylight"),
                        source={"kind": "generator", "notes": "bench/report.py, synthetic"},
                        created_at=time.time(), start=START, end=end, messages=total)
    write_manifest(path, manifest)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=100)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another copy of the project: run its report too, alternating")
    ap.add_argument("--repeats", type=int, default=1, help="with --baseline: pairs to run")
    args = ap.parse_args()
    if args.vehicles < 1 or args.hours <= 0 or args.rate <= 0:
        ap.error("--vehicles must be >= 1, --hours and --rate > 0")
    tmp = Path(tempfile.gettempdir())
    log = tmp / f"l4mon-bench-report-{args.vehicles}v-{args.hours:g}h-{args.rate:g}hz"
    if not (log / "manifest.json").exists():
        began = time.perf_counter()
        rows = generate(log, vehicles=args.vehicles, hours=args.hours, rate=args.rate)
        print(f"generated {log}: {rows:,} rows in {time.perf_counter() - began:.0f} s",
              flush=True)
    size = sum(f.stat().st_size for f in log.rglob("*.parquet"))
    rows = int(__import__("json").loads((log / "manifest.json").read_text())["messages"])
    print(f"log: {args.vehicles} vehicles x {args.hours:g} h x 3 streams x {args.rate:g} Hz = "
          f"{rows:,} rows, {size / 1e9:.2f} GB Parquet", flush=True)
    out = tmp / "l4mon-bench-report-out"
    out.mkdir(exist_ok=True)
    trees = [("subject", ROOT, log)]
    if args.baseline is not None:
        from replay_log import _v1_copy  # a sibling script: see bench/__init__.py

        trees.insert(0, ("baseline", args.baseline.resolve(), _v1_copy(log)))
    walls: dict[str, list[float]] = {label: [] for label, _, _ in trees}
    for _ in range(max(1, args.repeats) if args.baseline else 1):
        for label, tree, path in trees:
            wall, cpu, peak_mib, first = report_in_child(tree, path, out)
            walls[label].append(wall)
            print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rows / wall / 1e6:.2f} M "
                  f"rows/s, peak RSS {peak_mib:.0f} MiB — {first}", flush=True)
    if args.baseline is not None:
        ratios = sorted(n / o for o, n in zip(walls["baseline"], walls["subject"],
                                              strict=True))
        print(f"subject / baseline wall time: median {statistics.median(ratios):.3f} (range "
              f"{ratios[0]:.3f}-{ratios[-1]:.3f}, {len(ratios)} pairs)", flush=True)


def report_in_child(tree: Path, log: Path, out: Path) -> tuple[float, float, float, str]:
    """``l4mon report LOG`` from ``tree`` in a child: (wall s, CPU s, peak RSS MiB, its first
    line). The child writes its own peak RSS (VmHWM): wait4's ru_maxrss would carry this
    process's high-water mark (the generator's) into the child's."""
    hwm = out / "child.hwm"
    hwm.unlink(missing_ok=True)
    command = [sys.executable, "-c", CHILD, "report", str(log), "--out",
               str(out / "report.html"), "--csv", str(out / "csv")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tree,
                          env={**os.environ, "L4MON_BENCH_HWM": str(hwm),
                               "PYTHONPATH": str(tree)})
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: written, verdict FAIL (a finding, not an error)
        print(done.stdout, done.stderr, file=sys.stderr)
        raise SystemExit(f"l4mon report failed (exit {done.returncode}) in {tree}")
    cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_kib = int(hwm.read_text()) if hwm.exists() else usage.ru_maxrss
    return wall, cpu, peak_kib / 1024, done.stdout.strip().splitlines()[0]


if __name__ == "__main__":
    main()
