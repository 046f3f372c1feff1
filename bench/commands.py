"""Commands end to end: console click to the vehicle's "received" on the console, under load;
and commands in flight when a hub is killed with -9 or a pair fails over.

Run: ``.venv/bin/python bench/commands.py [--commands 200] [--spacing 0.05] [--load 30000]
[--vehicles 1000] [--kills 2] [--in-flight 30] [--connections own|shared|both]
[--no-latency] [--no-faults]``

**Latency** (issue 25's target: p99 < 150 ms with 30,000 msg/s of background load). A real
Mosquitto, a real ``l4mon serve`` (its own process) and the blaster at ``--load`` msg/s
(``--vehicles`` x 3 streams x 10 Hz). This process is both ends: the console (a WebSocket on
``/ws``, and ``POST /api/vehicles/{v}/commands`` as the console's buttons send it) and ten
simulated vehicles on one MQTT connection, each reporting its state at 10 Hz and answering
each command it hears "received" at once (QoS 1), "done" 0.3 s later. ``--commands`` stops go
out ``--spacing`` s apart, round robin over the vehicles; for each, from just before the POST:
the vehicle hears it, the POST's 202, and the console's ``command`` frame saying
``received`` (what the operator sees) — one clock, this process's.

**Faults** (target: 0 lost, 0 executed twice). The same vehicles count each id they hear and
execute an id once (``scenarios/sim/obey.py``'s rule). ``--kills`` times each: (a) a single hub
on SQLite: ``--in-flight`` stops 20 ms apart, ``kill -9`` of the hub after half of them were
accepted, a restart on the same journal and port; (b) a pair on PostgreSQL
(bench/ha_failover.py's ``Pair``): the same, with the leader killed and the standby leading.
Then, once every accepted command has ended (done, or raised not confirmed), from the journal:
**lost** = accepted (202) but neither executed by its vehicle nor raised as not confirmed;
**executed twice** = ids a vehicle executed more than once; **delivered twice** = ids a vehicle
heard more than once (what a vehicle without the id rule would have executed twice). A POST cut
by the kill (no 202) was never accepted: the console said so, and it is counted apart.

Bounded: every wait has a deadline, every process is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import paho.mqtt.client as paho
import websockets

from bench.ha_failover import Pair, _until
from telemetry.commands import CommandAnswer, answer_topic, decode_command, encode
from telemetry.topics import PREFIX, state_topic
from telemetry.wire import VehicleState
from testing.blaster import start_blaster
from testing.broker import Broker, free_port, running_broker
from testing.figures import percentile
from testing.hub import AUTH, TEST_TOKEN, HubProcess, launch_hub, stop_hub, write_hub_config
from testing.postgres import PostgresServer

SITE = "cmd"
VEHICLES = [f"cmd-{i:02d}" for i in range(10)]
FINAL = ("done", "refused", "failed", "not_confirmed")
#: As deploy/mosquitto/mosquitto.conf: packets out at once (no Nagle delay behind a delayed
#: ACK); ``--nagle`` leaves it off, as Mosquitto's default.
BROKER: list[str] = ["set_tcp_nodelay true"]



class BenchVehicles:
    """Ten vehicles on one paho connection: state at 10 Hz, each command answered; each id
    counted as heard, and executed once (a vehicle's id rule)."""

    def __init__(self, broker: Broker) -> None:
        self.heard: Counter[str] = Counter()
        self.executed: Counter[str] = Counter()
        self.heard_at: dict[str, float] = {}
        #: Ids the vehicle has said "done" for: any other accepted id is in flight.
        self.done_sent: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-cmd-veh",
                                  protocol=paho.MQTTv5)
        self.client.on_message = self._on_command
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/{SITE}/vehicle/+/command", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the bench vehicles could not subscribe")
        self._reporter = threading.Thread(target=self._report, daemon=True)
        self._reporter.start()

    def _report(self) -> None:
        seq = 0
        while not self._stop.wait(0.1):
            for vehicle in VEHICLES:
                self.client.publish(state_topic(SITE, vehicle), msgspec.json.encode(VehicleState(
                    ts=time.time(), seq=seq, lat=36.0, lon=136.0, speed_mps=5.0,
                    heading_deg=0.0, mode="autonomous")))
            seq += 1

    def _answer(self, vehicle: str, command_id: str, status: str) -> None:
        if status == "done":
            self.done_sent.add(command_id)
        self.client.publish(answer_topic(SITE, vehicle), encode(CommandAnswer(
            id=command_id, status=status, ts=time.time())), qos=1)  # type: ignore[arg-type]

    def _on_command(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        at = time.perf_counter()
        vehicle = message.topic.split("/")[4]
        command = decode_command(message.payload)
        with self._lock:
            self.heard[command.id] += 1
            self.heard_at.setdefault(command.id, at)
            first = command.id not in self.executed
            if first:
                self.executed[command.id] += 1
        # A repeat is answered again (the hub may have missed the first), never executed again.
        self._answer(vehicle, command.id, "received")
        if first:
            threading.Timer(0.3, self._answer, (vehicle, command.id, "done")).start()

    def close(self) -> None:
        self._stop.set()
        self._reporter.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def _fresh(hub_port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        got = httpx.get(f"http://127.0.0.1:{hub_port}/api/vehicles", headers=AUTH, timeout=2.0)
        fresh = {v["id"] for v in got.json() if v["telemetry"] == "fresh"}
        return set(VEHICLES) <= fresh
    return False


# -- latency --------------------------------------------------------------------------------

@dataclass
class Latency:
    click_to_received_ms: list[float] = field(default_factory=list)
    click_to_heard_ms: list[float] = field(default_factory=list)
    click_to_202_ms: list[float] = field(default_factory=list)
    missing: int = 0
    refused: int = 0
    #: Why the hub refused (status and the start of its detail), counted.
    refusals: Counter[str] = field(default_factory=Counter)


async def _clicks(port: int, vehicles: BenchVehicles, count: int, spacing: float) -> Latency:
    out = Latency()
    clicked: dict[str, float] = {}
    seen: dict[str, float] = {}
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={TEST_TOKEN}",
                                  max_size=None) as ws, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH,
                              timeout=10.0) as http:

        async def receive() -> None:
            async for raw in ws:
                now = time.perf_counter()
                if not (isinstance(raw, str) and raw.startswith('{"type":"command"')):
                    continue  # state frames are large; parsing them would delay the clock
                command = json.loads(raw)["command"]
                if command["state"] == "received" and command["id"] not in seen:
                    seen[command["id"]] = now

        reader = asyncio.create_task(receive())
        await asyncio.sleep(1.0)  # snapshot in, load flowing
        for i in range(count):
            command_id = f"lat-{i:05d}"
            clicked[command_id] = start = time.perf_counter()
            answer = await http.post(f"/api/vehicles/{VEHICLES[i % len(VEHICLES)]}/commands",
                                     json={"kind": "stop", "id": command_id,
                                           "reason": "bench"})
            if answer.status_code != 202:
                out.refused += 1
                detail = str(answer.json().get("detail", ""))[:60]
                out.refusals[f"{answer.status_code} {detail}"] += 1
                clicked.pop(command_id)
                continue
            out.click_to_202_ms.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(spacing)
        deadline = time.perf_counter() + 5.0
        while len(seen) < len(clicked) and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        reader.cancel()
    for command_id, start in clicked.items():
        if command_id in seen:
            out.click_to_received_ms.append((seen[command_id] - start) * 1000)
        else:
            out.missing += 1
        if command_id in vehicles.heard_at:
            out.click_to_heard_ms.append((vehicles.heard_at[command_id] - start) * 1000)
    return out


def latency_run(args: argparse.Namespace, load: float, *, own_connection: bool = True) -> Latency:
    """One round; ``own_connection=False``: commands on the telemetry connection, as before
    issue 25's command connection (``[mqtt] command_connection = false``)."""
    with running_broker(extra_config=BROKER) as broker, tempfile.TemporaryDirectory() as state:
        config = write_hub_config(
            Path(state), journal=Path(state) / "hub.sqlite",
            extra="" if own_connection else "[mqtt]\ncommand_connection = false")
        hub = launch_hub(broker, config, None, free_port())
        vehicles = BenchVehicles(broker)
        blaster = None
        try:
            if not _until(lambda: _fresh(hub.port), 20.0):
                raise RuntimeError("the bench vehicles never became fresh")
            hub.post("/api/duty/on")
            if load:
                blaster = start_blaster(host=broker.host, port=broker.port,
                                        vehicles=args.vehicles, rate=load,
                                        duration_s=args.commands * args.spacing + 20.0, qos=0)
                time.sleep(2.0)
            result = asyncio.run(_clicks(hub.port, vehicles, args.commands, args.spacing))
            health = hub.health()
            print(f"hub ingested {health['ingest']['received']:,} messages "
                  f"({health['ingest']['quarantined']} quarantined)", flush=True)
            return result
        finally:
            if blaster is not None:
                blaster.terminate()
            vehicles.close()
            stop_hub(hub)


# -- faults ---------------------------------------------------------------------------------

@dataclass
class FaultCount:
    accepted: int = 0
    #: Accepted, and not yet said done by the vehicle, when the kill came.
    in_flight: int = 0
    cut: int = 0
    done: int = 0
    not_confirmed: int = 0
    lost: int = 0
    executed_twice: int = 0
    delivered_twice: int = 0
    unfinished: int = 0

    def add(self, other: FaultCount) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (f"accepted {self.accepted} ({self.in_flight} in flight at the kill), cut by "
                f"the kill {self.cut}; done {self.done}, "
                f"not confirmed {self.not_confirmed}, unfinished {self.unfinished}; LOST "
                f"{self.lost}, EXECUTED TWICE {self.executed_twice} (delivered twice "
                f"{self.delivered_twice})")


def _fire(port: Callable[[], int], prefix: str, count: int, accepted: list[str],
          cut: list[str], half: threading.Event) -> None:
    """POST ``count`` stops 20 ms apart to whichever hub ``port()`` names; a POST that fails
    (the hub just died) is cut, not retried: the console would say it failed."""
    with httpx.Client(headers=AUTH, timeout=2.0) as http:
        for i in range(count):
            command_id = f"{prefix}-{i:03d}"
            try:
                answer = http.post(f"http://127.0.0.1:{port()}/api/vehicles/"
                                   f"{VEHICLES[i % len(VEHICLES)]}/commands",
                                   json={"kind": "stop", "id": command_id, "reason": "bench"})
                (accepted if answer.status_code == 202 else cut).append(command_id)
            except httpx.HTTPError:
                cut.append(command_id)
            if len(accepted) >= count // 2:
                half.set()
            time.sleep(0.02)
    half.set()


def _count(ids: list[str], cut: list[str], vehicles: BenchVehicles,
           state_of: Callable[[str], str | None], in_flight: int) -> FaultCount:
    out = FaultCount(accepted=len(ids), cut=len(cut), in_flight=in_flight)
    for command_id in ids:
        state = state_of(command_id)
        executed = vehicles.executed[command_id]
        out.done += state == "done"
        out.not_confirmed += state == "not_confirmed"
        out.unfinished += state not in FINAL
        out.lost += executed == 0 and state != "not_confirmed"
        out.executed_twice += executed > 1
    out.delivered_twice += sum(1 for c in ids + cut if vehicles.heard[c] > 1)
    return out


def _state(port: int, command_id: str) -> str | None:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        got = httpx.get(f"http://127.0.0.1:{port}/api/commands/{command_id}", headers=AUTH,
                        timeout=2.0)
        return str(got.json()["command"]["state"])
    return None


def _settle(ids: list[str], port: Callable[[], int]) -> None:
    """Until every accepted command has ended (received_within_s + done_within_s at most)."""
    _until(lambda: all(_state(port(), c) in FINAL for c in ids), 70.0, poll_s=0.5)


def single_kill(broker: Broker, vehicles: BenchVehicles, workdir: Path, n: int,
                in_flight: int) -> FaultCount:
    config = write_hub_config(workdir, file_name=f"single-{n}.toml",
                              journal=workdir / f"single-{n}.sqlite",
                              extra=f'[mqtt]\nclient_id = "l4mon-bench-single-{n}"\n')
    port = free_port()
    hub: HubProcess | None = launch_hub(broker, config, workdir / f"single-{n}.log", port)
    try:
        assert hub is not None
        if not _until(lambda: _fresh(port), 20.0):
            raise RuntimeError("the bench vehicles never became fresh")
        hub.post("/api/duty/on")
        accepted: list[str] = []
        cut: list[str] = []
        half = threading.Event()
        fire = threading.Thread(target=_fire, args=(lambda: port, f"k9-{n}", in_flight,
                                                    accepted, cut, half))
        fire.start()
        half.wait(30)
        flying = sum(1 for c in list(accepted) if c not in vehicles.done_sent)
        os.kill(hub.pid, signal.SIGKILL)
        hub.proc.wait(10)
        stop_hub(hub)
        hub = None
        fire.join(60)
        hub = launch_hub(broker, config, workdir / f"single-{n}.log", port)
        _settle(accepted, lambda: port)
        return _count(accepted, cut, vehicles, lambda c: _state(port, c), flying)
    finally:
        if hub is not None:
            stop_hub(hub)


def pair_failover(broker: Broker, vehicles: BenchVehicles, pg: PostgresServer, workdir: Path,
                  n: int, in_flight: int) -> FaultCount:
    (workdir / f"pair-{n}").mkdir(exist_ok=True)
    pair = Pair(broker=broker, journal_url=pg.new_schema(), workdir=workdir / f"pair-{n}",
                poll_interval_s=0.2)
    try:
        for slot in pair.slots:
            pair.start(slot)
        first = pair.leader()
        if first is None or not _until(lambda: _fresh(first.port), 20.0):
            raise RuntimeError("no leader, or the bench vehicles never became fresh")
        assert first.hub is not None
        first.hub.post("/api/duty/on")
        other = pair.other(first)
        leading = [first.port]
        accepted: list[str] = []
        cut: list[str] = []
        half = threading.Event()
        fire = threading.Thread(target=_fire, args=(lambda: leading[0], f"fo-{n}", in_flight,
                                                    accepted, cut, half))
        fire.start()
        half.wait(30)
        flying = sum(1 for c in list(accepted) if c not in vehicles.done_sent)
        pair.kill9(first)
        if _until(lambda: pair.role(other) == "leader", 10.0, poll_s=0.02):
            leading[0] = other.port
        fire.join(60)
        _settle(accepted, lambda: other.port)
        return _count(accepted, cut, vehicles, lambda c: _state(other.port, c), flying)
    finally:
        pair.close()


def fault_runs(args: argparse.Namespace) -> tuple[FaultCount, FaultCount | None]:
    single, pair = FaultCount(), FaultCount()
    with running_broker(extra_config=BROKER) as broker, tempfile.TemporaryDirectory() as state:
        work = Path(state)
        vehicles = BenchVehicles(broker)
        try:
            for n in range(args.kills):
                got = single_kill(broker, vehicles, work, n, args.in_flight)
                print(f"hub kill -9 #{n + 1}: {got.line()}", flush=True)
                single.add(got)
            try:
                with PostgresServer() as pg:
                    for n in range(args.kills):
                        got = pair_failover(broker, vehicles, pg, work, n, args.in_flight)
                        print(f"pair failover #{n + 1}: {got.line()}", flush=True)
                        pair.add(got)
            except (FileNotFoundError, RuntimeError) as error:
                print(f"pair failover not run: {error}", flush=True)
                return single, None
        finally:
            vehicles.close()
    return single, pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=200)
    ap.add_argument("--spacing", type=float, default=0.05, help="seconds between clicks")
    ap.add_argument("--load", type=float, default=30_000.0, help="background msg/s, 0 = none")
    ap.add_argument("--vehicles", type=int, default=1000, help="background fleet size")
    ap.add_argument("--kills", type=int, default=2, help="kills of each kind")
    ap.add_argument("--in-flight", type=int, default=30, help="stops sent around each kill")
    ap.add_argument("--rounds", type=int, default=1,
                    help="latency rounds; each runs without background load, then with it "
                         "(order alternating), so the machine's own pace shows beside the "
                         "load's share")
    ap.add_argument("--connections", choices=("own", "shared", "both"), default="own",
                    help="commands on a connection of their own (the default), on the "
                         "telemetry connection (as before), or both alternating in one run")
    ap.add_argument("--nagle", action="store_true",
                    help="the broker without set_tcp_nodelay (Mosquitto's default)")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-faults", action="store_true")
    args = ap.parse_args()
    if args.nagle:
        BROKER.clear()
    if not args.no_latency:
        print(f"latency: {args.commands} stops {args.spacing * 1000:.0f} ms apart over "
              f"{len(VEHICLES)} vehicles; background {args.load:,.0f} msg/s "
              f"({args.vehicles} vehicles x 3 streams) and none, {args.rounds} round(s)",
              flush=True)
        ok = True
        kinds = {"own": [True], "shared": [False], "both": [True, False]}[args.connections]
        for n in range(1, args.rounds + 1):
            loads = [0.0, args.load] if n % 2 else [args.load, 0.0]
            # Alternating which goes first, so the machine's drifting load cancels out.
            order = kinds if n % 2 else kinds[::-1]
            for load, own in [(load, own) for load in loads for own in order]:
                lat = latency_run(args, load, own_connection=own)
                said = "own command connection" if own else "commands on the telemetry connection"
                print(f"round {n}, background {load:,.0f} msg/s, {said}:")
                for name, values in (
                        ("click -> received on the console", lat.click_to_received_ms),
                        ("click -> the vehicle hears it", lat.click_to_heard_ms),
                        ("click -> 202", lat.click_to_202_ms)):
                    if values:
                        print(f"  {name:<34} n {len(values):4d}  p50 "
                              f"{percentile(values, 50):6.1f} ms  p99 "
                              f"{percentile(values, 99):6.1f} ms  max {max(values):6.1f} ms")
                print(f"  missing {lat.missing}, refused {lat.refused} "
                      f"{dict(lat.refusals)}", flush=True)
                if load == args.load and own:
                    ok = ok and bool(lat.click_to_received_ms) and not lat.missing and \
                        percentile(lat.click_to_received_ms, 99) < 150
        print(f"target p99 < 150 ms under load (every round): {'PASS' if ok else 'FAIL'}",
              flush=True)
    if not args.no_faults:
        single, pair = fault_runs(args)
        print(f"hub kill -9, {args.kills} kills: {single.line()}")
        if pair is not None:
            print(f"pair failover, {args.kills} failovers: {pair.line()}")
        counts = [single] + ([pair] if pair is not None else [])
        ok = all(c.lost == 0 and c.executed_twice == 0 and c.unfinished == 0 for c in counts)
        print(f"target 0 lost, 0 executed twice: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
