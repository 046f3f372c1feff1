"""Fault injection against real processes on loopback: what each fault costs, counted.

Run: ``.venv/bin/python bench/faults.py [--only broker_restart,hub_kill9,...]``

Every scenario starts its own Mosquitto (``testing/broker.py``) and ``l4mon serve`` processes
with temp configs and journals, injects one kind of fault, and counts what was lost against
what was sent. Loops are bounded in count and time; every process started is stopped in a
``finally``. The scenarios are plain functions returning an :class:`Outcome`, so the quick
ones run in the test suite too (``tests/test_faults.py``).

=================  ========================================================================
broker_restart     QoS 1 takeover events while the broker restarts (persistence on): every
                   event must give exactly one alert.
hub_kill9          ``kill -9`` of the hub under blaster load while events flow and operators
                   act, then restart: journal intact, nothing acknowledged lost or repeated,
                   every event exactly one alert (those sent while it was down included).
journal_unwritable writes to the journal fail (RLIMIT_FSIZE set on the running hub): alerts
                   still reach the console, marked NOT JOURNALED; /healthz, /metrics and the
                   log say so; the journal passes integrity_check afterwards.
slow_console       a console that stops reading while alerts flow: closed (1013, counted),
                   another console gets every alert, the hub's memory stays bounded.
malformed          10,000 malformed messages interleaved with 10,000 valid ones: valid ones
                   accepted exactly, the rest quarantined with exact counts by reason.
pg_restart,        QoS 1 takeover events through a hub whose journal fails under them:
pg_kill, pg_cut,   PostgreSQL restarted, crashed, its session cut; SQLite's filesystem full.
sqlite_disk_full   Each event must end as exactly one journaled alert (shown live meanwhile),
                   every message acknowledged once the journal has it.
=================  ========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as paho
import websockets
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry.topics import PREFIX, event_topic, link_topic
from telemetry.wire import LinkSample, VehicleEvent
from testing.blaster import start_blaster
from testing.broker import Broker, free_port
from testing.hub import ROOT, metric_value, rss_mb, spawn_hub, wait_connected, write_hub_config

TOKEN = "faults-token-not-secret"
TAKEOVER_RULE = "takeover_requested"


@dataclass
class Outcome:
    """One scenario's result: losses are messages or alerts that should have arrived and did
    not (or arrived twice); problems are any other promise broken (corruption, no signal)."""

    fault: str
    injected: str
    losses: int
    detail: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    #: A control run shows what the defence is worth: its losses are expected, not a failure.
    control: bool = False

    @property
    def ok(self) -> bool:
        return self.control or (self.losses == 0 and not self.problems)


def _wait(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll until true or the deadline; the caller decides what a timeout means."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, sqlite3.Error):
            if predicate():
                return True
        time.sleep(poll_s)
    return False


class HubProc:
    """``l4mon serve`` (testing/hub.py) that a scenario can kill and start again on the same
    port, config and journal; its output goes through a pipe (drained into a log file by a
    thread), because a file-size limit set on the hub must not cut its own log."""

    def __init__(self, *, broker: Broker, workdir: Path, name: str = "hub",
                 mqtt: str = "", tree: Path = ROOT, journal: Path | str | None = None) -> None:
        self.broker = broker
        self.name = name
        self.tree = tree
        self.port = free_port()
        #: An SQLite file (default, in ``workdir``) or a ``postgresql://`` URL.
        self.journal = journal if journal is not None else workdir / f"{name}-journal.sqlite"
        self.log_path = workdir / f"{name}.log"
        self.config = write_hub_config(
            workdir, token=TOKEN, role="admin", name="faults", file_name=f"{name}.toml",
            journal=self.journal, extra=f'[mqtt]\nclient_id = "{name}"\n{mqtt}\n')  # type: ignore[arg-type]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5.0,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        self.proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        self.proc = spawn_hub(self.config, self.broker, self.port, tree=self.tree,
                              stdout=subprocess.PIPE)
        self._drain = threading.Thread(target=self._copy_log, args=(self.proc,), daemon=True)
        self._drain.start()
        wait_connected(self.proc, self.health, timeout_s=timeout_s, log=self.log)
        time.sleep(0.2)  # SUBSCRIBE follows CONNACK; let the broker apply it

    def _copy_log(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with self.log_path.open("ab") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def health(self) -> dict[str, Any]:
        return self.http.get("/healthz").json()  # type: ignore[no-any-return]

    def json(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    def metric(self, name: str) -> float:
        return metric_value(self.http.get("/metrics").text, name)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._join_drain()

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s; idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._join_drain()

    def _join_drain(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=5)

    def close(self) -> None:
        self.stop()
        self.http.close()


class EventPublisher:
    """paho (not the hub's client) with a persistent session: QoS 1 messages published while
    the broker is away are kept and sent on reconnect; ``acked`` counts PUBACKs."""

    def __init__(self, broker: Broker, *, client_id: str = "faults-pub") -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1_000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)
        self.acked = 0
        self.connects = 0
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._connected.clear()
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("event publisher could not connect")
        self.sent = 0

    def _on_connect(self, *_: Any) -> None:
        self.connects += 1
        self._connected.set()

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)
        self.sent += 1

    def event(self, site: str, vehicle: str, seq: int = 0) -> None:
        self.publish(event_topic(site, vehicle), msgspec.json.encode(VehicleEvent(
            ts=time.time(), kind="takeover_request", seq=seq, detail="fault bench")))

    def wait_acked(self, timeout_s: float) -> bool:
        """True once every QoS 1 message published has its PUBACK."""
        return _wait(lambda: self.acked >= self.sent, timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def takeover_alerts(journal: Path, prefix: str) -> dict[str, int]:
    """Journaled takeover alerts per vehicle whose id starts with ``prefix``."""
    with contextlib.closing(sqlite3.connect(journal, timeout=5)) as db:
        rows = db.execute("SELECT vehicle, COUNT(*) FROM alerts WHERE rule = ? AND vehicle LIKE ?"
                          " GROUP BY vehicle", (TAKEOVER_RULE, f"{prefix}%")).fetchall()
    return {vehicle: count for vehicle, count in rows}


def integrity(journal: Path) -> str:
    with contextlib.closing(sqlite3.connect(journal, timeout=5)) as db:
        return ", ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))


def _count_losses(expected: list[str], seen: dict[str, int]) -> tuple[int, int]:
    """(lost, duplicated) of one-alert-per-vehicle."""
    lost = sum(1 for v in expected if seen.get(v, 0) == 0)
    return lost, sum(max(0, n - 1) for n in seen.values())


def _paced(count: int, rate: float) -> Iterator[int]:
    """0..count-1 at ``rate`` per second (sleeping in between)."""
    start = time.monotonic()
    for i in range(count):
        ahead = start + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield i


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="l4mon-faults-") as tmp:
        yield Path(tmp)


# -- (a) broker restart ------------------------------------------------------------------------

def broker_restart(*, events: int = 300, rate: float = 60.0, down_s: float = 1.5,
                   persistence: bool = True, settle_s: float = 15.0) -> Outcome:
    """SIGTERM the broker a third of the way through a stream of QoS 1 events, start it again
    ``down_s`` later on the same port with its persistence file: sessions and queued messages
    survive, the publisher resends what was not acknowledged, the hub dedupes redeliveries."""
    with _workdir() as work:
        store = work / "mosquitto"
        store.mkdir()
        broker = Broker(extra_config=["persistence true", f"persistence_location {store}/"]
                        if persistence else [])
        hub = HubProc(broker=broker, workdir=work)
        pub = None
        vehicles = [f"br-{i:04d}" for i in range(events)]
        try:
            broker.start()
            hub.start()
            pub = EventPublisher(broker)
            stop_at, start_at = events // 3, events // 3 + int(rate * down_s)
            while_down = 0
            for i in _paced(events, rate):
                if i == stop_at:
                    broker.stop()
                if i == start_at:
                    saved = (store / "mosquitto.db").exists()
                    broker.start()
                while_down += stop_at <= i < start_at
                pub.event("faults", vehicles[i])
            acked = pub.wait_acked(30.0)
            _wait(lambda: len(takeover_alerts(hub.journal, "br-")) >= events, settle_s, 0.2)
            time.sleep(0.5)  # a duplicate would need a moment to show
            seen = takeover_alerts(hub.journal, "br-")
            health = hub.health()
        finally:
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        lost, dup = _count_losses(vehicles, seen)
        problems = [] if acked else [f"publisher got {pub.acked if pub else 0}/{events} PUBACKs"]
        if persistence and not saved:
            problems.append("the broker wrote no persistence file on shutdown")
        if health["mqtt"]["connects"] < 2:
            problems.append("the hub never reconnected: the broker restart did not happen")
        return Outcome(
            "broker restart mid-stream (QoS 1)" if persistence else
            "(control) the same, broker persistence off",
            f"1 restart ({down_s:.1f} s down), {events} events, {while_down} sent while down",
            lost + dup,
            f"alerts {sum(seen.values())}/{events}, lost {lost}, duplicated {dup}; "
            f"hub reconnects {health['mqtt']['connects'] - 1}, redeliveries absorbed "
            f"{health['ingest']['duplicates']}",
            problems, {"lost": lost, "duplicated": dup, "while_down": while_down},
            control=not persistence)


# -- (b) hub kill -9 under load ----------------------------------------------------------------

def _alert_book(hub: HubProc) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    return {a["id"]: (a, hub.json(f"/api/alerts/{a['id']}")["history"])
            for a in hub.json("/api/alerts", limit=1_000)}


def hub_kill9(*, events: int = 200, rate: float = 25.0, load: float = 20_000.0,
              load_vehicles: int = 500) -> Outcome:
    """Half-way through a stream of QoS 1 events under blaster load: acknowledge and resolve
    some alerts, ``kill -9`` the hub and start it again while the events keep coming."""
    with _workdir() as work:
        broker = Broker()
        hub = HubProc(broker=broker, workdir=work)
        pub = blaster = None
        vehicles = [f"hk-{i:04d}" for i in range(events)]
        problems: list[str] = []
        restarted = threading.Event()
        down: list[float] = []

        def restart() -> None:
            t0 = time.monotonic()
            hub.kill9()
            problems.extend(f"journal after kill -9: {r}" for r in [integrity(hub.journal)]
                            if r != "ok")
            hub.start()
            down.append(time.monotonic() - t0)
            restarted.set()

        try:
            broker.start()
            hub.start()
            hub.post("/api/duty/on")
            blaster = start_blaster(host=broker.host, port=broker.port, vehicles=load_vehicles,
                                    rate=load, duration_s=events / rate + 10.0, site="load")
            pub = EventPublisher(broker)
            before: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
            touched: set[int] = set()
            killer = threading.Thread(target=restart, daemon=True)
            during = 0
            for i in _paced(events, rate):
                if i == events // 2:
                    mine = sorted(a["id"] for a in hub.json("/api/alerts", state="open",
                                                            limit=1_000)
                                  if a["rule"] == TAKEOVER_RULE)
                    for n, alert_id in enumerate(mine[:15]):
                        if n < 10:
                            hub.post(f"/api/alerts/{alert_id}/ack", {"note": "on it"})
                        else:
                            hub.post(f"/api/alerts/{alert_id}/resolve",
                                     {"reason": "checked on camera"})
                        touched.add(alert_id)
                    before = _alert_book(hub)
                    killer.start()
                during += killer.is_alive()
                pub.event("faults", vehicles[i])
            if not restarted.wait(30):
                raise RuntimeError(f"hub did not come back\n{hub.log()[-2000:]}")
            acked = pub.wait_acked(30.0)
            _wait(lambda: len(takeover_alerts(hub.journal, "hk-")) >= events, 15.0, 0.2)
            time.sleep(0.5)
            after = _alert_book(hub)
            seen = takeover_alerts(hub.journal, "hk-")
            restored = "restored" in hub.log()
            received = hub.health()["ingest"]
        finally:
            if blaster is not None:
                blaster.terminate()
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        final = integrity(hub.journal)
        if final != "ok":
            problems.append(f"journal at the end: {final}")
        if not acked:
            problems.append("not every event got its PUBACK")
        if not restored:
            problems.append("the restarted hub did not say it restored open alerts")
        changed = 0  # alerts as operators saw them before the kill, compared after restart
        for alert_id, (alert, history) in before.items():
            now_alert, now_history = after.get(alert_id, (None, []))
            same = now_alert == alert if alert_id in touched else (
                now_alert is not None and now_alert["vehicle"] == alert["vehicle"])
            changed += not (same and now_history[:len(history)] == history)
        lost, dup = _count_losses(vehicles, seen)
        return Outcome(
            "hub kill -9 under load, restart",
            f"1 kill -9 at {load:,.0f} msg/s, {events} events ({during} while the hub was "
            f"down or starting), {len(touched)} operator actions",
            lost + dup + changed,
            f"alerts {sum(seen.values())}/{events}, lost {lost}, duplicated {dup}; "
            f"{len(before)} alerts before the kill, {changed} differ after; restart took "
            f"{down[0] if down else float('nan'):.1f} s; integrity {final}; "
            f"ingested after restart {received['accepted']:,}",
            problems, {"lost": lost, "duplicated": dup, "changed": changed,
                       "before": len(before)})


# -- (c) journal unwritable --------------------------------------------------------------------

class _Console:
    """A console WebSocket that reads everything and keeps the alert frames it got."""

    def __init__(self, port: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws?token={TOKEN}"
        self.raised: dict[str, dict[str, Any]] = {}  # vehicle → first raised frame
        self.arrived: dict[str, float] = {}
        self.frames = 0
        self.snapshot = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            async for raw in ws:
                self.frames += 1
                text = raw if isinstance(raw, str) else raw.decode()
                if text.startswith('{"type":"snapshot"'):
                    self.snapshot.set()
                if not text.startswith('{"type":"alert"'):
                    continue  # state frames are large and not what we count
                frame = msgspec.json.decode(text)
                vehicle = frame["alert"]["vehicle"]
                if frame["transition"]["kind"] == "raised" and vehicle not in self.raised:
                    self.raised[vehicle] = frame
                    self.arrived[vehicle] = time.monotonic()

    async def __aenter__(self) -> _Console:
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.snapshot.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    async def got(self, vehicles: list[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(v in self.raised for v in vehicles):
                return True
            await asyncio.sleep(0.05)
        return False


def journal_unwritable(*, before: int = 5, during: int = 20, after: int = 5) -> Outcome:
    """Alerts before, during and after a spell in which the hub may not write any file
    (``prlimit RLIMIT_FSIZE 0`` on its pid: real EFBIG from the kernel, root or not).

    Nothing acknowledged that is not kept: the alerts raised meanwhile reach the console at
    once (flagged NOT JOURNALED YET), their QoS 1 events stay unacknowledged, the hub's own
    ``journal_unavailable`` alert says so, and once writes succeed again the hub journals
    every kept transition, in order, and acknowledges: the journal ends with every alert
    exactly once."""
    with _workdir() as work:
        broker = Broker()
        hub = HubProc(broker=broker, workdir=work)
        pub = None
        phases = {name: [f"ju-{name}-{i:03d}" for i in range(n)]
                  for name, n in (("before", before), ("during", during), ("after", after))}
        problems: list[str] = []
        facts: dict[str, Any] = {}

        async def scenario() -> dict[str, list[str]]:
            assert pub is not None
            missing: dict[str, list[str]] = {}
            async with _Console(hub.port) as console:
                for phase, vehicles in phases.items():
                    if phase == "during":
                        resource.prlimit(hub.pid, resource.RLIMIT_FSIZE,
                                         (0, resource.RLIM_INFINITY))
                    for vehicle in vehicles:
                        pub.event("faults", vehicle)
                    await console.got(vehicles, 10.0)
                    missing[phase] = [v for v in vehicles if v not in console.raised]
                    if phase == "during":
                        health = await asyncio.to_thread(hub.health)
                        facts["health_status"] = health["status"]
                        facts["health_kept"] = health["journal"]["kept"]
                        facts["acks_held"] = health["journal"]["acks_held"]
                        facts["metric_failures"] = await asyncio.to_thread(
                            hub.metric, "l4mon_journal_failures_total")
                        resource.prlimit(hub.pid, resource.RLIMIT_FSIZE,
                                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                facts["caught_up_s"] = await _journal_caught_up(hub, 60.0)
                facts["marked"] = {p: sum(console.raised[v]["transition"]["detail"].startswith(
                    "NOT JOURNALED") for v in vs if v in console.raised)
                    for p, vs in phases.items()}
            return missing

        try:
            broker.start()
            hub.start()
            pub = EventPublisher(broker)
            missing = asyncio.run(scenario())
            log = hub.log()
        finally:
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        final = integrity(hub.journal)
        journaled = takeover_alerts(hub.journal, "ju-")
        own = _rule_alerts(hub.journal, "journal_unavailable")
        marked = facts["marked"]
        if facts["health_status"] != "degraded" or facts["health_kept"] < during:
            problems.append(f"/healthz during the fault: {facts['health_status']}, "
                            f"{facts['health_kept']} kept")
        if facts["acks_held"] < during:
            problems.append(f"only {facts['acks_held']} acknowledgements held")
        if facts["metric_failures"] < during:
            problems.append(f"l4mon_journal_failures_total {facts['metric_failures']}")
        if "unavailable" not in log:
            problems.append("the log does not say the journal is unavailable")
        if marked["during"] != during - len(missing["during"]) or marked["before"]:
            problems.append(f"NOT JOURNALED marks wrong: {marked}")
        if facts["caught_up_s"] is None:
            problems.append("the journal did not catch up within 60 s of the fault's end")
        if final != "ok":
            problems.append(f"integrity_check: {final}")
        expected = {v for vs in phases.values() for v in vs}
        if set(journaled) != expected or any(n != 1 for n in journaled.values()):
            problems.append(f"journal holds {len(journaled)} alerts, not each of the "
                            f"{len(expected)} once")
        if own != [("resolved", 1)]:
            problems.append(f"journal_unavailable in the journal: {own}")
        lost = sum(len(v) for v in missing.values())
        return Outcome(
            "journal unwritable (RLIMIT_FSIZE 0)",
            f"{during} alerts while no write could succeed, {before}+{after} around it",
            lost,
            f"live on the console {before + during + after - lost}/{before + during + after}, "
            f"{marked['during']} marked NOT JOURNALED YET; /healthz {facts['health_status']} "
            f"({facts['health_kept']} kept, {facts['acks_held']} QoS 1 acks held); journaled "
            f"{facts['caught_up_s']} s after the fault: integrity {final}, "
            f"{sum(journaled.values())} alerts for {len(expected)} events, journal_unavailable "
            f"{own}",
            problems, facts | {"missing": missing, "journaled": journaled, "own": own})


async def _journal_caught_up(hub: HubProc, timeout_s: float) -> float | None:
    """Seconds until /healthz says the journal holds everything and no ack waits; None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        journal = (await asyncio.to_thread(hub.health))["journal"]
        if journal["ok"] and not journal["kept"] and not journal["acks_held"]:
            return round(time.monotonic() - start, 1)
        await asyncio.sleep(0.2)
    return None


def _rule_alerts(journal: Path, rule: str) -> list[tuple[str, int]]:
    """(state, count) of a rule's journaled alerts."""
    with contextlib.closing(sqlite3.connect(journal, timeout=5)) as db:
        return [(state, n) for state, n in db.execute(
            "SELECT state, COUNT(*) FROM alerts WHERE rule = ? GROUP BY state", (rule,))]


# -- (d) a console that stops reading ----------------------------------------------------------

def _stalled_console(port: int) -> socket.socket:
    """A WebSocket handshake on a socket with a tiny receive buffer, after which we never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 4096:
        head += sock.recv(1)  # byte by byte: nothing past the handshake is read
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:200]!r}")
    return sock


def _close_code(sock: socket.socket, timeout_s: float) -> tuple[int | None, int]:
    """Drain what the hub had sent; return (close code or None, bytes read)."""
    sock.settimeout(1.0)
    data = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    i = 0
    while i + 2 <= len(data):
        opcode, size, i = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if size == 126:
            size, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif size == 127:
            size, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        if opcode == 8 and i + 2 <= len(data):
            return int.from_bytes(data[i:i + 2], "big"), len(data)
        i += size
    return None, len(data)


def slow_console(*, events: int = 2_400, rate: float = 800.0, fill_s: float = 4.0) -> Outcome:
    """Two consoles; one stops reading. Half the takeover events, then ``fill_s`` of state
    frames (the fleet is those vehicles) fill the stalled socket's buffers (~6 MB on loopback);
    the other half (nobody on duty: each raised and escalated, two frames) then overflows its
    alert backlog (1,000 frames), which must close it without holding up the other console."""
    with _workdir() as work:
        broker = Broker()
        hub = HubProc(broker=broker, workdir=work)
        pub = None
        vehicles = [f"sc-{i:04d}" for i in range(events)]
        facts: dict[str, Any] = {}

        async def burst(good: _Console, batch: list[str], sent_at: dict[str, float]) -> None:
            assert pub is not None
            start = time.monotonic()
            for i, vehicle in enumerate(batch):
                ahead = start + i / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                sent_at[vehicle] = time.monotonic()
                pub.event("faults", vehicle)
            await good.got(batch, 20.0)

        async def scenario() -> None:
            async with _Console(hub.port) as good:
                stalled = await asyncio.to_thread(_stalled_console, hub.port)
                try:
                    await asyncio.sleep(0.5)
                    facts["rss_before"] = hub.rss_mb()
                    facts["clients_before"] = await asyncio.to_thread(
                        hub.metric, "l4mon_console_clients")
                    sent_at: dict[str, float] = {}
                    await burst(good, vehicles[:events // 2], sent_at)
                    await asyncio.sleep(fill_s)
                    await burst(good, vehicles[events // 2:], sent_at)
                    facts["good_got"] = sum(v in good.raised for v in vehicles)
                    lat = sorted((good.arrived[v] - sent_at[v]) * 1e3 for v in vehicles
                                 if v in good.arrived)
                    facts["good_p50_ms"] = lat[len(lat) // 2] if lat else float("nan")
                    facts["good_p99_ms"] = lat[int(len(lat) * 0.99)] if lat else float("nan")

                    def closed() -> bool:
                        return hub.metric("l4mon_console_disconnected_slow_total") >= 1
                    facts["closed"] = await asyncio.to_thread(_wait, closed, 10.0, 0.2)

                    def one_left() -> bool:  # the close itself may take its 1 s timeout
                        return hub.metric("l4mon_console_clients") < facts["clients_before"]
                    await asyncio.to_thread(_wait, one_left, 5.0, 0.2)
                    facts["clients_after"] = await asyncio.to_thread(
                        hub.metric, "l4mon_console_clients")
                    facts["rss_after"] = hub.rss_mb()
                    code, read = await asyncio.to_thread(_close_code, stalled, 5.0)
                    facts["close_code"], facts["stalled_read_bytes"] = code, read
                finally:
                    stalled.close()

        try:
            broker.start()
            hub.start()
            pub = EventPublisher(broker)
            asyncio.run(scenario())
            slow_logged = "console disconnected" in hub.log()
        finally:
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        problems = []
        if not facts["closed"] or facts["clients_after"] != facts["clients_before"] - 1:
            problems.append(f"the stalled console was not closed (clients "
                            f"{facts['clients_before']:.0f} → {facts['clients_after']:.0f})")
        if facts["close_code"] not in (1013, None):
            problems.append(f"closed with code {facts['close_code']}, not 1013")
        if not slow_logged:
            problems.append("the hub did not log the slow console")
        growth = facts["rss_after"] - facts["rss_before"]
        if growth > 100:
            problems.append(f"hub RSS grew {growth:.0f} MB")
        lost = events - facts["good_got"]
        code = facts["close_code"]
        return Outcome(
            "console that stops reading",
            f"1 stalled console, {events} takeover events ({2 * events} alert frames)",
            lost,
            f"stalled one closed {'with 1013' if code == 1013 else '(close frame not read: '}"
            f"{'' if code == 1013 else 'socket full)'} after {facts['stalled_read_bytes']:,} "
            f"bytes; the other got {facts['good_got']}/{events} raised frames, publish → frame "
            f"p50 {facts['good_p50_ms']:.0f} ms, p99 {facts['good_p99_ms']:.0f} ms; hub RSS "
            f"{facts['rss_before']:.0f} → {facts['rss_after']:.0f} MB",
            problems, facts)


# -- (e) malformed messages --------------------------------------------------------------------

def _malformed_kinds(now: float) -> list[tuple[str, Callable[[str, int], tuple[str, bytes]]]]:
    """(expected quarantine reason, make(vehicle, n) → (topic, payload)) for each kind."""
    def good(v: str, n: int, **over: Any) -> bytes:
        body = {"ts": now, "seq": 10_000 + n, "rat": "nr", "rtt_ms": 20.0, **over}
        return msgspec.json.encode(body)
    return [
        ("malformed", lambda v, n: (link_topic("flt", v, "l5g"), b'{"ts": 1, "seq":')),
        ("schema", lambda v, n: (link_topic("flt", v, "l5g"), b'{"seq": 5, "rat": "nr"}')),
        ("out_of_range", lambda v, n: (link_topic("flt", v, "l5g"), good(v, n, rat="6g"))),
        ("non_finite", lambda v, n: (link_topic("flt", v, "l5g"),
                                     good(v, n).replace(b'"rtt_ms":20.0', b'"rtt_ms":1e999'))),
        ("unknown_topic", lambda v, n: (f"{PREFIX}/flt/vehicle/{v}/link", good(v, n))),
        ("oversize", lambda v, n: (link_topic("flt", v, "l5g"), b" " * 16_385)),
        ("ts_future", lambda v, n: (link_topic("flt", v, "l5g"), good(v, n, ts=now + 7_200))),
        ("ts_past", lambda v, n: (link_topic("flt", v, "l5g"), good(v, n, ts=now - 172_800))),
    ]


def malformed(*, valid: int = 10_000, bad: int = 10_000, vehicles: int = 50) -> Outcome:
    """Valid link samples (unique seq per stream) alternating with malformed ones of eight
    kinds, all at QoS 1 through the broker; the hub's counts are compared with what was sent."""
    with _workdir() as work:
        broker = Broker()
        hub = HubProc(broker=broker, workdir=work)
        pub = None
        now = time.time()
        kinds = _malformed_kinds(now)
        sent_by_reason = dict.fromkeys((r for r, _ in kinds), 0)
        try:
            broker.start()
            hub.start()
            pub = EventPublisher(broker)
            links = [(f"mf-{v:03d}", link) for v in range(vehicles) for link in ("l5g", "lte")]
            for i in range(max(valid, bad)):
                if i < valid:
                    vehicle, link = links[i % len(links)]
                    pub.publish(link_topic("flt", vehicle, link), msgspec.json.encode(LinkSample(
                        ts=now, seq=i // len(links), rat="nr" if link == "l5g" else "lte",
                        rtt_ms=20.0)))
                if i < bad:
                    reason, make = kinds[i % len(kinds)]
                    pub.publish(*make(f"mf-{i % vehicles:03d}", i))
                    sent_by_reason[reason] += 1
            acked = pub.wait_acked(60.0)
            _wait(lambda: hub.health()["ingest"]["received"] >= valid + bad, 30.0, 0.2)
            time.sleep(0.3)
            ingest = hub.health()["ingest"]
            counts = hub.json("/api/quarantine", limit=1)["counts"]
            lost_seq = sum(link["sequence"]["lost"] for vid in {v for v, _ in links}
                           for link in hub.json(f"/api/vehicles/{vid}")["links"].values())
        finally:
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        problems = [] if acked else ["not every message got its PUBACK"]
        wrong = {r: (sent_by_reason[r], counts.get(r, 0)) for r in sent_by_reason
                 if counts.get(r, 0) != sent_by_reason[r]}
        extra = {r: n for r, n in counts.items() if r not in sent_by_reason}
        if wrong or extra:
            problems.append(f"quarantine counts (sent, counted) differ: {wrong} {extra}")
        losses = abs(valid - ingest["accepted"]) + ingest["duplicates"] + lost_seq
        return Outcome(
            "malformed messages interleaved",
            f"{bad:,} malformed ({len(kinds)} kinds) among {valid:,} valid",
            losses,
            f"accepted {ingest['accepted']:,}/{valid:,}, quarantined "
            f"{ingest['quarantined']:,}/{bad:,} ("
            + ", ".join(f"{r} {counts.get(r, 0)}" for r in sent_by_reason)
            + f"), sequence gaps {lost_seq}",
            problems, {"ingest": ingest, "counts": counts, "sent_by_reason": sent_by_reason,
                       "lost_seq": lost_seq})


# -- (f) the journal's own faults: PostgreSQL restarted, crashed, cut; SQLite's disk full -----

def _pg_takeovers(url: str, prefix: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT vehicle, COUNT(*) FROM alerts WHERE rule = %s AND vehicle "
                          "LIKE %s GROUP BY vehicle", (TAKEOVER_RULE, f"{prefix}%")).fetchall()
    return {vehicle: count for vehicle, count in rows}


def _pg_cut(url: str) -> int:
    """Terminate every l4mon session on the server (a firewall cut, an admin's kill)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'l4mon'").fetchall()
    return len(rows)


def journal_fault(kind: str, *, events: int = 150, rate: float = 30.0,
                  down_s: float = 2.0, settle_s: float = 60.0, load: float = 0.0,
                  load_vehicles: int = 300) -> Outcome:
    """A stream of QoS 1 takeover events through a hub on a journal that fails a third of the
    way in: PostgreSQL ``restart`` (fast shutdown, start), ``kill`` (immediate: a crash, then
    start), ``cut`` (the hub's session terminated on the server), or ``disk_full`` (SQLite on
    a 32 MB tmpfs filled up, then freed). Counted end to end: sent, acknowledged by the broker,
    raised live on a console, journaled — each event must be exactly one journaled alert.
    With ``load`` (msg/s of blaster telemetry, 300 vehicles), an operator acknowledges the
    open takeover alerts every 0.2 s throughout: every answer must be 200, 409 or 503 (the
    journal unavailable, named), never a 500, and every acknowledgement answered 200 must
    be in the journal at the end."""
    from testing.postgres import PostgresServer

    with _workdir() as work, contextlib.ExitStack() as stack:
        broker = Broker()
        pg: PostgresServer | None = None
        mount: Path | None = None
        if kind == "disk_full":
            mount = work / "small"
            mount.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                           check=True, capture_output=True)
            stack.callback(subprocess.run, ["umount", "-l", str(mount)], check=False)
            journal: Path | str = mount / "journal.sqlite"
        else:
            pg = stack.enter_context(PostgresServer())
            journal = pg.new_schema()
        hub = HubProc(broker=broker, workdir=work, journal=journal)
        vehicles = [f"jf-{i:04d}" for i in range(events)]
        facts: dict[str, Any] = {}
        pub = None

        def inject() -> None:
            if kind == "restart":
                assert pg is not None
                pg.stop()
                time.sleep(down_s)
                pg.start()
            elif kind == "kill":
                assert pg is not None
                pg.stop(mode="immediate")
                time.sleep(down_s)
                pg.start()
            elif kind == "cut":
                facts["sessions_cut"] = _pg_cut(str(journal))
            else:
                assert mount is not None
                filler = mount / "filler"
                with contextlib.suppress(OSError), filler.open("wb") as out:
                    while True:
                        out.write(b"\0" * 65_536)
                time.sleep(down_s)
                filler.unlink()

        answers: dict[int, int] = {}
        acked: set[int] = set()
        operating = threading.Event()

        def operator() -> None:
            """Acknowledge what is open, every 0.2 s, as an operator on duty would."""
            while not operating.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    listed = hub.http.get("/api/alerts", params={"state": "raised"})
                    answers[listed.status_code] = answers.get(listed.status_code, 0) + 1
                    if listed.status_code == 200:
                        for alert in listed.json()[:5]:
                            done = hub.http.post(f"/api/alerts/{alert['id']}/ack",
                                                 json={"note": "fault bench"})
                            answers[done.status_code] = answers.get(done.status_code, 0) + 1
                            if done.status_code == 200 and alert["id"] > 0:
                                acked.add(alert["id"])
                operating.wait(0.2)

        async def scenario() -> None:
            assert pub is not None
            async with _Console(hub.port) as console:
                fault_at = events // 3
                fault: asyncio.Future[None] | None = None
                for i in _paced(events, rate):
                    if i == fault_at:
                        fault = asyncio.get_running_loop().run_in_executor(None, inject)
                        await asyncio.sleep(0.1)
                    pub.event("faults", vehicles[i])
                    await asyncio.sleep(0)
                if fault is not None:
                    await fault
                facts["caught_up_s"] = await _journal_caught_up(hub, settle_s)
                await console.got(vehicles, 10.0)
                facts["shown"] = sum(1 for v in vehicles if v in console.raised)

        blaster = None
        worker = threading.Thread(target=operator, daemon=True)
        try:
            broker.start()
            hub.start()
            pub = EventPublisher(broker)
            if load:
                hub.post("/api/duty/on")
                blaster = start_blaster(host=broker.host, port=broker.port,
                                        vehicles=load_vehicles, rate=load,
                                        duration_s=events / rate + settle_s, site="load")
                worker.start()
            asyncio.run(scenario())
            operating.set()
            if load:
                worker.join(timeout=10)
            pub.wait_acked(10.0)
            facts["acked"] = pub.acked
            health = hub.health()
            log = hub.log()
        finally:
            operating.set()
            if blaster is not None:
                blaster.join(timeout=settle_s + 30)
            if pub is not None:
                pub.close()
            hub.close()
            broker.close()
        facts["answers"] = dict(sorted(answers.items()))
        facts["acked_by_operator"] = len(acked)
        facts["acks_journaled"] = _acks_journaled(journal, acked, pg is not None)
        seen = _pg_takeovers(str(journal), "jf-") if pg is not None \
            else takeover_alerts(Path(journal), "jf-")
        own = [] if pg is not None else _rule_alerts(Path(journal), "journal_unavailable")
        lost, dup = _count_losses(vehicles, seen)
        problems = []
        if facts["caught_up_s"] is None:
            problems.append(f"the journal did not catch up within {settle_s:.0f} s")
        if facts["acked"] < events:
            problems.append(f"the broker acknowledged {facts['acked']}/{events}")
        if "Traceback" in log:
            problems.append("a traceback in the hub's log")
        if kind == "disk_full" and own != [("resolved", 1)]:
            problems.append(f"journal_unavailable in the journal: {own}")
        if set(answers) - {200, 409, 503}:
            problems.append(f"operator answers {facts['answers']}")
        if facts["acks_journaled"] != len(acked):
            problems.append(f"{len(acked)} acknowledgements answered 200, "
                            f"{facts['acks_journaled']} journaled")
        return Outcome(
            {"restart": "PostgreSQL restarted under the stream",
             "kill": "PostgreSQL killed (immediate) and started again",
             "cut": "the hub's PostgreSQL session terminated",
             "disk_full": "SQLite journal's filesystem full, then freed"}[kind],
            f"{events} QoS 1 takeover events at {rate:g}/s, the fault at event {events // 3}"
            + (f", {down_s:g} s down" if kind != "cut" else ""),
            lost + dup,
            f"sent {events}, broker-acked {facts['acked']}, shown live {facts['shown']}, "
            f"journaled {sum(seen.values())} ({lost} lost, {dup} duplicated), caught up "
            f"{facts['caught_up_s']} s after the stream; role at the end {health['role']}"
            + (f"; {load:g} msg/s of telemetry, operator answers {facts['answers']}, "
               f"{len(acked)} acknowledgements, all journaled" if load else ""),
            problems, facts | {"lost": lost, "duplicated": dup})


def _acks_journaled(journal: Path | str, ids: set[int], postgres: bool) -> int:
    """How many of ``ids`` the journal holds as acknowledged (or resolved after it)."""
    if not ids:
        return 0
    query = "SELECT COUNT(*) FROM alerts WHERE acknowledged_by IS NOT NULL AND id IN " \
        f"({', '.join(str(int(i)) for i in ids)})"
    if postgres:
        import psycopg

        with psycopg.connect(str(journal)) as db:
            return int(db.execute(query).fetchone()[0])  # type: ignore[index]
    with contextlib.closing(sqlite3.connect(journal, timeout=5)) as db:
        return int(db.execute(query).fetchone()[0])


SCENARIOS: dict[str, Callable[[], Outcome]] = {
    "broker_restart": broker_restart,
    "broker_restart_control": lambda: broker_restart(persistence=False, settle_s=3.0),
    "hub_kill9": hub_kill9,
    "journal_unwritable": journal_unwritable,
    "slow_console": slow_console,
    "malformed": malformed,
    "pg_restart": lambda: journal_fault("restart"),
    "pg_restart_loaded": lambda: journal_fault("restart", load=3_000.0, down_s=5.0),
    "pg_kill": lambda: journal_fault("kill"),
    "pg_cut": lambda: journal_fault("cut"),
    "sqlite_disk_full": lambda: journal_fault("disk_full"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    outcomes = []
    for name in names:
        started = time.monotonic()
        try:
            outcome = SCENARIOS[name]()
        except Exception as exc:  # a scenario that could not run is a failure, not a crash
            outcome = Outcome(name, "—", -1, f"did not run: {exc!r}"[:300], ["error"])
        outcome.facts["seconds"] = time.monotonic() - started
        outcomes.append(outcome)
        verdict = "control" if outcome.control else "PASS" if outcome.ok else "FAIL"
        print(f"{name}: {verdict} in {outcome.facts['seconds']:.1f} s", flush=True)
    print("\n| fault | injected | losses seen | detail |\n|---|---|---|---|")
    for o in outcomes:
        extra = f" — **{'; '.join(o.problems)}**" if o.problems else ""
        print(f"| {o.fault} | {o.injected} | {o.losses} | {o.detail}{extra} |")
    failed = [o.fault for o in outcomes if not o.ok]
    print(f"\n{'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
