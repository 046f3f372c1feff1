"""A hub pair under load, its leader killed again and again: what each failover costs, counted;
and what the journal itself can write, on PostgreSQL and on SQLite.

Run: ``.venv/bin/python bench/ha_failover.py [--kills 20] [--load 30000] [--vehicles 1000]
[--varied] [--events-per-s 5] [--interval 5] [--resolve-after 2] [--poll-interval 0.2]
[--max-minutes 30] [--pg-fsync on|off] [--journal-rate | --no-journal-rate]
[--transitions 5000] [--rounds 3]`` (both parts, the defaults: about 5 minutes on 2 cores).

**Failover**. Real processes on loopback: one PostgreSQL (testing/postgres.py, with
``fsync`` on unless ``--pg-fsync off``), one Mosquitto, two ``l4mon serve`` on that one journal
(``[ha] peers``, each its own HTTP port and MQTT client id), the blaster at ``--load`` msg/s
(``--vehicles`` x 3 streams x 10 Hz; ``--varied`` for the varied load), and a publisher of QoS 1
takeover requests at ``--events-per-s``, each from a fresh vehicle, so each must give exactly
one alert. An operator on duty acknowledges every takeover alert on whichever hub leads, and
resolves it ``--resolve-after`` s after its acknowledgement (0: never), all through the run.
``--kills`` times: wait ``--interval`` s, ``kill -9`` the leader, time until the other hub's
``/healthz`` says ``leader`` (polled every 20 ms; its own ``last_promotion.after_ms`` too),
restart the killed hub and wait until it is a standby that has followed the journal to the
newest transition at its return. At the end, from PostgreSQL: each event's alerts (0: lost,
2+: duplicated) and each acknowledgement or resolve that got a 2xx still in the journal (else:
acks lost). Targets: 0 / 0 / 0 and failover max < 2 s.

**Journal rate** (``--journal-rate`` runs only this part). Each journal opened with
``open_journal``, ``--transitions`` transitions written as the engine writes them (an alert
raised, acknowledged, resolved: ``new_alert`` then two ``record``, each its own transaction),
backends in turn over ``--rounds`` rounds: transitions/s median (range) and the ratio
PostgreSQL / SQLite. PostgreSQL's ``fsync`` and ``synchronous_commit`` are printed with it; SQLite
runs at the hub's default ``synchronous = NORMAL`` (WAL: no flush per commit) and at ``FULL``
(a flush per commit, as PostgreSQL's commit).

Every loop is bounded in count and time (a deadline per phase, ``--max-minutes`` overall);
every process started is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from l4mon.records.alert import Alert
from l4mon.store.journal import Journal, open_journal
from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.blaster import Variation, start_blaster
from testing.broker import Broker, free_port
from testing.figures import percentile
from testing.hub import AUTH, HubProcess, launch_hub, stop_hub, write_hub_config
from testing.postgres import PostgresServer

TAKEOVER_RULE = "takeover_requested"
#: Vehicles of the injected events: ``ha-00000``, ``ha-00001``, ...
EVENT_PREFIX = "ha-"
EVENT_SITE = "ha"
#: How often the failover is polled on the surviving hub.
POLL_S = 0.02
#: Deadlines per phase (s): the pair is broken, not slow, beyond them.
FAILOVER_DEADLINE_S = 10.0
REJOIN_DEADLINE_S = 90.0
SETTLE_DEADLINE_S = 30.0
TARGET_FAILOVER_S = 2.0
#: Opens a journal for one run: (the journal, what removes it afterwards).
Opener = Callable[[int], tuple[Journal, Callable[[], None]]]



# -- the pair ----------------------------------------------------------------------------------


@dataclass
class Slot:
    """One hub of the pair: its port, config and log stay across kills; ``hub`` is the running
    process (None while killed)."""

    name: str
    port: int
    config: Path
    log: Path
    hub: HubProcess | None = None
    starts: int = 0


class Pair:
    """Two hubs on one journal and one broker. Roles are read over a client of the pair's own
    (short timeouts), so a hub's death never closes a client another thread is using."""

    def __init__(self, *, broker: Broker, journal_url: str, workdir: Path,
                 poll_interval_s: float) -> None:
        self.broker = broker
        self.journal_url = journal_url
        ports = [free_port(), free_port()]
        peers = ", ".join(f'"http://127.0.0.1:{p}"' for p in ports)
        self.slots = [
            Slot(name, port, write_hub_config(
                workdir, file_name=f"hub-{name}.toml", journal=workdir / "unused.sqlite",
                extra=(f'[mqtt]\nclient_id = "l4mon-bench-{name}"\n'
                       f"[ha]\npeers = [{peers}]\npoll_interval_s = {poll_interval_s}")),
                 workdir / f"hub-{name}.log")
            for name, port in zip("ab", ports, strict=True)]
        # One client per thread (the operator probes roles too); short timeouts, and none
        # is closed when a hub dies.
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._db: psycopg.Connection[Any] | None = None

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=1.0, headers=AUTH)
            self._clients.append(client)
        return client

    def start(self, slot: Slot) -> None:
        slot.hub = launch_hub(self.broker, slot.config, slot.log, slot.port,
                              extra_args=["--journal", self.journal_url], timeout_s=60.0)
        slot.starts += 1

    def health(self, slot: Slot) -> dict[str, Any] | None:
        try:
            response = self._http().get(f"http://127.0.0.1:{slot.port}/healthz")
            return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError):
            return None

    def role(self, slot: Slot) -> str | None:
        health = self.health(slot)
        return None if health is None else health.get("role")

    def leader(self) -> Slot | None:
        leaders = [s for s in self.slots if s.hub is not None and self.role(s) == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def other(self, slot: Slot) -> Slot:
        return self.slots[1 - self.slots.index(slot)]

    def last_seq(self) -> int:
        """The journal's newest transition, as PostgreSQL holds it."""
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.journal_url, autocommit=True)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM transitions").fetchone()
        return int(row[0]) if row else 0

    def caught_up(self, slot: Slot, seq: int) -> bool:
        """A standby that has applied every transition up to ``seq`` (the journal's newest when
        it came back: a later one may always be a poll away)."""
        health = self.health(slot)
        ha = (health or {}).get("ha") or {}
        return (health is not None and health.get("role") == "standby"
                and int(ha.get("following_seq") or 0) >= seq)

    def kill9(self, slot: Slot) -> float:
        """SIGKILL the hub; returns the monotonic time just before the signal."""
        assert slot.hub is not None
        hub, slot.hub = slot.hub, None
        sent = time.monotonic()
        os.kill(hub.pid, signal.SIGKILL)
        hub.proc.wait(timeout=10)
        stop_hub(hub)  # closes its client; the process is gone already
        return sent

    def close(self) -> None:
        for slot in self.slots:
            if slot.hub is not None:
                stop_hub(slot.hub)
                slot.hub = None
        for client in self._clients:
            client.close()
        if self._db is not None:
            self._db.close()


def _until(predicate: Callable[[], bool], deadline_s: float, poll_s: float = 0.05) -> bool:
    """Poll until true or the deadline; the caller says what a timeout means."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, psycopg.Error):
            if predicate():
                return True
        time.sleep(poll_s)
    return False


# -- the load on top: events and an operator ---------------------------------------------------


class EventPublisher:
    """paho (not the hub's client) with a persistent session, as a vehicle's event sender:
    ``acked`` counts PUBACKs (as bench/faults.py's, which a script cannot import)."""

    def __init__(self, broker: Broker, *, client_id: str) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1_000)
        self.client.max_queued_messages_set(0)
        self.sent = 0
        self.acked = 0
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not connected.wait(10):
            self.client.loop_stop()
            raise RuntimeError("the event publisher could not connect")

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1

    def event(self, site: str, vehicle: str) -> None:
        self.client.publish(event_topic(site, vehicle), msgspec.json.encode(VehicleEvent(
            ts=time.time(), kind="takeover_request", seq=0, detail="ha failover bench")), qos=1)
        self.sent += 1

    def wait_acked(self, timeout_s: float) -> bool:
        """True once every event published has its PUBACK."""
        return _until(lambda: self.acked >= self.sent, timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Events(threading.Thread):
    """QoS 1 takeover requests at a steady rate, each from a fresh vehicle (so each must give
    exactly one alert), from a paho client with a persistent session (bench/faults.py)."""

    def __init__(self, broker: Broker, rate: float, deadline: float) -> None:
        super().__init__(name="ha-events", daemon=True)
        self.publisher = EventPublisher(broker, client_id="ha-failover-events")
        self.rate = rate
        self.deadline = deadline
        self.sent: list[tuple[str, float]] = []  # (vehicle, monotonic time of the publish)
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            ahead = start + n / self.rate - time.monotonic()
            if ahead > 0:
                self.stop.wait(ahead)
                continue
            vehicle = f"{EVENT_PREFIX}{n:05d}"
            self.publisher.event(EVENT_SITE, vehicle)
            self.sent.append((vehicle, time.monotonic()))
            n += 1

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.publisher.close()


@dataclass
class Action:
    """One operator call that got a 2xx: it must be in the journal at the end."""

    alert_id: int
    kind: str  # "ack" or "resolve"
    hub: str
    at: float


@dataclass
class OperatorLog:
    actions: list[Action] = field(default_factory=list)
    refused: int = 0  # 503 from a standby or fenced hub: the operator moves on
    failed: int = 0  # no answer (the hub just died) or another non-2xx
    #: An alert acknowledged by us, by id: when (monotonic), to resolve it later.
    acked: dict[int, float] = field(default_factory=dict)


class Operator(threading.Thread):
    """An operator on duty: every ``period_s``, on whichever hub leads, acknowledges each
    raised takeover alert of the injected vehicles and resolves those it acknowledged
    ``resolve_after_s`` ago. A refusal or failure ends the round; the next finds the leader."""

    def __init__(self, pair: Pair, *, resolve_after_s: float, deadline: float,
                 period_s: float = 0.25) -> None:
        super().__init__(name="ha-operator", daemon=True)
        self.pair = pair
        self.resolve_after_s = resolve_after_s
        self.deadline = deadline
        self.period_s = period_s
        self.log = OperatorLog()
        self.stop = threading.Event()
        self.http = httpx.Client(timeout=2.0, headers=AUTH)

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            self.stop.wait(self.period_s)
            # Asked every round, as a console does after a failure: a killed leader comes back
            # on the same port as the standby, whose reads still answer.
            leader = self.pair.leader()
            if leader is not None:
                self._round(leader)
        self.http.close()

    def _round(self, slot: Slot) -> bool:
        """One pass on ``slot``; False when it did not act as leader."""
        base = f"http://127.0.0.1:{slot.port}/api/alerts"
        try:
            raised = self.http.get(base, params={"state": "raised", "limit": 1000})
            if raised.status_code != 200:
                self.log.failed += 1
                return False
            mine = [a["id"] for a in raised.json() if a["rule"] == TAKEOVER_RULE
                    and a["vehicle"].startswith(EVENT_PREFIX)]
            for alert_id in mine:
                if not self._act(slot, alert_id, "ack", {"note": "on it"}):
                    return False
            if self.resolve_after_s <= 0:
                return True
            now = time.monotonic()
            due = [i for i, at in self.log.acked.items() if now - at >= self.resolve_after_s]
            for alert_id in due:
                if not self._act(slot, alert_id, "resolve", {"reason": "handled (bench)"}):
                    return False
        except (httpx.HTTPError, ValueError):
            self.log.failed += 1
            return False
        return True

    def _act(self, slot: Slot, alert_id: int, kind: str, body: dict[str, str]) -> bool:
        response = self.http.post(f"http://127.0.0.1:{slot.port}/api/alerts/{alert_id}/{kind}",
                                  json=body)
        if response.status_code == 503:
            self.log.refused += 1
            return False
        if response.status_code == 409:  # resolved meanwhile (by us, before a failover)
            self.log.acked.pop(alert_id, None)
            return True
        if not response.is_success:
            self.log.failed += 1
            return False
        now = time.monotonic()
        self.log.actions.append(Action(alert_id, kind, slot.name, now))
        if kind == "ack":
            self.log.acked.setdefault(alert_id, now)
        else:
            self.log.acked.pop(alert_id, None)
        return True

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=10)


# -- the failover run --------------------------------------------------------------------------


@dataclass
class Kill:
    """One leader kill and what followed."""

    n: int
    killed: str
    ingest_rate: float  # msg/s the leader ingested just before the kill
    failover_s: float | None  # kill -> the other's /healthz says leader; None: never
    after_ms: float | None = None  # the new leader's own last_promotion.after_ms
    work_ms: float | None = None
    caught_up: int | None = None  # transitions the new leader applied on promotion
    kept_raised: int | None = None  # kept events it raised on promotion
    events_in_failover: int = 0  # events published between the kill and the new leader
    rejoin_s: float | None = None  # restart -> standby, caught up; None: never
    killed_at: float = 0.0  # monotonic
    back_at: float | None = None  # monotonic: the killed hub connected to the broker again


@dataclass
class Counts:
    sent: int = 0
    acked_by_broker: bool = False
    alerts: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    acks: int = 0
    resolves: int = 0
    acks_lost: list[int] = field(default_factory=list)
    resolves_lost: list[int] = field(default_factory=list)


def _count(url: str, sent: list[str], actions: list[Action]) -> Counts:
    """Lost and duplicated alerts and lost operator actions, from the journal itself."""
    counts = Counts(sent=len(sent))
    ids = sorted({a.alert_id for a in actions})
    states: dict[int, str] = {}
    kinds: dict[int, set[str]] = {}
    with psycopg.connect(url, autocommit=True) as db:
        per_vehicle: dict[str, int] = dict(db.execute(  # type: ignore[arg-type]
            "SELECT vehicle, COUNT(*) FROM alerts WHERE rule = %s AND vehicle LIKE %s "
            "GROUP BY vehicle", (TAKEOVER_RULE, f"{EVENT_PREFIX}%")).fetchall())
        if ids:
            states = dict(db.execute("SELECT id, state FROM alerts WHERE id = ANY(%s)",
                                     (ids,)).fetchall())  # type: ignore[arg-type]
            for alert_id, kind in db.execute("SELECT alert_id, kind FROM transitions "
                                             "WHERE alert_id = ANY(%s)", (ids,)):
                kinds.setdefault(alert_id, set()).add(kind)
    counts.alerts = sum(per_vehicle.values())
    counts.lost = [v for v in sent if per_vehicle.get(v, 0) == 0]
    counts.duplicated = {v: n for v, n in per_vehicle.items() if n > 1}
    for action in actions:
        state, seen = states.get(action.alert_id), kinds.get(action.alert_id, set())
        if action.kind == "ack":
            counts.acks += 1
            if state not in ("acknowledged", "resolved") or "acknowledged" not in seen:
                counts.acks_lost.append(action.alert_id)
        else:
            counts.resolves += 1
            if state != "resolved" or "resolved" not in seen:
                counts.resolves_lost.append(action.alert_id)
    return counts


def _ingest_rate(pair: Pair, slot: Slot, seconds: float) -> float:
    """Messages/s the hub ingested over ``seconds`` (sleeps that long)."""
    first, t0 = pair.health(slot), time.monotonic()
    time.sleep(seconds)
    last, t1 = pair.health(slot), time.monotonic()
    if first is None or last is None:
        return float("nan")
    return (last["ingest"]["received"] - first["ingest"]["received"]) / (t1 - t0)


def _one_kill(pair: Pair, n: int, events: Events) -> Kill:
    leader = pair.leader()
    if leader is None:
        raise RuntimeError("no single leader before the kill")
    survivor = pair.other(leader)
    rate = _ingest_rate(pair, leader, 1.0)
    before = ((pair.health(survivor) or {}).get("ha") or {}).get("promotions", 0)
    killed_at = pair.kill9(leader)
    led_at: float | None = None
    deadline = killed_at + FAILOVER_DEADLINE_S
    while time.monotonic() < deadline:
        if pair.role(survivor) == "leader":
            led_at = time.monotonic()
            break
        time.sleep(POLL_S)
    kill = Kill(n, leader.name, rate, None if led_at is None else led_at - killed_at,
                killed_at=killed_at)
    if led_at is not None:
        kill.events_in_failover = sum(killed_at <= t < led_at for _, t in events.sent)
        ha = (pair.health(survivor) or {}).get("ha") or {}
        promotion = ha.get("last_promotion") or {}
        if ha.get("promotions", 0) > before:
            kill.after_ms = promotion.get("after_ms")
            kill.work_ms = promotion.get("work_ms")
            kill.caught_up = promotion.get("transitions_caught_up")
            kill.kept_raised = promotion.get("kept_events_raised")
    restarted = time.monotonic()
    try:
        pair.start(leader)
    except (RuntimeError, TimeoutError) as error:  # counted as a pair that did not recover
        print(f"hub {leader.name} did not restart: {error}"[:2000], flush=True)
        return kill
    kill.back_at = time.monotonic()
    newest = pair.last_seq()
    if _until(lambda: pair.caught_up(leader, newest), REJOIN_DEADLINE_S, 0.05):
        kill.rejoin_s = time.monotonic() - restarted
    return kill


def _row(kill: Kill) -> str:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    failover = "**none**" if kill.failover_s is None else f"{kill.failover_s * 1000:,.0f}"
    rejoin = "**never**" if kill.rejoin_s is None else f"{kill.rejoin_s:.1f}"
    return (f"| {kill.n} | {kill.killed} | {kill.ingest_rate:,.0f} | {failover} | "
            f"{ms(kill.after_ms)} | {'—' if kill.work_ms is None else f'{kill.work_ms:.1f}'} | "
            f"{ms(kill.caught_up)} | {ms(kill.kept_raised)} | {kill.events_in_failover} | "
            f"{rejoin} |")


def failover(args: argparse.Namespace, pg: PostgresServer, workdir: Path) -> bool:
    """The kills; prints a row per kill and the summary; True when every target held."""
    started = time.monotonic()
    overall = started + args.max_minutes * 60
    url = pg.new_schema()
    broker = Broker()
    pair = Pair(broker=broker, journal_url=url, workdir=workdir,
                poll_interval_s=args.poll_interval)
    blaster = events = operator = None
    kills: list[Kill] = []
    problems: list[str] = []
    try:
        broker.start()
        a, b = pair.slots
        pair.start(a)
        if not _until(lambda: pair.role(a) == "leader", 30):
            raise RuntimeError(f"hub a never led\n{a.log.read_text()[-2000:]}")
        pair.start(b)
        newest = pair.last_seq()
        if not _until(lambda: pair.caught_up(b, newest), 60):
            raise RuntimeError(f"hub b never stood by\n{b.log.read_text()[-2000:]}")
        assert a.hub is not None
        a.hub.post("/api/duty/on")  # journaled: the roster survives every failover
        variation = Variation() if args.varied else None
        blaster = start_blaster(host=broker.host, port=broker.port, vehicles=args.vehicles,
                                rate=args.load, duration_s=args.max_minutes * 60 + 60,
                                site="load", client_id="ha-blaster", varied=variation)
        events = Events(broker, args.events_per_s, overall)
        operator = Operator(pair, resolve_after_s=args.resolve_after, deadline=overall + 60)
        events.start()
        operator.start()
        print(f"\nfailover: {args.kills} kills, {args.load:,.0f} msg/s "
              f"({'varied' if args.varied else 'plain'} load, {args.vehicles} vehicles), "
              f"{args.events_per_s:g} takeover events/s, ack on the leader, resolve "
              f"{args.resolve_after:g} s later, ha poll_interval_s {args.poll_interval:g}\n",
              flush=True)
        print("| kill | killed | leader ingest msg/s | failover ms (poll) | after_ms (hub) | "
              "work ms | caught up | kept raised | events in failover | rejoin s |")
        print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for n in range(1, args.kills + 1):
            if time.monotonic() + args.interval + FAILOVER_DEADLINE_S + 30 > overall:
                problems.append(f"overall deadline: stopped after {n - 1} kills")
                break
            time.sleep(args.interval)
            kill = _one_kill(pair, n, events)
            kills.append(kill)
            print(_row(kill), flush=True)
            if kill.failover_s is None or kill.rejoin_s is None:
                problems.append(f"kill {n}: the pair did not recover")
                break
        events.close()
        if not events.publisher.wait_acked(30.0):
            problems.append("not every event got its PUBACK")
        sent = [v for v, _ in events.sent]
        # Every event raised (or the deadline), then a moment for a late duplicate to show.
        _until(lambda: len(_count(url, sent, []).lost) == 0, SETTLE_DEADLINE_S, 0.5)
        time.sleep(max(2.0, args.resolve_after + 1.0))
        operator.close()
        log = operator.log
        counts = _count(url, sent, log.actions)
        counts.acked_by_broker = events.publisher.acked >= events.publisher.sent
        sent_at = dict(events.sent)
        dropped = {s.name: (s.hub.metric("l4mon_ingest_dropped_total") if s.hub else
                            float("nan")) for s in pair.slots}
    finally:
        if events is not None:
            events.close()
        if operator is not None:
            operator.close()
        if blaster is not None:
            blaster.terminate()
        pair.close()
        broker.close()
        with contextlib.suppress(psycopg.Error):
            pg.drop_schema(url)
    return _summary(kills, counts, log, dropped, problems, args, time.monotonic() - started,
                    sent_at)


def _when(sent_at: float, kills: list[Kill]) -> str:
    """When an event was sent, relative to the kill before it: what a duplicate's cause is
    read from."""
    before = [k for k in kills if k.killed_at <= sent_at]
    if not before:
        return "before the first kill"
    kill = before[-1]
    back = "" if kill.back_at is None else f", back at +{kill.back_at - kill.killed_at:.1f} s"
    down = kill.back_at is None or sent_at < kill.back_at
    return (f"+{sent_at - kill.killed_at:.1f} s after kill {kill.n} (hub {kill.killed} "
            f"{'down' if down else 'up again'}{back})")


def _summary(kills: list[Kill], counts: Counts, log: OperatorLog, dropped: dict[str, float],
             problems: list[str], args: argparse.Namespace, seconds: float,
             sent_at: dict[str, float]) -> bool:
    times = [k.failover_s * 1000 for k in kills if k.failover_s is not None]
    after = [k.after_ms for k in kills if k.after_ms is not None]
    rejoin = [k.rejoin_s for k in kills if k.rejoin_s is not None]
    worst = max(times) if times else float("nan")
    lost, dup = len(counts.lost), sum(n - 1 for n in counts.duplicated.values())
    actions_lost = len(counts.acks_lost) + len(counts.resolves_lost)
    ok = (not problems and len(kills) == args.kills and len(times) == len(kills)
          and worst < TARGET_FAILOVER_S * 1000 and lost == 0 and dup == 0 and actions_lost == 0)
    print(f"\nkills {len(kills)}/{args.kills} in {seconds:.0f} s")
    print(f"failover (kill -9 -> the other's /healthz says leader): p50 "
          f"{percentile(times, 50):,.0f} ms, p95 {percentile(times, 95):,.0f} ms, max "
          f"{worst:,.0f} ms (target < {TARGET_FAILOVER_S * 1000:,.0f} ms); the hub's own "
          f"after_ms p50 {percentile(after, 50):,.0f}, max "
          f"{max(after) if after else float('nan'):,.0f}")
    print(f"rejoin (restart -> standby, caught up): p50 {percentile(rejoin, 50):.1f} s, max "
          f"{max(rejoin) if rejoin else float('nan'):.1f} s")
    print(f"events {counts.sent} (every PUBACK: {'yes' if counts.acked_by_broker else 'NO'}), "
          f"alerts {counts.alerts}: lost {lost}, duplicated {dup}")
    for vehicle in sorted(counts.duplicated)[:20]:
        print(f"  duplicated: {vehicle} x{counts.duplicated[vehicle]}, sent "
              f"{_when(sent_at[vehicle], kills)}")
    for vehicle in counts.lost[:20]:
        print(f"  lost: {vehicle}, sent {_when(sent_at[vehicle], kills)}")
    print(f"operator: {counts.acks} acks and {counts.resolves} resolves got a 2xx; lost from "
          f"the journal: acks {len(counts.acks_lost)}, resolves {len(counts.resolves_lost)}"
          + (f" {(counts.acks_lost + counts.resolves_lost)[:10]}" if actions_lost else "")
          + f"; refused by a non-leader {log.refused}, no answer/other {log.failed}")
    print(f"ingest dropped at the end: {', '.join(f'{k} {v:.0f}' for k, v in dropped.items())}")
    for problem in problems:
        print(f"problem: {problem}")
    print(f"\nlost / duplicated / acks lost = {lost} / {dup} / {actions_lost} (target 0/0/0), "
          f"failover max {worst:,.0f} ms (target < {TARGET_FAILOVER_S * 1000:,.0f}): "
          f"{'PASS' if ok else 'FAIL'}", flush=True)
    return ok


# -- the journal's own rate --------------------------------------------------------------------


def _write(journal: Journal, transitions: int) -> float:
    """Transitions/s of ``transitions`` written as the engine writes them: raise (a new alert
    with its transition), acknowledge, resolve; each its own transaction."""
    done = 0
    started = time.perf_counter()
    n = 0
    while done < transitions:
        at = 1.8e9 + n
        alert = Alert(id=0, rule=TAKEOVER_RULE, title="Vehicle requests takeover",
                      severity="takeover", site="rate", vehicle=f"rate-{n:06d}", link=None,
                      rsu=None, state="raised", raised_at=at, detail="bench",
                      on_duty_at_raise=["alice"])
        journal.new_alert(alert, kind="raised", at=at, actor=None, detail="bench",
                          on_duty=["alice"])
        done += 1
        for state, kind, actor in (("acknowledged", "acknowledged", "alice"),
                                   ("resolved", "resolved", "alice")):
            if done >= transitions:
                break
            alert.state = state
            if state == "acknowledged":
                alert.acknowledged_at, alert.acknowledged_by = at + 1, actor
            else:
                alert.resolved_at, alert.resolved_by = at + 2, actor
                alert.resolve_reason = "handled"
            journal.record(alert, kind=kind, at=at + 1, actor=actor, detail="",
                           on_duty=["alice"])
            done += 1
        n += 1
    return transitions / (time.perf_counter() - started)


def journal_rate(args: argparse.Namespace, pg: PostgresServer, workdir: Path) -> None:
    """Each backend ``args.rounds`` times, in a rotating order; prints the table."""
    with psycopg.connect(pg.url(), autocommit=True) as db:
        settings = {name: db.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                    for name in ("fsync", "synchronous_commit", "full_page_writes",
                                 "wal_sync_method", "server_version")}
    def postgres(_: int) -> tuple[Journal, Callable[[], None]]:
        url = pg.new_schema()
        return open_journal(url), lambda: pg.drop_schema(url)

    def sqlite(sync: Literal["NORMAL", "FULL"]) -> Opener:
        def make(round_no: int) -> tuple[Journal, Callable[[], None]]:
            path = workdir / f"rate-{sync}-{round_no}.sqlite"
            return open_journal(str(path), synchronous=sync), lambda: None
        return make

    backends: list[tuple[str, Opener]] = [
        ("PostgreSQL", postgres), ("SQLite NORMAL", sqlite("NORMAL")),
        ("SQLite FULL", sqlite("FULL"))]
    rates: dict[str, list[float]] = {name: [] for name, _ in backends}
    print(f"\njournal rate: {args.transitions:,} transitions per run, {args.rounds} rounds; "
          f"PostgreSQL {settings['server_version']} on loopback (fsync {settings['fsync']}, "
          f"synchronous_commit {settings['synchronous_commit']}, full_page_writes "
          f"{settings['full_page_writes']}, wal_sync_method {settings['wal_sync_method']}); "
          f"SQLite WAL in {workdir} (same disk)\n", flush=True)
    for round_no in range(args.rounds):
        shift = round_no % len(backends)
        for name, make in backends[shift:] + backends[:shift]:
            journal, cleanup = make(round_no)
            try:
                rate = _write(journal, args.transitions)
            finally:
                journal.close()
                cleanup()
            rates[name].append(rate)
            print(f"round {round_no + 1}: {name}: {rate:,.0f} transitions/s", flush=True)
    print("\n| journal | transitions/s median | range | µs per transition (median) |")
    print("|---|---|---|---|")
    for name, values in rates.items():
        mid = statistics.median(values)
        print(f"| {name} | {mid:,.0f} | {min(values):,.0f}–{max(values):,.0f} | "
              f"{1e6 / mid:,.0f} |")
    pg_rates = rates["PostgreSQL"]
    for other in ("SQLite NORMAL", "SQLite FULL"):
        ratios = [p / s for p, s in zip(pg_rates, rates[other], strict=True)]
        print(f"PostgreSQL / {other}: median {statistics.median(ratios):.2f} "
              f"(rounds {min(ratios):.2f}–{max(ratios):.2f})")


# -- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="l4mon-ha-failover-") as tmp:
        yield Path(tmp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--load", type=float, default=30_000.0, help="blaster msg/s")
    ap.add_argument("--vehicles", type=int, default=1_000, help="blaster fleet size")
    ap.add_argument("--varied", action="store_true", help="the blaster's varied load")
    ap.add_argument("--events-per-s", type=float, default=5.0)
    ap.add_argument("--interval", type=float, default=5.0, help="s before each kill")
    ap.add_argument("--resolve-after", type=float, default=2.0,
                    help="s from an ack to its resolve (0: never resolve)")
    ap.add_argument("--poll-interval", type=float, default=0.2, help="[ha] poll_interval_s")
    ap.add_argument("--max-minutes", type=float, default=30.0, help="the failover part's bound")
    ap.add_argument("--pg-fsync", choices=("on", "off"), default="on")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--journal-rate", action="store_true", help="only the journal rate")
    part.add_argument("--no-journal-rate", action="store_true", help="only the failover")
    ap.add_argument("--transitions", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.kills < 1 or args.events_per_s <= 0 or args.transitions < 1 or args.rounds < 1:
        ap.error("need --kills >= 1, --events-per-s > 0, --transitions >= 1, --rounds >= 1")
    ok = True
    with _workdir() as work, PostgresServer(fsync=args.pg_fsync == "on") as pg:
        print(f"PostgreSQL in {pg.workdir} on 127.0.0.1:{pg.port}, fsync {args.pg_fsync}",
              flush=True)
        if not args.journal_rate:
            ok = failover(args, pg, work)
        if not args.no_journal_rate:
            journal_rate(args, pg, work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
