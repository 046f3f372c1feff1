"""The MQTT client's own cost per PUBLISH: gmqtt as shipped against the hub's lean path.

Run: ``.venv/bin/python bench/lean_publish.py [--packets 200000] [--rounds 7]``

No broker and no socket: each packet is handed straight to a gmqtt client's package handler
(``_handle_packet``, what gmqtt calls for every packet it reads), once with gmqtt's own path
(a plain ``on_message``, as shipped: it acknowledges QoS 1 on receipt) and once with the lean
path ``serve`` installs (``l4mon/ingest/_gmqtt.py``: ``install_lean_publish``, acknowledging
after processing — here at once). Four shapes the hub gets: plain telemetry, telemetry with a
content type (MessagePack), with a content type and an identity user property (hubs with
``require_identity``), and a plain QoS 1 event. Rounds alternate the two paths (which goes
first swaps each round); each timing is ``time.process_time`` over ``--packets`` packets.
Printed: median µs per packet with its range over rounds, and the ratio lean / shipped.

This isolates the client's parse from the hub's ingest (``bench/hub_cost.py``) and from the
broker (``bench/ingest.py``); it is the figure that says what the lean path saves per message.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from l4mon.ingest._gmqtt import install_lean_publish

TOPIC = b"l4mon/v1/bench/vehicle/v00001/link/l5g"
PAYLOAD = (b'{"ts":1767225600.125,"seq":123456,"rat":"nr","cell_id":"440-10-1234-7",'
           b'"rsrp_dbm":-92.0,"sinr_db":14.5,"rtt_ms":23.4,"ul_kbps":9000.0}')


def _prop_str(pid: int, text: str) -> bytes:
    raw = text.encode()
    return bytes([pid]) + len(raw).to_bytes(2, "big") + raw


def _body(qos: int, props: bytes, payload: bytes) -> bytes:
    body = len(TOPIC).to_bytes(2, "big") + TOPIC + (b"\x00\x07" if qos else b"")
    return body + bytes([len(props)]) + props + payload


CTYPE = _prop_str(0x03, "application/msgpack")
IDENTITY = b"\x26" + _prop_str(0, "l4mon-client")[1:] + _prop_str(0, "v00001")[1:]
SHAPES: dict[str, tuple[int, bytes]] = {
    "QoS 0, no properties": (0x30, _body(0, b"", PAYLOAD)),
    "QoS 0, content type": (0x30, _body(0, CTYPE, PAYLOAD)),
    "QoS 0, content type + identity": (0x30, _body(0, CTYPE + IDENTITY, PAYLOAD)),
    "QoS 1, no properties (PUBACK incl.)": (0x32, _body(1, b"", b'{"kind":"mrm"}')),
}


def _client() -> Any:
    """A gmqtt client that never connects; its PUBACKs go nowhere."""
    client = gmqtt.Client("bench-lean")
    client._connection_state.protocol_version = MQTTv50
    client._connection = SimpleNamespace(
        send_command_with_mid=lambda _cmd, _mid, _dup, reason_code=0: None)
    return client


def shipped() -> Callable[[int, bytes], None]:
    client = _client()
    client.on_message = lambda _c, _topic, _payload, _qos, _props: 0
    return client._package_handler._handle_packet


def lean(identity: bool) -> Callable[[int, bytes], None]:
    client = _client()
    client.on_message = lambda _c, _topic, _payload, _qos, _props: 0

    def take(_delivery: object, *rest: Any) -> None:
        ack = rest[-1] if rest else None
        if callable(ack):
            ack()

    if identity:
        ok = install_lean_publish(client, take, take)
    else:
        ok = install_lean_publish(client, take)
    if not ok:
        raise SystemExit("the lean path could not be installed on this gmqtt")
    return client._package_handler._handle_packet


def per_packet_us(handle: Callable[[int, bytes], None], cmd: int, body: bytes,
                  packets: int) -> float:
    began = time.process_time()
    for _ in range(packets):
        handle(cmd, body)
    return (time.process_time() - began) * 1e6 / packets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    packets = max(1_000, min(args.packets, 2_000_000))
    rounds = max(1, min(args.rounds, 50))
    print(f"lean_publish: gmqtt {gmqtt.__version__}, {packets:,} packets per timing, "
          f"{rounds} rounds alternating")
    print("| PUBLISH | gmqtt as shipped, µs | lean path, µs | lean / shipped |")
    print("|---|---|---|---|")
    for name, (cmd, body) in SHAPES.items():
        identity = "identity" in name
        paths = {"shipped": shipped(), "lean": lean(identity)}
        got: dict[str, list[float]] = {"shipped": [], "lean": []}
        for r in range(rounds):
            order = ("shipped", "lean") if r % 2 == 0 else ("lean", "shipped")
            for which in order:
                got[which].append(per_packet_us(paths[which], cmd, body, packets))
        ratios = [a / b for a, b in zip(got["lean"], got["shipped"], strict=True)]

        def show(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"

        print(f"| {name} | {show(got['shipped'])} | {show(got['lean'])} | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |",
              flush=True)


if __name__ == "__main__":
    main()
