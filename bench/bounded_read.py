"""Is the hub's MQTT packet reader linear in packet size? Time per MB at 4, 16 and 64 MB.

Run: ``.venv/bin/python bench/bounded_read.py [--rounds 5]``.

gmqtt's own read loop copied its whole buffer at every 64 KiB read, so a packet 4x larger
cost 16x; l4mon/ingest/_bounded_read.py's ``PacketReader`` appends in place and
parses only what a read completes. Each round feeds one PUBLISH of each size in 64 KiB reads
(the sizes in turn, so a slow moment of the shared machine hits all of them), with a bound
above the packet so it is read whole, as a raised ``max_payload_bytes`` would. Printed: ms per
MB for each size and the ratio of the largest's per-MB cost to the smallest's, median and
range over rounds: 1 is linear, 16 quadratic. A timing, so it lives here and
not in the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from l4mon.ingest._bounded_read import CHUNK, PacketReader

SIZES_MB = (4, 16, 64)
TOPIC = b"l4mon/v1/depot/vehicle/v1/state"


def publish(payload_len: int) -> bytes:
    """A QoS 0 PUBLISH of ``payload_len`` zero bytes (MQTT 3.1.1, no properties)."""
    body_len = 2 + len(TOPIC) + payload_len
    length, n = bytearray(), body_len
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return (bytes([0x30]) + bytes(length) + len(TOPIC).to_bytes(2, "big") + TOPIC
            + bytes(payload_len))


def seconds_to_read(data: bytes) -> float:
    reads = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    got: list[int] = []
    reader = PacketReader(limit=len(data) * 2, emit=lambda _c, body: got.append(len(body)),
                          refuse=lambda _r: None)
    started = time.perf_counter()
    for read in reads:
        reader.feed(read)
    took = time.perf_counter() - started
    if len(got) != 1:
        raise SystemExit(f"the reader emitted {len(got)} packets for one")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    packets = {mb: publish(mb * 1024 * 1024) for mb in SIZES_MB}
    per_mb: dict[int, list[float]] = {mb: [] for mb in SIZES_MB}
    ratios: list[float] = []
    for _ in range(args.rounds):
        this = {mb: seconds_to_read(packets[mb]) * 1e3 / mb for mb in SIZES_MB}
        for mb, ms in this.items():
            per_mb[mb].append(ms)
        ratios.append(this[SIZES_MB[-1]] / this[SIZES_MB[0]])
    for mb in SIZES_MB:
        v = per_mb[mb]
        print(f"{mb:3d} MB: {statistics.median(v):.3f} ms per MB ({min(v):.3f}-{max(v):.3f})")
    print(f"per-MB cost {SIZES_MB[-1]} MB / {SIZES_MB[0]} MB: {statistics.median(ratios):.2f} "
          f"({min(ratios):.2f}-{max(ratios):.2f}) over {args.rounds} rounds "
          "(1 = linear, 16 = quadratic)")


if __name__ == "__main__":
    main()
