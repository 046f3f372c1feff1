"""Many console connections on one token: are takeover alerts still prompt?

Run: ``.venv/bin/python bench/console_connections.py [--connections 5000] [--cap N]
[--injections 100] [--fleet 20]``

A real ``l4mon serve`` (its own process) on a real Mosquitto. This process makes
``--connections`` WebSocket handshakes on one token, one after another, each on a bare socket
that is held open and never read (testing/ws_raw.py), as the issue's attacker did. With the
default caps (20 per token, 500 in all) the 21st and later are refused with 429 before the
upgrade; ``--cap N`` raises both caps to N to measure the fan-out itself with N consoles
open. Then a console on a second token reads the stream while a vehicle publishes
``--injections`` takeover requests (QoS 1, 50 ms apart); the latency is from just before the
publish to the alert frame on that console, one clock. ``/healthz`` is timed after each
injection. The hub's RSS is read before the handshakes and after the injections.

Target: with 5,000 console connections, alert p99 < 50 ms, each takeover on the
reading console within 1 s, ``/healthz`` prompt (the issue: p50 357 ms, /healthz 4.4 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import tempfile
import time
from pathlib import Path
from statistics import median

import gmqtt
import httpx
import msgspec
import websockets

from l4mon.auth import hash_token
from telemetry.topics import event_topic, state_topic
from telemetry.wire import VehicleEvent, VehicleState
from testing.broker import running_broker
from testing.figures import percentile
from testing.hub import TEST_TOKEN, running_hub
from testing.ws_raw import open_raw

READER_TOKEN = "bench-reader-not-secret"



def _raise_fd_limit(wanted: int) -> None:
    """Room for ``wanted`` sockets here and in the hub (a child inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _connect_many(port: int, count: int, max_s: float) -> tuple[list[socket.socket], int,
                                                                  float]:
    """(held sockets, refused, seconds) for ``count`` handshakes, stopped after ``max_s``."""
    held: list[socket.socket] = []
    refused = 0
    start = time.monotonic()
    for _ in range(count):
        if time.monotonic() - start > max_s:
            break
        try:
            held.append(open_raw(port, f"token={TEST_TOKEN}", rcvbuf=4096))
        except ConnectionRefusedError:
            refused += 1
    return held, refused, time.monotonic() - start


async def _inject(host: str, broker_port: int, http_port: int, injections: int
                  ) -> tuple[list[float], int, list[float]]:
    """(alert latencies ms, missing, /healthz ms) for ``injections`` takeover requests."""
    latencies: list[float] = []
    health_ms: list[float] = []
    missing = 0
    publisher = gmqtt.Client("bench-takeovers")
    await publisher.connect(host, broker_port)
    async with websockets.connect(f"ws://127.0.0.1:{http_port}/ws?token={READER_TOKEN}",
                                  max_size=None) as ws, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10.0) as http:
        await ws.recv()  # the snapshot
        for n in range(injections):
            vehicle = f"probe-{n:04d}"
            sent = time.perf_counter()
            publisher.publish(event_topic("crowd", vehicle), msgspec.json.encode(
                VehicleEvent(ts=time.time(), kind="takeover_request", seq=1)), qos=1)
            try:
                async with asyncio.timeout(1.0):
                    while True:
                        raw = await ws.recv()
                        if raw.startswith('{"type":"alert"') and \
                                json.loads(raw)["alert"]["vehicle"] == vehicle:
                            break
                latencies.append((time.perf_counter() - sent) * 1000)
            except TimeoutError:
                missing += 1
            asked = time.perf_counter()
            (await http.get("/healthz")).raise_for_status()
            health_ms.append((time.perf_counter() - asked) * 1000)
            await asyncio.sleep(0.05)
    await publisher.disconnect()
    return latencies, missing, health_ms


def _fill_fleet(host: str, port: int, vehicles: int) -> None:
    """A small fleet, so state frames carry something (each console gets one per 0.5 s)."""
    async def publish() -> None:
        client = gmqtt.Client("bench-fleet")
        await client.connect(host, port)
        for n in range(vehicles):
            client.publish(state_topic("crowd", f"shuttle-{n:03d}"), msgspec.json.encode(
                VehicleState(ts=time.time(), seq=1, lat=36.0, lon=136.0 + n * 1e-4,
                             speed_mps=5.0, heading_deg=90.0, mode="autonomous")), qos=1)
        await asyncio.sleep(0.5)
        await client.disconnect()

    asyncio.run(publish())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=5_000)
    ap.add_argument("--cap", type=int, default=0,
                    help="raise both connection caps to this (0: the defaults)")
    ap.add_argument("--injections", type=int, default=100)
    ap.add_argument("--fleet", type=int, default=20, help="vehicles heard before")
    ap.add_argument("--max-connect-s", type=float, default=120.0,
                    help="stop making handshakes after this long")
    args = ap.parse_args()
    _raise_fd_limit(2 * args.connections + 1_000)
    console = (f"[console]\nmax_connections = {args.cap + 1}\n"  # + the reading console
               f"max_connections_per_token = {args.cap}\n") if args.cap else ""
    extra = (f'[[auth.tokens]]\nname = "reader"\nrole = "viewer"\n'
             f'sha256 = "{hash_token(READER_TOKEN)}"\n{console}')
    with running_broker() as broker, tempfile.TemporaryDirectory() as state, \
            running_hub(broker, Path(state), log=False, name="crowd",
                        extra_config=extra) as hub:
        hub.post("/api/duty/on")
        _fill_fleet(broker.host, broker.port, args.fleet)
        rss_before = hub.rss_mb()
        held, refused, took = _connect_many(hub.port, args.connections, args.max_connect_s)
        print(f"{len(held) + refused} handshakes in {took:.1f} s on one token: {len(held)} "
              f"held open (not reading), {refused} refused; caps "
              f"{args.cap or 'default'}", flush=True)
        time.sleep(1.0)
        clients = hub.metric("l4mon_console_clients")
        latencies, missing, health_ms = asyncio.run(_inject(
            broker.host, broker.port, hub.port, args.injections))
        rss_after = hub.rss_mb()
        for sock in held:
            sock.close()
    if latencies:
        print(f"takeover -> reading console ({int(clients)} other consoles open): p50 "
              f"{median(latencies):.1f} ms  p99 {percentile(latencies, 99):.1f} ms  max "
              f"{max(latencies):.1f} ms  missing (> 1 s) {missing}")
    print(f"/healthz: p50 {median(health_ms):.1f} ms  max {max(health_ms):.1f} ms")
    print(f"hub RSS {rss_before:.1f} -> {rss_after:.1f} MB")
    ok = bool(latencies) and percentile(latencies, 99) < 50 and not missing \
        and max(health_ms) < 500
    print(f"target p99 < 50 ms, none > 1 s, /healthz < 500 ms: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
