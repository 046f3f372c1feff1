"""CPU cost per message of the hub's pipeline, offline: variants compared in the same run.

Run: ``.venv/bin/python bench/hub_cost.py [--vehicles 300] [--seconds 60] [--rounds 5]``

The simulated fleet (realistic cell changes, RSUs, the demo site) is encoded once; then each
round feeds the same messages to a fresh hub per variant, in alternating order, as
``serve`` would (batches of ``--batch``, a tick every 0.25 s of fleet time, the full alert
engine, the garbage collector tuned as serve tunes it), timing ``Hub.ingest`` and ``Hub.tick``
separately with ``time.process_time``.
No broker: this isolates what l4mon adds per message from the MQTT client's own cost, which
``bench/ingest.py`` measures end to end. The baseline is the hub as ``serve`` runs it by
default; the ratios are variant / baseline, medians over rounds.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

from l4mon.assembly import build_runtime
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, config_from_dict
from l4mon.runtime import tune_gc
from scenarios.sim import SimFleet
from telemetry.site import DEMO_SITE_PATH, load_site

START = 1_767_225_600.0
TICK_S = 0.25

#: name → config overrides (merged over the defaults).
VARIANTS: dict[str, dict] = {
    "default": {},
    "no-handovers": {"handover": {"enabled": False}},
}


def fleet_messages(vehicles: int, seconds: float) -> list[tuple[float, list]]:
    """(time, batch) per 0.1 s step, batches in the transport's (topic, payload, type) form."""
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=vehicles, seed=7, start=START)
    steps = []
    t = START
    while t < START + seconds:
        t = round(t + 0.1, 6)
        steps.append((t, [(topic, payload, None) for topic, payload in fleet.advance(t)]))
    return steps


def run_once(config: HubConfig, steps: list[tuple[float, list]], batch: int,
             journal_dir: str) -> tuple[float, float, int, int]:
    """(ingest CPU s, tick CPU s, messages, handovers) for one fresh hub over ``steps``."""
    clock = ManualClock(START)
    runtime = build_runtime(config, clock=clock)
    hub = runtime.hub
    ingest_s = tick_s = 0.0
    messages = 0
    next_tick = START + TICK_S
    gc.collect()
    for t, msgs in steps:
        for i in range(0, len(msgs), batch):
            chunk = msgs[i:i + batch]
            started = time.process_time()
            hub.ingest(chunk, t)
            ingest_s += time.process_time() - started
            messages += len(chunk)
        if t >= next_tick:
            started = time.process_time()
            hub.tick(t)
            tick_s += time.process_time() - started
            next_tick += TICK_S
    handovers = sum(hub.handovers.counts.values())
    assert hub.accepted == messages, (hub.accepted, messages)
    return ingest_s, tick_s, messages, handovers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=60.0, help="fleet time per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100, help="messages per Hub.ingest call")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or "default" not in names:
        ap.error(f"variants must include 'default' and be among {', '.join(VARIANTS)}")
    steps = fleet_messages(args.vehicles, args.seconds)
    tune_gc()  # as serve does
    total = sum(len(b) for _, b in steps)
    print(f"{args.vehicles} vehicles x {args.seconds:g} s: {total:,} messages, "
          f"{args.rounds} rounds, batches of {args.batch}")
    per_msg: dict[str, list[float]] = {n: [] for n in names}
    per_tick: dict[str, list[float]] = {n: [] for n in names}
    found: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                journal = str(Path(tmp) / f"{name}-{r}.sqlite")
                config = config_from_dict({**VARIANTS[name],
                                           "alerts": {"journal": journal}})
                ingest_s, tick_s, n, handovers = run_once(config, steps, args.batch, tmp)
                per_msg[name].append(ingest_s / n * 1e6)
                per_tick[name].append(tick_s / n * 1e6)
                found[name] = handovers
    base_msg = statistics.median(per_msg["default"])
    base_all = base_msg + statistics.median(per_tick["default"])
    print("| variant | ingest µs/msg | ticks µs/msg | total µs/msg | total / default "
          "| handovers found |")
    print("|---|---|---|---|---|---|")
    for name in names:
        m = statistics.median(per_msg[name])
        k = statistics.median(per_tick[name])
        print(f"| {name} | {m:.3f} | {k:.3f} | {m + k:.3f} | {(m + k) / base_all:.3f} "
              f"| {found[name]} |")
    print(f"(medians of {args.rounds}; ingest rounds: "
          + "; ".join(f"{n}: " + ", ".join(f"{v:.2f}" for v in per_msg[n]) for n in names)
          + ")")


if __name__ == "__main__":
    main()
