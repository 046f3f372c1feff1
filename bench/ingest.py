"""Hub ingest throughput: a real ``l4mon serve`` against a bare subscriber, same broker and load.

Run: ``.venv/bin/python bench/ingest.py [--seconds 8] [--vehicles 1000] [--repeats 3]
[--handovers] [--baseline TREE]``

The same blaster load (``--vehicles`` x 3 streams, as fast as the broker forwards, QoS 0) goes
to a bare subscriber that only counts (bench/mqtt_clients.py's ``gmqtt-lean``: gmqtt with the
hub's lean PUBLISH path, i.e. exactly the client the hub runs on), and to ``l4mon serve`` as an
operator runs it: a child process with the default config and a journal, its HTTP server up,
a console WebSocket connected (on duty) and read for the whole run. Each subject is a fresh
process per run. The hub's rate comes from its own counter (``/healthz`` ``ingest.received``,
polled every 0.2 s) over the steady window (from ``--warmup`` after its first message to the
end of publishing), its CPU share from /proc/PID/stat (utime + stime, all threads) over the
same window; msgs/s per core = rate / CPU share, what it would do with a core to itself
(broker, blaster and subscriber share 2 cores here). The order alternates: bare first in even
repeats, hub first in odd ones, so neither always meets a warmer machine. Ratios are taken
within a repeat and printed as the median with the min-max over repeats.

Targets: hub >= 80 % of the bare subscriber; >= 100,000 msg/s per core.

``--handovers`` adds, in each repeat, the same hub with handover detection off
(``[handover] enabled = false``; on by default) and prints the default hub's CPU cost per
message against it. Target: less than 15 % more. ``--baseline TREE`` adds the hub
from another copy of the project (e.g. ``git worktree add /tmp/base REV``; its ``l4mon serve``
runs with cwd and ``PYTHONPATH`` there, and the import path is printed once) and prints this
tree's hub against it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from mqtt_clients import (  # sibling scripts: see bench/__init__.py
    RunResult,
    box_busy_s,
    dropped_total,
    proc_cpu_s,
    run_one,
)
from replay_log import code_path, tree_env
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from testing.blaster import start_blaster
from testing.broker import Broker, free_port, running_broker
from testing.entry import cli
from testing.hub import AUTH, TEST_TOKEN, HubProcess, stop_hub, write_hub_config

ROOT = Path(__file__).resolve().parent.parent
#: client -> (bare subscriber kind in mqtt_clients, the hub's --mqtt-client). "gmqtt-stock"
#: compares the hub with gmqtt as shipped, without the lean path.
PAIRS = {"gmqtt": ("gmqtt-lean", "gmqtt"), "gmqtt-stock": ("gmqtt", "gmqtt"),
         "aiomqtt": ("aiomqtt", "aiomqtt")}
SAMPLE_S = 0.2  # /healthz polls: a few ms of the hub's CPU each, so not much more often
DRAIN_QUIET_S = 0.6  # after publishing: done once the counter has not moved for this long
DRAIN_MAX_S = 3.0
FRAME_TYPE = re.compile(r'"type"\s*:\s*"(\w+)"')


@dataclass
class Console:
    """A console WebSocket read in a thread until stopped: what an operator's browser costs
    the hub (snapshot, state frames, alert frames), without the browser."""

    url: str
    frames: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    closed: str = ""
    first: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self, deadline: float) -> None:
        self.thread = threading.Thread(target=self._read, args=(deadline,), daemon=True)
        self.thread.start()
        if not self.first.wait(10.0):
            raise TimeoutError(f"no console frame within 10 s ({self.closed or 'open'})")

    def _read(self, deadline: float) -> None:
        try:
            with connect(self.url, max_size=None, open_timeout=10.0) as ws:
                # Bounded: the stop flag, the deadline, or the hub closing the socket.
                while not self.stop.is_set() and time.monotonic() < deadline:
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    text = raw if isinstance(raw, str) else raw.decode(errors="replace")
                    kind = FRAME_TYPE.search(text[:200])
                    name = kind[1] if kind else "?"
                    self.frames[name] = self.frames.get(name, 0) + 1
                    self.bytes += len(raw)
                    self.first.set()
        except (ConnectionClosed, OSError, TimeoutError) as error:
            self.closed = repr(error)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5.0)


def launch(tree: Path, broker: Broker, state: Path, *, client: str,
           handovers: bool) -> HubProcess:
    """``python -m l4mon serve`` from ``tree`` with a default config (journal, the test
    token), connected to ``broker``. testing/hub.py's ``launch_hub`` always runs this tree's
    code, so the child is started here, the same way for the subject and a baseline."""
    config = write_hub_config(state)
    if not handovers:
        with config.open("a") as f:
            f.write("[handover]\nenabled = false\n")
    port = free_port()
    log_path = state / "hub.log"
    command = [*cli(tree), "serve", "--config", str(config), "--broker",
               broker.url, "--http", f"127.0.0.1:{port}"]
    if client != "gmqtt":  # the default; an older baseline may not know the flag
        command += ["--mqtt-client", client]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tree,
                                env=tree_env(tree))
    hub = HubProcess(proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0,
                                        headers=AUTH), log_path)
    def connected() -> bool:
        if proc.poll() is not None:  # fail now, not after the timeout
            raise RuntimeError(f"l4mon serve exited with {proc.returncode}\n{hub.log()[-2000:]}")
        return bool(hub.json("/healthz")["mqtt"]["connected"])  # type: ignore[index]

    try:
        hub.wait_for(connected, timeout=30.0, what="the hub to connect to the broker")
    except BaseException:
        stop_hub(hub)
        raise
    return hub


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def run_hub(tree: Path, broker: Broker, args: argparse.Namespace, *, label: str, client: str,
            handovers: bool) -> RunResult:
    """One bounded run of a real hub: start it, connect a console, blast, sample, stop."""
    with tempfile.TemporaryDirectory(prefix="l4mon-bench-ingest-") as tmp:
        hub = launch(tree, broker, Path(tmp), client=client, handovers=handovers)
        console = None
        try:
            time.sleep(0.3)  # connected; give the broker time to apply the SUBSCRIBE
            hub.http.post("/api/duty/on").raise_for_status()
            port = hub.http.base_url.port
            console = Console(f"ws://127.0.0.1:{port}/ws?token={TEST_TOKEN}")
            console.start(time.monotonic() + args.seconds + 40.0)
            return _measure(hub, console, broker, args, label)
        except Exception as error:  # reported in the table, the other runs go on
            return RunResult(label, 0, "max", error=f"{error!r}\n{hub.log()[-1500:]}")
        finally:
            if console is not None:
                console.close()
            stop_hub(hub)


def _measure(hub: HubProcess, console: Console, broker: Broker, args: argparse.Namespace,
             label: str) -> RunResult:
    pid = hub.proc.pid
    samples: list[tuple[float, int, float, float, float]] = []  # t, received, hub/broker/box cpu
    published = threading.Event()
    failed: list[str] = []

    def sample() -> None:
        before = time.monotonic()
        received = int(hub.json("/healthz")["ingest"]["received"])  # type: ignore[index]
        at = (before + time.monotonic()) / 2  # the counter was read in between
        samples.append((at, received, proc_cpu_s(pid), proc_cpu_s(broker.pid or 0),
                        box_busy_s()))

    def sampler() -> None:
        hard = time.monotonic() + args.seconds + 25.0
        stopped = None
        quiet = int(DRAIN_QUIET_S / SAMPLE_S)
        # Bounded by ``hard``; ends earlier once publishing stopped and the hub drained.
        while time.monotonic() < hard:
            try:
                sample()
            except (httpx.HTTPError, KeyError, ValueError) as error:
                failed.append(f"/healthz failed: {error!r}")
                return
            if published.is_set():
                stopped = stopped or time.monotonic()
                recent = samples[-quiet:]
                if (len(recent) == quiet and recent[0][1] == recent[-1][1]) \
                        or time.monotonic() - stopped >= DRAIN_MAX_S:
                    return
            time.sleep(SAMPLE_S)

    dropped_before = dropped_total(broker)
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    blaster = start_blaster(host=broker.host, port=broker.port, vehicles=args.vehicles,
                            rate=args.rate or None, duration_s=args.seconds, qos=0,
                            client_id=f"bench-blaster-{label}")
    try:
        blast = blaster.join(args.seconds + 15.0)
    finally:
        published.set()
        thread.join(args.seconds + 30.0)
    health: Any = hub.json("/healthz")
    metrics = hub.get("/metrics").text
    time.sleep(1.1)  # $SYS is refreshed every second
    dropped_after = dropped_total(broker)
    extra = {
        "sent": blast.sent, "received": health["ingest"]["received"],
        "accepted": health["ingest"]["accepted"], "quarantined": health["ingest"]["quarantined"],
        "duplicates": health["ingest"]["duplicates"],
        "buffer_dropped": _metric(metrics, "l4mon_ingest_dropped_total"),
        "vehicles": health["vehicles"], "lean_path": health["mqtt"].get("lean_path"),
        "console_frames": dict(console.frames), "console_mb": round(console.bytes / 1e6, 1),
        "console_closed": console.closed or None,
    }
    total = int(health["ingest"]["received"])  # after the drain
    dropped = None if dropped_before is None or dropped_after is None \
        else dropped_after - dropped_before
    first = next((s for s in samples if s[1] > 0), None)
    end = blast.started + blast.elapsed_s
    window = [s for s in samples if first is not None and first[0] + args.warmup <= s[0] <= end]
    if len(window) < 2 or failed:
        why = failed[0] if failed else "no message" if first is None else "window too short"
        return RunResult(label, 0, "max", received=total, sent=blast.sent,
                         missing=blast.sent - total, broker_dropped=dropped, error=why,
                         extra=extra)
    a, b = window[0], window[-1]
    dt = b[0] - a[0]
    return RunResult(label, 0, "max", received=b[1] - a[1], window_s=dt, rate=(b[1] - a[1]) / dt,
                     sub_cpu=(b[2] - a[2]) / dt, broker_cpu=(b[3] - a[3]) / dt,
                     box_cpu=(b[4] - a[4]) / dt, sent=blast.sent, missing=blast.sent - total,
                     broker_dropped=dropped, extra=extra)


def _per_core(r: RunResult) -> float:
    return r.rate / r.sub_cpu if r.sub_cpu > 0.05 else 0.0


def _spread(values: list[float], fmt: str = ".3f") -> str:
    ordered = sorted(values)
    return (f"{median(ordered):{fmt}} (min-max {ordered[0]:{fmt}}-{ordered[-1]:{fmt}}, "
            f"n={len(ordered)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="publishing time per run (<= 10)")
    ap.add_argument("--warmup", type=float, default=1.5, help="excluded after the first message")
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", default="gmqtt", help="comma list of: " + ", ".join(PAIRS))
    ap.add_argument("--rate", type=float, default=0.0, help="publisher msgs/s, 0 = max")
    ap.add_argument("--handovers", action="store_true",
                    help="also run the hub without handover detection, in each repeat")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another copy of the project: its hub runs in each repeat too")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 10.0)
    args.pin = False  # for mqtt_clients.run_one
    clients = [c for c in args.clients.split(",") if c]
    if not clients or set(clients) - set(PAIRS):
        ap.error(f"--clients: choose from {', '.join(PAIRS)}")
    if args.repeats < 1 or args.warmup >= args.seconds - 1.0:
        ap.error("--repeats must be >= 1; --warmup must leave >= 1 s of steady window")
    baseline = args.baseline.resolve() if args.baseline is not None else None
    print(f"hub: l4mon from {code_path(ROOT)}", flush=True)
    if baseline is not None:
        print(f"baseline hub: l4mon from {code_path(baseline)}", flush=True)
    # (client, repeat, side) -> result; sides: bare, hub, hub-nohandover, baseline
    results: dict[tuple[str, int, str], RunResult] = {}
    with running_broker(sys_interval=1) as broker:
        print(f"broker {broker.url}; {args.vehicles} vehicles x 3 streams, QoS 0, "
              f"{args.seconds:g} s per run, {args.repeats} repeats", flush=True)
        for repeat in range(args.repeats):
            for client in clients:
                bare_kind, hub_client = PAIRS[client]
                sides = ["bare", "hub"] + (["hub-nohandover"] if args.handovers else []) \
                    + (["baseline"] if baseline is not None else [])
                for side in sides if repeat % 2 == 0 else sides[::-1]:
                    if side == "bare":
                        r = run_one(broker, bare_kind, 0, args.rate or None, args)
                    else:
                        r = run_hub(baseline if side == "baseline" and baseline else ROOT,
                                    broker, args, label=side, client=hub_client,
                                    handovers=side != "hub-nohandover")
                    results[(client, repeat, side)] = r
                    print(f"  [{repeat}] {client} {side}: {r.rate:,.0f} msg/s, CPU "
                          f"{r.sub_cpu:.2f}, {_per_core(r):,.0f} per core"
                          f"{' ' + r.error if r.error else ''}", flush=True)
    _print(results, clients, args.repeats)


def _pairs(results: dict[tuple[str, int, str], RunResult], client: str, repeats: int, a: str,
           b: str) -> list[tuple[RunResult, RunResult]]:
    """Sides ``a`` and ``b`` of the same repeat, where both measured a rate and a CPU share."""
    out = []
    for n in range(repeats):
        x, y = results.get((client, n, a)), results.get((client, n, b))
        if x is not None and y is not None and _per_core(x) and _per_core(y):
            out.append((x, y))
    return out


def _print(results: dict[tuple[str, int, str], RunResult], clients: list[str],
           repeats: int) -> None:
    print()
    head = (f"{'client':<12}{'run':>4} {'side':<15}{'msgs/s':>10}{'CPU':>6}{'per core':>10}"
            f"{'broker':>7}{'box':>6}{'missing':>10}{'brk drop':>9}")
    print(head)
    print("-" * len(head))
    for (client, repeat, side), r in results.items():
        dropped = "?" if r.broker_dropped is None else f"{r.broker_dropped:,}"
        print(f"{client:<12}{repeat:>4} {side:<15}{r.rate:>10,.0f}{r.sub_cpu:>6.2f}"
              f"{_per_core(r):>10,.0f}{r.broker_cpu:>7.2f}{r.box_cpu:>6.2f}{r.missing:>10,}"
              f"{dropped:>9}")
    for (client, repeat, side), r in results.items():
        if r.extra is not None:
            print(f"{client} run {repeat} {side}: {r.extra}")
    print()
    for client in clients:
        mine = _pairs(results, client, repeats, "hub", "bare")
        if mine:
            ratio = median(h.rate / b.rate for h, b in mine)
            core = [_per_core(h) for h, _ in mine]
            print(f"{client}: hub / bare msgs/s {_spread([h.rate / b.rate for h, b in mine])}"
                  f" (target >= 0.80: {'PASS' if ratio >= 0.80 else 'FAIL'})")
            print(f"{client}: hub / bare per core "
                  f"{_spread([_per_core(h) / _per_core(b) for h, b in mine])}")
            print(f"{client}: hub msgs/s per core {_spread(core, ',.0f')} (target >= 100,000: "
                  f"{'PASS' if median(core) >= 100_000 else 'FAIL'})")
        ab = _pairs(results, client, repeats, "hub", "baseline")
        if ab:
            print(f"{client}: hub / baseline hub msgs/s {_spread([h.rate / b.rate for h, b in ab])}"
                  f"; per core {_spread([_per_core(h) / _per_core(b) for h, b in ab])}")
        tracked = _pairs(results, client, repeats, "hub-nohandover", "hub")
        if tracked:
            cost = [_per_core(w) / _per_core(h) for w, h in tracked]
            print(f"{client}: handover detection, CPU per message with / without "
                  f"{_spread(cost, '.3f')} (target < 1.15: "
                  f"{'PASS' if median(cost) < 1.15 else 'FAIL'})")
    print("\nmsgs/s over the steady window; CPU = the subscriber's share of one core; per core "
          "= msgs/s / CPU;\nbroker, box = the broker's and the whole machine's busy cores; "
          "missing = sent - counted after draining\n(broker drops, or the hub's buffer drops: "
          "buffer_dropped); brk drop = the broker's $SYS dropped counter.")


if __name__ == "__main__":
    main()
