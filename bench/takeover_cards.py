"""Cards and clicks a takeover request costs the operator, against a real ``l4mon demo``.

Each of N shuttles asks for a takeover (the demo fault: a ``takeover_request`` event and the
minimal risk manoeuvre it starts). Counted: the alerts journaled, the cards the console would
show (an alert of no incident is a card; an incident is one), the acknowledgements it takes to
acknowledge them all, how long each request stood alone before its MRM joined it, and the
bytes the runbooks add to the console's snapshot (sent once per connection).

    PYTHONPATH=. .venv/bin/python bench/takeover_cards.py --vehicles 10
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time

import httpx

from l4mon.alerts.rules import load_rules, runbooks
from testing.demo import DemoProcess

RULES = ("takeover_requested", "mrm_active")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=10, choices=range(1, 51),
                        metavar="N (1-50)")
    args = parser.parse_args()
    n = args.vehicles
    demo = DemoProcess(vehicles=n, duration=60 + n)
    try:
        token = re.search(r"#token=(\S+)", demo.login_link()).group(1)  # type: ignore[union-attr]
        hub = httpx.Client(base_url=demo.base, headers={"Authorization": f"Bearer {token}"},
                           timeout=5)
        hub.post("/api/duty/on", json={}).raise_for_status()
        vehicles = [f"shuttle-{i:02d}" for i in range(1, n + 1)]
        for vehicle in vehicles:
            hub.post("/api/demo/faults", json={"kind": "takeover_request", "vehicle": vehicle,
                                               "link": None, "duration_s": 60}).raise_for_status()
            time.sleep(0.5)
        time.sleep(3.0)  # every MRM raised and judged
        alerts = [a for a in hub.get("/api/alerts", params={"state": "open",
                                                           "limit": 1000}).json()
                  if a["rule"] in RULES]
        cards = {a["incident"] if a["incident"] is not None else -a["id"] for a in alerts}
        alone_ms = []
        for a in alerts:
            if a["rule"] != "takeover_requested":
                continue
            history = hub.get(f"/api/alerts/{a['id']}").json()["history"]
            grouped = [t["at"] for t in history if t["kind"] == "grouped"]
            if grouped:
                alone_ms.append((grouped[0] - a["raised_at"]) * 1000)
        clicks = 0
        for card in sorted(cards):
            path = f"/api/incidents/{card}/ack" if card > 0 else f"/api/alerts/{-card}/ack"
            hub.post(path, json={"note": ""}).raise_for_status()
            clicks += 1
        after = [a for a in hub.get("/api/alerts", params={"state": "open",
                                                          "limit": 1000}).json()
                 if a["rule"] in RULES]
        print(f"takeover requests: {n}; alerts journaled: {len(alerts)}; cards: {len(cards)}; "
              f"acknowledgements: {clicks}; acknowledged: "
              f"{sum(a['state'] == 'acknowledged' for a in after)}/{len(after)}")
        if alone_ms:
            print(f"request alone before its MRM joined, ms: min {min(alone_ms):.0f} "
                  f"p50 {statistics.median(alone_ms):.0f} max {max(alone_ms):.0f} "
                  f"({len(alone_ms)} of {n} joined)")
        print(f"runbooks in the snapshot: {len(json.dumps(runbooks(load_rules())))} bytes, "
              "once per connection")
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
