"""One oversized MQTT message against a real hub: how late the other vehicles' takeover
requests arrive, and what it costs the hub's memory.

Run: ``.venv/bin/python bench/oversize.py [--size-mb 64] [--victims 20] [--timeout 120]
[--tree DIR] [--broker-limit | --ignoring-broker]``

A real Mosquitto (testing/broker.py) and a real ``l4mon serve`` (from ``--tree``, default this
tree: a ``git archive`` of an older commit measures the code before a change). The broker has
no size limit unless ``--broker-limit`` (the deployment's); with ``--ignoring-broker`` the hub
reaches it through testing/mqtt_proxy.py, so it never learns the hub's Maximum Packet Size and
sends everything, as a broker ignoring it would: the hub's reader-side bound is measured. One
client publishes a ``--size-mb`` QoS 1 message on vehicle ``shuttle-01``'s own state topic;
once the broker has taken it (PUBACK), ``--victims`` other vehicles each publish one QoS 1
takeover request, 0.25 s apart, which the broker queues behind it. Measured: when each takeover
alert was raised (``raised_at`` minus the time it was sent; both clocks are this host's), which
were still missing after ``--timeout`` s, the hub's peak resident memory (sampled every 20 ms,
and its own ``VmHWM``), its broker reconnects, and what /metrics and the alerts say of the
sender.
Loopback only; every process started is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from telemetry.topics import event_topic, state_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker, free_port
from testing.hub import ROOT, HubProcess, launch_hub, stop_hub, write_hub_config
from testing.mqtt_proxy import IgnoringProxy

SITE = "site-a"
ATTACKER = "shuttle-01"
#: A message over the deployed broker's ``message_size_limit`` but under its
#: ``max_packet_size`` (deploy/mosquitto/mosquitto.conf) with ``--broker-limit``.
BROKER_LIMIT = ("message_size_limit 16384", "max_packet_size 65536")


@dataclass
class Outcome:
    size_mb: float
    victims: int
    broker_took_s: float | None
    arrived: int
    missing: list[str]
    latency_ms: list[float]
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    hwm_before_mb: float
    hwm_after_mb: float
    reconnects: float
    quarantined_oversize: float
    sender_alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latency_max_ms(self) -> float | None:
        return max(self.latency_ms) if self.latency_ms else None


def _status_kb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class RssSampler:
    """The hub's VmRSS every ``period_s`` in a thread; the peak seen."""

    def __init__(self, pid: int, period_s: float = 0.02) -> None:
        self.pid = pid
        self.period_s = period_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _status_kb(self.pid, "VmRSS"))
            self._stop.wait(self.period_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __exit__(self, *_: object) -> None:
        self.stop()


def _client(broker: Broker, client_id: str) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1_000)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(broker.host, broker.port, keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"{client_id} could not connect to {broker.url}")
    return client


def _takeovers(hub: HubProcess) -> dict[str, float]:
    """vehicle -> raised_at of its takeover_requested alert."""
    alerts = hub.json("/api/alerts", limit=1000)
    return {a["vehicle"]: a["raised_at"] for a in alerts if a["rule"] == "takeover_requested"}


def run(*, size_mb: float, victims: int, timeout_s: float, tree: Path = ROOT,
        broker_limit: bool = False, ignoring: bool = False,
        workdir: Path | None = None) -> Outcome:
    """The attack once, against a fresh broker and hub; see the module docstring."""
    payload = b"x" * int(size_mb * 1024 * 1024)
    with contextlib.ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="l4mon-oversize-")))
        broker = stack.enter_context(Broker(extra_config=BROKER_LIMIT if broker_limit else ()))
        url = stack.enter_context(IgnoringProxy(broker)).url if ignoring else broker.url
        hub = launch_hub(url, write_hub_config(work), work / "hub.log", free_port(),
                         tree=tree)
        stack.callback(stop_hub, hub)
        time.sleep(0.3)  # SUBSCRIBE follows CONNACK
        hwm_before = _status_kb(hub.pid, "VmHWM")
        rss_before = hub.rss_mb()
        attacker = _client(broker, ATTACKER)
        stack.callback(attacker.loop_stop)
        stack.callback(attacker.disconnect)
        sender = _client(broker, "victims")
        stack.callback(sender.loop_stop)
        stack.callback(sender.disconnect)
        sampler = stack.enter_context(RssSampler(hub.pid))
        started = time.monotonic()
        info = attacker.publish(state_topic(SITE, ATTACKER), payload, qos=1)
        info.wait_for_publish(timeout=min(timeout_s, 60))
        broker_took = time.monotonic() - started if info.is_published() else None
        del payload
        sent: dict[str, float] = {}
        for n in range(victims):
            vid = f"victim-{n:02d}"
            now = time.time()
            event = VehicleEvent(ts=now, kind="takeover_request", seq=1, detail="bench")
            sender.publish(event_topic(SITE, vid), json.dumps(
                {"ts": event.ts, "kind": event.kind, "seq": event.seq,
                 "detail": event.detail}).encode(), qos=1)
            sent[vid] = now
            time.sleep(0.25)
        deadline = started + timeout_s
        raised: dict[str, float] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                raised = _takeovers(hub)
            if all(v in raised for v in sent):
                break
            time.sleep(0.1)
        time.sleep(0.5)  # let the hub settle before the "after" reading
        rss_after = hub.rss_mb()
        hwm_after = _status_kb(hub.pid, "VmHWM")
        sampler.stop()
        reconnects = oversize = 0.0
        sender_alerts: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):
            reconnects = hub.metric("l4mon_mqtt_disconnects")
            oversize = _labelled(hub, "l4mon_messages_quarantined", 'reason="oversize"')
            sender_alerts = [
                {k: a[k] for k in ("rule", "title", "vehicle", "severity", "detail")}
                for a in hub.json("/api/alerts", limit=1000) if ATTACKER in (
                    (a.get("vehicle") or "") + a.get("title", "") + (a.get("detail") or ""))]
        return Outcome(
            size_mb=size_mb, victims=victims, broker_took_s=broker_took,
            arrived=sum(1 for v in sent if v in raised),
            missing=sorted(v for v in sent if v not in raised),
            latency_ms=[round((raised[v] - sent[v]) * 1000, 1) for v in sent if v in raised],
            rss_before_mb=round(rss_before, 1), rss_peak_mb=round(sampler.peak_mb, 1),
            rss_after_mb=round(rss_after, 1), hwm_before_mb=round(hwm_before, 1),
            hwm_after_mb=round(hwm_after, 1), reconnects=reconnects,
            quarantined_oversize=oversize, sender_alerts=sender_alerts)


def _labelled(hub: HubProcess, name: str, label: str) -> float:
    for line in hub.get("/metrics").text.splitlines():
        if line.startswith((name + "{", name + "_total{")) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=64.0)
    parser.add_argument("--victims", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--broker-limit", action="store_true")
    parser.add_argument("--ignoring-broker", action="store_true")
    args = parser.parse_args(argv)
    outcome = run(size_mb=args.size_mb, victims=args.victims, timeout_s=args.timeout,
                  tree=args.tree, broker_limit=args.broker_limit,
                  ignoring=args.ignoring_broker)
    report = asdict(outcome)
    report["latency_max_ms"] = outcome.latency_max_ms
    print(json.dumps(report, indent=1))
    return 0 if not outcome.missing else 1


if __name__ == "__main__":
    sys.exit(main())
