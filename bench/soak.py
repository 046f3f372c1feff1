"""Soak: a real ``l4mon serve`` under a fleet's load for a long time, its memory sampled.

Run: ``.venv/bin/python bench/soak.py [--minutes 30] [--load 30000] [--vehicles 1000] [--plain]``

A real Mosquitto and ``l4mon serve`` (own process, default config and rules, handover
detection, alert engine, journal; the demo site, so handovers and V2I are placed in its
intersections), the blaster publishing ``--vehicles`` x 3 streams at ``--load`` msg/s for
``--minutes``. The load is the blaster's varied one by default (testing/blaster.py): serving
cells change about every two minutes per link, RTT jitters and spikes on 2 % of the links, vehicles
send events (``--events-per-min``: takeover requests, MRM episodes, door and passenger events)
and the site's RSUs their status, so handovers, alerts, the journal and V2I are all busy;
``--plain`` is the old load (every round the same apart from seq/ts). Meanwhile this process
is an operator on duty with a console WebSocket open for the whole run, reading every frame:
it acknowledges takeover alerts and resolves those only an operator can resolve (takeover
requests), as a site's operators would, so alerts do not pile up.

Every ``--sample-s`` the hub's resident memory (``/proc/PID/status`` VmRSS), its ingest and
handover counters and the journal are read. State per vehicle is bounded (60 s windows of at
most 1,200 samples per link, a 64-sample handover ring, bounded event, handover and quarantine
logs), so after the windows have filled (``--warmup-min``) memory must stay flat: the bench
fails when it grows by more than ``--bound-mb`` from the end of the warm-up to the end, or
when the fitted trend over that stretch would add more than ``--bound-mb`` per hour. It also
fails if the hub lost messages: quarantined, dropped from its buffer, or sent and never
received. The journal grows with the alerts (it is the audit trail); its growth is reported.

Bounded in time: the run stops after ``--minutes`` (plus start-up), whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import websockets

from telemetry.site import DEMO_SITE_PATH
from testing.blaster import BlastResult, Variation, start_blaster
from testing.broker import running_broker
from testing.hub import ROOT, HubProcess, metric_value, running_hub

TOKEN = "soak-token-not-secret"
#: Rules whose alerts only an operator resolves (no clear condition): the soak's operator does.
OPERATOR_RESOLVED = frozenset({"takeover_requested", "handover_failure_in_intersection"})


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 60.0 * sum((t - mx) * (m - my) for t, m in points) / var


class Console:
    """The soak's operator: one console WebSocket held open all run (reconnecting with
    ``last_seq`` if the hub closes it), every frame read; takeover alerts acknowledged a second
    after they are raised, and those only an operator resolves resolved two seconds later.
    Runs its own event loop in a thread, so sampling never delays reading."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws?token={token}"
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.frames: Counter[str] = Counter()
        self.bytes = 0
        self.acks = self.resolves = self.refused = self.failed = 0
        self.reconnects = 0
        self.last_seq: int | None = None
        self._stop = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True,
                                        name="soak-console")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers,
                                     timeout=10.0) as http:
            while not self._stop.is_set():
                url = self.url if self.last_seq is None else f"{self.url}&last_seq={self.last_seq}"
                try:
                    async with websockets.connect(url, max_size=None) as ws:
                        while not self._stop.is_set():
                            try:
                                raw = await asyncio.wait_for(ws.recv(), 1.0)
                            except TimeoutError:
                                continue
                            self._frame(raw if isinstance(raw, str) else raw.decode(), http)
                except (websockets.ConnectionClosed, OSError):
                    if self._stop.is_set():
                        break
                    self.reconnects += 1
                    await asyncio.sleep(0.5)
            for task in list(self._tasks):
                task.cancel()

    def _frame(self, raw: str, http: httpx.AsyncClient) -> None:
        self.bytes += len(raw)
        kind = raw[9:raw.index('"', 9)] if raw.startswith('{"type":"') else "?"
        self.frames[kind] += 1
        if kind != "alert":
            return  # state frames are large; counting their bytes is reading them
        frame = json.loads(raw)
        self.last_seq = max(self.last_seq or 0, frame["seq"])
        alert = frame["alert"]
        if frame["transition"]["kind"] in ("raised", "reopened") \
                and alert["severity"] == "takeover":
            task = asyncio.create_task(self._act(http, alert["id"], alert["rule"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _act(self, http: httpx.AsyncClient, alert_id: int, rule: str) -> None:
        try:
            await asyncio.sleep(1.0)
            ack = await http.post(f"/api/alerts/{alert_id}/ack", json={"note": "soak operator"})
            self.acks += ack.status_code == 200
            self.refused += ack.status_code == 409  # resolved meanwhile (an MRM that ended)
            if rule in OPERATOR_RESOLVED:
                await asyncio.sleep(2.0)
                done = await http.post(f"/api/alerts/{alert_id}/resolve",
                                       json={"reason": "soak: checked on camera"})
                self.resolves += done.status_code == 200
                self.refused += done.status_code == 409
        except httpx.HTTPError:
            self.failed += 1


def journal_stats(path: Path) -> dict[str, Any]:
    """Transitions by kind, alerts by state, the database's size (its pages, wherever they
    are: until a checkpoint they live in the WAL) and the WAL file's size of a journal."""
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM transitions GROUP BY kind"))
        states = dict(db.execute("SELECT state, COUNT(*) FROM alerts GROUP BY state"))
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    wal = path.with_name(path.name + "-wal")
    return {"transitions": kinds, "alerts": states, "bytes": pages * page_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0}


def sample(hub: HubProcess, journal: Path, console: Console, at: float) -> dict[str, Any]:
    health = hub.health()
    metrics = hub.get("/metrics").text
    handovers = hub.json("/api/handovers", limit=1)
    junctions = hub.json("/api/intersections")
    return {
        "at": at, "rss": hub.rss_mb(), "received": health["ingest"]["received"],
        "quarantined": health["ingest"]["quarantined"],
        "dropped": metric_value(metrics, "l4mon_ingest_dropped_total"),
        "open_alerts": metric_value(metrics, "l4mon_alerts_open"),
        "console_clients": metric_value(metrics, "l4mon_console_clients"),
        "handovers": dict(handovers["counts"]), "handovers_kept": handovers["kept"],
        "in_junctions": sum(link["handovers"] for ix in junctions
                            for link in ix["links"].values()),
        "v2i": {ix["id"]: ix["v2i"]["delivery_ratio"] for ix in junctions},
        "journal": journal_stats(journal),
        "frames": dict(console.frames), "acks": console.acks, "resolves": console.resolves,
    }


def _row(name: str, first: float, last: float, fmt: str = "{:,.0f}") -> str:
    return (f"  {name:<42} {fmt.format(first):>14} {fmt.format(last):>14} "
            f"{fmt.format(last - first):>14}")


def report(first: dict[str, Any], last: dict[str, Any]) -> None:
    """The counters at the start of steady state and at the end, and what they did between."""
    def transitions(s: dict[str, Any], *kinds: str) -> float:
        return sum(s["journal"]["transitions"].get(k, 0) for k in kinds)

    print(f"\n  {'':<42} {'after warm-up':>14} {'end':>14} {'delta':>14}")
    rows = [
        ("messages ingested", first["received"], last["received"]),
        ("handovers detected", sum(first["handovers"].values()),
         sum(last["handovers"].values())),
        # The hub keeps the newest 100,000 (telemetry/fleet.py), ~0.6 KB each: until that log
        # is full it grows, and so does RSS, by design.
        ("handovers kept in the hub's log", first["handovers_kept"], last["handovers_kept"]),
        ("handovers inside intersections", first["in_junctions"], last["in_junctions"]),
        ("alerts raised (+ reopened)", transitions(first, "raised", "reopened"),
         transitions(last, "raised", "reopened")),
        ("alerts resolved", transitions(first, "resolved"), transitions(last, "resolved")),
        ("alerts acknowledged", transitions(first, "acknowledged"),
         transitions(last, "acknowledged")),
        ("journal transitions", sum(first["journal"]["transitions"].values()),
         sum(last["journal"]["transitions"].values())),
        ("alerts open", first["open_alerts"], last["open_alerts"]),
        ("console frames", sum(first["frames"].values()), sum(last["frames"].values())),
        ("quarantined", first["quarantined"], last["quarantined"]),
        ("dropped from the buffer", first["dropped"], last["dropped"]),
    ]
    for name, a, b in rows:
        print(_row(name, a, b))
    print(_row("journal database (MB)", first["journal"]["bytes"] / 1e6,
               last["journal"]["bytes"] / 1e6, "{:,.2f}"))
    print(_row("journal WAL file (MB, reused)", first["journal"]["wal_bytes"] / 1e6,
               last["journal"]["wal_bytes"] / 1e6, "{:,.2f}"))
    hours = max(1e-9, (last["at"] - first["at"]) / 3600)
    grown = (last["journal"]["bytes"] - first["journal"]["bytes"]) / 1e6
    written = sum(last["journal"]["transitions"].values()) - sum(
        first["journal"]["transitions"].values())
    print(f"  the journal database grew {grown / hours:,.1f} MB/hour "
          f"({written / hours:,.0f} transitions/hour)")
    print(f"  handovers by kind at the end: {last['handovers']}")
    print(f"  console frames by type at the end: {last['frames']}")
    print(f"  V2I delivery ratio by intersection at the end: {last['v2i']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup-min", type=float, default=3.0,
                    help="minutes before memory is expected flat (windows filling)")
    ap.add_argument("--load", type=float, default=30_000.0, help="msgs/s")
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--bound-mb", type=float, default=32.0)
    ap.add_argument("--plain", action="store_true",
                    help="the plain load: no cell changes, constant RTT, no events or RSUs")
    ap.add_argument("--events-per-min", type=float, default=Variation().events_per_min,
                    help="vehicle events over the whole fleet (varied load)")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="run the hub from this source tree (a baseline checkout)")
    args = ap.parse_args()
    if args.warmup_min >= args.minutes:
        ap.error("--warmup-min must be shorter than --minutes")
    varied = None if args.plain else Variation(events_per_min=args.events_per_min)
    samples: list[dict[str, Any]] = []
    result: BlastResult | None = None
    extra = "" if args.plain else f'[site]\npath = "{DEMO_SITE_PATH}"\n'
    with running_broker() as broker, tempfile.TemporaryDirectory() as state, \
            running_hub(broker, Path(state), token=TOKEN, role="operator", tree=args.tree,
                        extra_config=extra, name="soak") as hub:
        journal = Path(state) / "soak.sqlite"
        hub.post("/api/duty/on")
        console = Console(hub.port, TOKEN)
        console.start()
        blaster = start_blaster(host=broker.host, port=broker.port, vehicles=args.vehicles,
                                rate=args.load, duration_s=args.minutes * 60, qos=0,
                                varied=varied)
        try:
            start = time.monotonic()
            end = start + args.minutes * 60
            while time.monotonic() < end:
                time.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                if hub.proc.poll() is not None:
                    raise RuntimeError(f"the hub exited with {hub.proc.returncode}\n"
                                       f"{hub.log()[-3000:]}")
                samples.append(sample(hub, journal, console, time.monotonic() - start))
                s = samples[-1]
                print(f"  {s['at'] / 60:5.1f} min  RSS {s['rss']:7.1f} MB  received "
                      f"{s['received']:,}  handovers {sum(s['handovers'].values()):,}  "
                      f"journal {sum(s['journal']['transitions'].values()):,} transitions  "
                      f"open alerts {s['open_alerts']:.0f}", flush=True)
            result = blaster.join(timeout=120.0)
            total = result.sent + result.events + result.rsu_status
            hub.wait_for(lambda: hub.health()["ingest"]["received"] >= total, timeout=15.0,
                         what="the last messages")
        except TimeoutError as error:
            print(f"  {str(error).splitlines()[0]}")
        finally:
            blaster.terminate()
            console.stop()
        final = sample(hub, journal, console, time.monotonic() - start)
        hub_log = hub.log()
    steady = [(s["at"], s["rss"]) for s in samples if s["at"] >= args.warmup_min * 60]
    if len(steady) < 2 or result is None:
        print("too few samples after the warm-up, or no result from the blaster")
        print(hub_log[-2000:])
        sys.exit(2)
    first = next(s for s in samples if s["at"] >= args.warmup_min * 60)
    growth = steady[-1][1] - steady[0][1]
    trend = slope_per_min(steady) * 60.0
    sent = result.sent + result.events + result.rsu_status
    missing = max(0, sent - final["received"])
    lost = final["quarantined"] + final["dropped"] + missing
    rate = (samples[-1]["received"] - first["received"]) / max(
        1e-9, samples[-1]["at"] - first["at"])
    load = "plain" if args.plain else (f"varied, {args.events_per_min:g} events/min, cycle "
                                       f"{result.cycle_rounds} rounds")
    print(f"\n{args.minutes:g} min at {args.load:,.0f} msg/s offered ({args.vehicles} vehicles x "
          f"3 streams, {load}); hub ingested {rate:,.0f} msg/s, {final['received']:,} messages")
    print(f"blaster: {result.sent:,} telemetry, {result.events} events "
          f"({result.events_acked} acknowledged), {result.rsu_status} RSU status; CPU "
          f"{result.cpu_s / max(1e-9, result.elapsed_s):.3f} core; buffer "
          f"{result.buffer_bytes / 2**20:.1f} MiB")
    print(f"console: {sum(console.frames.values()):,} frames ({console.bytes / 1e6:,.0f} MB), "
          f"reconnects {console.reconnects}; operator acks {console.acks}, resolves "
          f"{console.resolves}, refused {console.refused} (alert already resolved), failed "
          f"{console.failed}")
    report(first, final)
    print(f"\nRSS after warm-up ({args.warmup_min:g} min) {steady[0][1]:.1f} MB, at the end "
          f"{steady[-1][1]:.1f} MB, peak {max(mb for _, mb in steady):.1f} MB")
    print(f"growth {growth:+.1f} MB; trend {trend:+.1f} MB/hour (bound {args.bound_mb:g} MB); "
          f"lost: quarantined {final['quarantined']}, dropped {final['dropped']:.0f}, "
          f"never received {missing}")
    ok = growth <= args.bound_mb and trend <= args.bound_mb and lost == 0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
