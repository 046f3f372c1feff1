"""Choose the hub's MQTT client by measurement: bare subscribers that only count messages.

Run: ``/tmp/venv/bin/python bench/mqtt_clients.py [--seconds 8] [--vehicles 1000]``

Each candidate runs in its own process against a throwaway mosquitto while a raw-socket
blaster (another process) publishes a fleet's telemetry, either as fast as the broker takes it
or paced. The rate is taken over a steady window (from ``--warmup`` after the first message to
the end of publishing), so connect and warm-up do not count. The subscriber's own CPU use is
sampled too: ``msgs/s per core`` = rate / CPU fraction is what it could do with a core to itself,
which matters on a 2-core box where broker, blaster and subscriber compete.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from testing.blaster import start_blaster
from testing.broker import Broker, running_broker

TOPIC = "l4mon/v1/+/vehicle/#"
CLIENTS = (
    "gmqtt",
    "gmqtt-lean",
    "gmqtt-asyncio",
    "aiomqtt",
    "aiomqtt-v311",
    "paho",
    "paho-v311",
    "mosquitto_sub",
)
SAMPLE_S = 0.05
DRAIN_QUIET_S = 0.5  # after publishing stops: done once no message arrived for this long
DRAIN_MAX_S = 3.0

#: monotonic, count, subscriber cpu s, broker cpu s, whole-machine busy cpu s
Sample = tuple[float, int, float, float, float]


def proc_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process (all threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def box_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores), to spot outside load."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class _Sampler:
    """Records (time, count, cpu) every SAMPLE_S until publishing stopped and the queue drained."""

    def __init__(self, stop: Event, broker_pid: int, hard_deadline: float) -> None:
        self.stop = stop
        self.broker_pid = broker_pid
        self.hard_deadline = hard_deadline
        self.count: Callable[[], int] = lambda: 0
        self.cpu: Callable[[], float] = time.process_time
        self.samples: list[Sample] = []
        self._stopped_at: float | None = None

    def tick(self) -> bool:
        """Take one sample; True when finished."""
        now = time.monotonic()
        n = self.count()
        self.samples.append((now, n, self.cpu(), proc_cpu_s(self.broker_pid), box_busy_s()))
        if now >= self.hard_deadline:
            return True
        if self._stopped_at is None:
            if self.stop.is_set():
                self._stopped_at = now
            return False
        quiet = int(DRAIN_QUIET_S / SAMPLE_S)
        recent = self.samples[-quiet:]
        idle = len(recent) == quiet and recent[0][1] == n
        return idle or now - self._stopped_at >= DRAIN_MAX_S

    async def run_async(self) -> None:
        # Polling on purpose: the stop flag is a multiprocessing Event, not an asyncio one.
        while not self.tick():  # noqa: ASYNC110
            await asyncio.sleep(SAMPLE_S)

    def run_blocking(self) -> None:
        while not self.tick():
            time.sleep(SAMPLE_S)


async def _gmqtt(host: str, port: int, qos: int, ready: Event, sampler: _Sampler, *,
                 lean: bool = False) -> None:
    """``lean``: with the hub's lean QoS 0 PUBLISH path (l4mon/ingest/_gmqtt.py), so that the
    hub is compared with a bare subscriber of exactly the client it runs on."""
    from gmqtt import Client
    from gmqtt.mqtt.constants import MQTTv50

    n = 0

    def on_message(client: object, topic: str, payload: bytes, qos: int, props: object) -> int:
        nonlocal n
        n += 1
        return 0  # PUBACK reason "success" (used when optimistic_acknowledgement=False)

    subscribed = asyncio.Event()
    # optimistic_acknowledgement (the default) PUBACKs before on_message runs.
    client = Client(f"bench-gmqtt-{os.getpid()}", optimistic_acknowledgement=True)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    await asyncio.wait_for(client.connect(host, port, version=MQTTv50), 5.0)
    if lean:
        from l4mon.ingest._gmqtt import install_lean_publish

        def count(_delivery: object, ack: Callable[[], None] | None = None) -> None:
            nonlocal n
            n += 1
            if ack is not None:
                ack()  # a bare subscriber has nothing to process first

        if not install_lean_publish(client, count):
            raise RuntimeError("the lean PUBLISH path could not be installed")
    client.subscribe(TOPIC, qos=qos)
    await asyncio.wait_for(subscribed.wait(), 5.0)
    sampler.count = lambda: n
    ready.set()
    await sampler.run_async()
    await asyncio.wait_for(client.disconnect(), 2.0)


async def _aiomqtt(
    host: str, port: int, qos: int, ready: Event, sampler: _Sampler, *, v5: bool = True
) -> None:
    import aiomqtt

    n = 0

    async def consume(client: aiomqtt.Client) -> None:
        nonlocal n
        async for _message in client.messages:
            n += 1

    async with aiomqtt.Client(
        host,
        port,
        identifier=f"bench-aiomqtt-{os.getpid()}",
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        timeout=5.0,
    ) as client:
        await client.subscribe(TOPIC, qos=qos)
        task = asyncio.create_task(consume(client))
        sampler.count = lambda: n
        ready.set()
        await sampler.run_async()
        task.cancel()


def _run_asyncio(
    coro: Callable[[str, int, int, Event, _Sampler], Awaitable[None]],
    use_uvloop: bool,
) -> Callable[[str, int, int, Event, _Sampler], None]:
    def run(host: str, port: int, qos: int, ready: Event, sampler: _Sampler) -> None:
        factory = None
        if use_uvloop:
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(coro(host, port, qos, ready, sampler))  # type: ignore[arg-type]

    return run


def _paho(
    host: str, port: int, qos: int, ready: Event, sampler: _Sampler, *, v5: bool = True
) -> None:
    import paho.mqtt.client as mqtt

    n = 0
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal n
        n += 1

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bench-paho-{os.getpid()}",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.loop_start()  # paho's own network thread; this thread only samples
    try:
        client.subscribe(TOPIC, qos=qos)
        if not subscribed.wait(5.0):
            raise TimeoutError("paho: no SUBACK")
        sampler.count = lambda: n
        ready.set()
        sampler.run_blocking()
        client.disconnect()
    finally:
        client.loop_stop()


def _mosquitto_sub(host: str, port: int, qos: int, ready: Event, sampler: _Sampler) -> None:
    """mosquitto_sub writes one byte per message (``-F x -N``) to a file; we watch its size."""
    with tempfile.TemporaryFile() as out:
        cmd = ["mosquitto_sub", "-h", host, "-p", str(port), "-t", TOPIC, "-q", str(qos)]
        cmd += ["-V", "5", "-F", "x", "-N", "-i", f"bench-mosquitto_sub-{os.getpid()}"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        try:
            os.sched_setaffinity(proc.pid, os.sched_getaffinity(0))
            size = lambda: os.fstat(out.fileno()).st_size  # noqa: E731
            # No SUBACK is visible from outside, so probe until a message arrives.
            deadline = time.monotonic() + 5.0
            probe = ["mosquitto_pub", "-h", host, "-p", str(port), "-V", "5"]
            probe += ["-t", "l4mon/v1/probe/vehicle/x/probe", "-m", "{}"]
            while size() == 0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise TimeoutError("mosquitto_sub did not subscribe")
                subprocess.run(probe, timeout=5.0, check=True)
                time.sleep(0.1)
            time.sleep(0.2)
            base = size()
            sampler.count = lambda: size() - base
            sampler.cpu = lambda: proc_cpu_s(proc.pid)
            ready.set()
            sampler.run_blocking()
        finally:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2.0)


RUNNERS: dict[str, Callable[[str, int, int, Event, _Sampler], None]] = {
    "gmqtt": _run_asyncio(_gmqtt, use_uvloop=True),
    "gmqtt-asyncio": _run_asyncio(_gmqtt, use_uvloop=False),
    "gmqtt-lean": _run_asyncio(partial(_gmqtt, lean=True), use_uvloop=True),
    "aiomqtt": _run_asyncio(_aiomqtt, use_uvloop=True),
    # v3.1.1 variants: paho builds a Properties object per v5 message, a large share of its cost.
    "aiomqtt-v311": _run_asyncio(partial(_aiomqtt, v5=False), use_uvloop=True),
    "paho": _paho,
    "paho-v311": partial(_paho, v5=False),
    "mosquitto_sub": _mosquitto_sub,
}


def _worker(
    *,
    kind: str,
    host: str,
    port: int,
    qos: int,
    broker_pid: int,
    cpu: int | None,
    hard_deadline: float,
    ready: Event,
    stop: Event,
    conn: Connection,
) -> None:
    """Subscriber process: run one client, send back its samples (or the error)."""
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        sampler = _Sampler(stop, broker_pid, hard_deadline)
        RUNNERS[kind](host, port, qos, ready, sampler)
        conn.send(sampler.samples)
    except BaseException as exc:  # any failure is reported to the parent
        conn.send(f"{kind} failed: {exc!r}")
    finally:
        conn.close()


@dataclass
class RunResult:
    client: str
    qos: int
    mode: str
    received: int = 0
    window_s: float = 0.0
    rate: float = 0.0
    sub_cpu: float = 0.0
    broker_cpu: float = 0.0
    box_cpu: float = 0.0
    sent: int = 0
    missing: int = 0
    broker_dropped: int | None = None
    error: str = ""
    extra: dict[str, object] | None = None  # what a subject reports besides its count


def dropped_total(broker: Broker) -> int | None:
    """Cumulative ``$SYS/broker/publish/messages/dropped`` (needs sys_interval > 0)."""
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", "1", "-W", "3"]
    cmd += ["-t", "$SYS/broker/publish/messages/dropped"]
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, timeout=5.0, text=True).stdout
        return int(out.strip())
    except (subprocess.SubprocessError, ValueError):
        return None


def run_one(
    broker: Broker,
    kind: str,
    qos: int,
    rate: float | None,
    args: argparse.Namespace,
) -> RunResult:
    """One bounded candidate run: subscriber up, blast, measure the steady window."""
    mode = "max" if not rate else f"{rate / 1000:.0f}k/s"
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    hard_deadline = time.monotonic() + args.seconds + 20.0
    sub_cpu = 1 if args.pin else None
    proc = ctx.Process(
        target=_worker,
        kwargs={
            "kind": kind,
            "host": broker.host,
            "port": broker.port,
            "qos": qos,
            "broker_pid": broker.pid,
            "cpu": sub_cpu,
            "hard_deadline": hard_deadline,
            "ready": ready,
            "stop": stop,
            "conn": child,
        },
        daemon=True,
    )
    dropped_before = dropped_total(broker)
    proc.start()
    child.close()
    try:
        if not ready.wait(15.0):
            msg = parent.recv() if parent.poll(0.1) else "not ready within 15 s"
            return RunResult(kind, qos, mode, error=str(msg))
        blaster = start_blaster(
            host=broker.host,
            port=broker.port,
            vehicles=args.vehicles,
            rate=rate,
            duration_s=args.seconds,
            qos=qos,
            client_id=f"bench-blaster-{kind}-{qos}",
            cpu=0 if args.pin else None,
        )
        blast = blaster.join(args.seconds + 15.0)
        stop.set()
        if not parent.poll(DRAIN_MAX_S + 10.0):
            raise TimeoutError(f"{kind}: no samples")
        samples = parent.recv()
    finally:
        proc.join(3.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(3.0)
        parent.close()
    if isinstance(samples, str):
        return RunResult(kind, qos, mode, sent=blast.sent, error=samples)
    time.sleep(1.1)  # $SYS is refreshed every second
    dropped_after = dropped_total(broker)
    dropped = (
        dropped_after - dropped_before
        if dropped_after is not None and dropped_before is not None
        else None
    )
    first = next((s for s in samples if s[1] > 0), None)
    total = samples[-1][1]
    end = blast.started + blast.elapsed_s
    if first is None:
        return RunResult(
            kind,
            qos,
            mode,
            sent=blast.sent,
            missing=blast.sent,
            broker_dropped=dropped,
            error="none",
        )
    start = first[0] + args.warmup
    window = [s for s in samples if start <= s[0] <= end]
    if len(window) < 2:
        return RunResult(
            kind,
            qos,
            mode,
            received=total,
            sent=blast.sent,
            missing=blast.sent - total,
            broker_dropped=dropped,
            error="window too short",
        )
    a, b = window[0], window[-1]
    dt = b[0] - a[0]
    return RunResult(
        client=kind,
        qos=qos,
        mode=mode,
        received=b[1] - a[1],
        window_s=dt,
        rate=(b[1] - a[1]) / dt,
        sub_cpu=(b[2] - a[2]) / dt,
        broker_cpu=(b[3] - a[3]) / dt,
        box_cpu=(b[4] - a[4]) / dt,
        sent=blast.sent,
        missing=blast.sent - total,
        broker_dropped=dropped,
    )


def print_table(results: list[RunResult]) -> None:
    best: dict[tuple[int, str], float] = {}
    for r in results:
        key = (r.qos, r.mode)
        best[key] = max(best.get(key, 0.0), r.rate)
    head = (
        f"{'client':<14}{'qos':>4}{'mode':>9}{'received':>11}{'seconds':>8}{'msgs/s':>10}"
        f"{'vs best':>8}{'sub cpu':>8}{'/core':>10}{'brk cpu':>8}{'box':>6}{'sent':>10}"
        f"{'missing':>10}{'dropped':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        if r.error and not r.rate:
            print(f"{r.client:<14}{r.qos:>4}{r.mode:>9}  ERROR {r.error}")
            continue
        ratio = r.rate / best[(r.qos, r.mode)] if best[(r.qos, r.mode)] else 0.0
        per_core = r.rate / r.sub_cpu if r.sub_cpu > 0.05 else 0.0
        dropped = "?" if r.broker_dropped is None else str(r.broker_dropped)
        print(
            f"{r.client:<14}{r.qos:>4}{r.mode:>9}{r.received:>11,}{r.window_s:>8.2f}"
            f"{r.rate:>10,.0f}{ratio:>8.2f}{r.sub_cpu:>8.2f}{per_core:>10,.0f}"
            f"{r.broker_cpu:>8.2f}{r.box_cpu:>6.2f}{r.sent:>10,}{r.missing:>10,}{dropped:>9}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="publishing time per run (<= 10)")
    ap.add_argument("--warmup", type=float, default=1.5, help="excluded after the first message")
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--qos", default="0,1")
    ap.add_argument("--rates", default="0,150000", help="publisher msgs/s per run, 0 = max")
    ap.add_argument("--paced-qos1", action="store_true", help="also run paced rates at QoS 1")
    ap.add_argument("--pin", action="store_true", help="subscriber on CPU 1, broker+blaster CPU 0")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 10.0)
    if args.warmup >= args.seconds - 1.0:
        ap.error("--warmup must leave at least 1 s of steady window")
    clients = [c for c in args.clients.split(",") if c]
    unknown = set(clients) - set(RUNNERS)
    if unknown:
        ap.error(f"unknown clients {sorted(unknown)}; choose from {', '.join(CLIENTS)}")
    results: list[RunResult] = []
    with running_broker(sys_interval=1) as broker:
        if args.pin:
            os.sched_setaffinity(broker.pid or 0, {0})
        print(
            f"broker {broker.url} pid {broker.pid}; cpus {sorted(os.sched_getaffinity(0))}; "
            f"{args.vehicles} vehicles x 3 streams; {args.seconds:.0f} s per run",
            flush=True,
        )
        for qos in (int(q) for q in args.qos.split(",")):
            for rate in (float(r) for r in args.rates.split(",")):
                if qos == 1 and rate and not args.paced_qos1:
                    continue
                for kind in clients:
                    r = run_one(broker, kind, qos, rate or None, args)
                    results.append(r)
                    print(
                        f"  {kind} qos{qos} {r.mode}: {r.rate:,.0f} msg/s "
                        f"(sub cpu {r.sub_cpu:.2f}, broker cpu {r.broker_cpu:.2f}) {r.error}",
                        flush=True,
                    )
    print()
    print_table(results)
    print("\nmsgs/s = received in the steady window / its length; /core = msgs/s / sub cpu;")
    print("missing = sent - received after draining; dropped = broker $SYS counter delta;")
    print("box = busy cores machine-wide; well above sub+broker+0.15 means outside load.")


if __name__ == "__main__":
    main()
