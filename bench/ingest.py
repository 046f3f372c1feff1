"""Hub ingest throughput through a real broker, against a bare subscriber of the same client.

Run: ``.venv/bin/python bench/ingest.py [--seconds 8] [--vehicles 1000] [--repeats 2]``

For each MQTT client behind the hub's seam, the same blaster load (``--vehicles`` x 3 streams,
as fast as the broker forwards, QoS 0) goes first to a bare subscriber that only counts, then
to the real hub pipeline (MqttSource -> Hub.ingest: decode, quarantine checks, link
statistics, state -> Hub.tick every 0.25 s), each in its own process. Printed per run: msgs/s
in the steady window, the subscriber's CPU share, and msgs/s per core (= rate / CPU share:
what one core would do alone, since broker, blaster and subscriber share 2 cores here). The
ratio hub / bare is taken within one repeat, so both saw the same machine.

Targets (issue 2): hub >= 80 % of the bare subscriber; >= 100,000 msg/s on one core.

``--handovers`` adds, in each repeat, the same hub with handover detection off
(``[handover] enabled = false``; on by default) and prints the default hub's CPU cost per
message against it, from the same repeat. Target (issue 5): less than 15 % more.
"""

from __future__ import annotations

import argparse
from statistics import median

from mqtt_clients import RunResult, run_one  # a sibling script: see bench/__init__.py

from testing.broker import running_broker

#: The hub against a bare subscriber of exactly the client it runs on: gmqtt with the hub's lean
#: QoS 0 PUBLISH path (l4mon/ingest/_gmqtt.py); "gmqtt-stock" compares with gmqtt as shipped.
PAIRS = {"gmqtt": ("gmqtt-lean", "hub-gmqtt"), "gmqtt-stock": ("gmqtt", "hub-gmqtt"),
         "aiomqtt": ("aiomqtt", "hub-aiomqtt")}


def _per_core(r: RunResult) -> float:
    return r.rate / r.sub_cpu if r.sub_cpu > 0.05 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="publishing time per run (<= 10)")
    ap.add_argument("--warmup", type=float, default=1.5, help="excluded after the first message")
    ap.add_argument("--vehicles", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--clients", default="gmqtt", help="comma list of: " + ", ".join(PAIRS))
    ap.add_argument("--rate", type=float, default=0.0, help="publisher msgs/s, 0 = max")
    ap.add_argument("--handovers", action="store_true",
                    help="also run the gmqtt hub without handover detection")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 10.0)
    args.pin = False
    rows: list[tuple[str, int, RunResult, RunResult]] = []
    tracked: list[tuple[RunResult, RunResult]] = []  # (hub without handovers, default hub)
    with running_broker(sys_interval=1) as broker:
        print(f"broker {broker.url}; {args.vehicles} vehicles x 3 streams, QoS 0, "
              f"{args.seconds:.0f} s per run, {args.repeats} repeats", flush=True)
        for repeat in range(args.repeats):
            for client in args.clients.split(","):
                bare_kind, hub_kind = PAIRS[client]
                bare = run_one(broker, bare_kind, 0, args.rate or None, args)
                hub = run_one(broker, hub_kind, 0, args.rate or None, args)
                rows.append((client, repeat, bare, hub))
                print(f"  [{repeat}] {client}: bare {bare.rate:,.0f} msg/s, "
                      f"hub {hub.rate:,.0f} msg/s {bare.error}{hub.error}", flush=True)
                if args.handovers and client == "gmqtt":
                    without = run_one(broker, "hub-gmqtt-no-handovers", 0, args.rate or None,
                                      args)
                    tracked.append((without, hub))
                    print(f"  [{repeat}] gmqtt hub without handovers: {without.rate:,.0f} msg/s "
                          f"{without.error}", flush=True)
    print()
    head = (f"{'client':<8}{'run':>4}{'bare msg/s':>12}{'bare/core':>11}{'hub msg/s':>11}"
            f"{'hub cpu':>8}{'hub/core':>10}{'hub/bare':>9}{'per core':>9}{'missing':>9}")
    print(head)
    print("-" * len(head))
    for client, repeat, bare, hub in rows:
        ratio = hub.rate / bare.rate if bare.rate else 0.0
        core_ratio = _per_core(hub) / _per_core(bare) if _per_core(bare) else 0.0
        print(f"{client:<8}{repeat:>4}{bare.rate:>12,.0f}{_per_core(bare):>11,.0f}"
              f"{hub.rate:>11,.0f}{hub.sub_cpu:>8.2f}{_per_core(hub):>10,.0f}{ratio:>9.2f}"
              f"{core_ratio:>9.2f}{hub.missing:>9,}")
    for client, repeat, _, hub in rows:
        print(f"hub {client} run {repeat}: {hub.extra}")
    print()
    for client in args.clients.split(","):
        mine = [(bare, hub) for c, _, bare, hub in rows if c == client and bare.rate and hub.rate]
        if not mine:
            continue
        ratio = median(hub.rate / bare.rate for bare, hub in mine)
        per_core = median(_per_core(hub) for _, hub in mine)
        print(f"{client}: median hub/bare {ratio:.2f} (target >= 0.80: "
              f"{'PASS' if ratio >= 0.80 else 'FAIL'}); median hub msgs/s per core "
              f"{per_core:,.0f} (target >= 100,000: {'PASS' if per_core >= 100_000 else 'FAIL'})")
    pairs = [(h, t) for h, t in tracked if _per_core(h) and _per_core(t)]
    if pairs:
        print("\nhandover detection, CPU cost per message (1 / msgs/s per core):")
        for i, (h, t) in enumerate(pairs):
            print(f"  run {i}: without {1e6 / _per_core(h):.2f} us, with handovers "
                  f"{1e6 / _per_core(t):.2f} us, ratio {_per_core(h) / _per_core(t):.3f}")
        extra = median(_per_core(h) / _per_core(t) for h, t in pairs)
        print(f"median cost ratio {extra:.3f} (target < 1.15: "
              f"{'PASS' if extra < 1.15 else 'FAIL'})")
    print("\nhub/bare = delivered-rate ratio; per core = ratio of msgs/s per core (CPU cost).")
    print("missing = sent - counted after draining (broker drops or hub buffer drops).")


if __name__ == "__main__":
    main()
