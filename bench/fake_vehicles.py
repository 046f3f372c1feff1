"""A flood of made-up vehicle ids through a real ``l4mon serve`` and a real broker:
how many takeover-level alerts the fakes raise, whether a real new vehicle's takeover request
is raised within 1 s afterwards, and whether the fakes' alerts survive a restart.

Run: ``.venv/bin/python bench/fake_vehicles.py [--fakes 50000] [--register] [--tree TREE]``

Each fake sends one state message (QoS 0), as in the issue. Then, once the fakes have had
time to go stale (an unlearned stream is stale after 10 s), a vehicle nobody has heard before
(``real-1``) sends a takeover request (QoS 1); the time from its PUBACK to the alert in the
hub's API is measured. ``--register``: the hub runs with a site register naming only
``real-1`` (and a background vehicle). ``--tree``: run another source tree's hub (a baseline).
Every loop is bounded in count and time; network only on loopback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from l4mon.store.journal import open_journal
from telemetry.topics import event_topic, state_topic
from telemetry.wire import VehicleEvent, VehicleState
from testing.broker import Broker, free_port
from testing.hub import ROOT, launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher

SITE = "depot"
REAL, BACKGROUND = "real-1", "bg-1"
#: Time for the fakes judged at once to go stale (unlearned streams: 10 s) and be alerted.
SETTLE_S = 13.0
WAIT_ALERT_S = 10.0


def _state(seq: int) -> bytes:
    return msgspec.json.encode(VehicleState(ts=time.time(), seq=seq, lat=36.0, lon=136.0,
                                            speed_mps=0.0, heading_deg=0.0, mode="autonomous"))


def _fake_takeovers(journal: Path) -> tuple[int, int]:
    """(takeover-level alerts of fake vehicles ever raised, of them still open)."""
    j = open_journal(str(journal))
    try:
        fakes = [a for a in j.alerts(severity="takeover", limit=1_000_000)
                 if (a.vehicle or "").startswith("fake-")]
        return len(fakes), sum(a.is_open for a in fakes)
    finally:
        j.close()


def run(fakes: int, register: bool, tree: Path) -> dict[str, object]:
    with Broker() as broker, TemporaryDirectory() as tmp:
        work = Path(tmp)
        extra = ""
        if register:
            (work / "register.toml").write_text(
                f'[sites.{SITE}]\nvehicles = ["{REAL}", "{BACKGROUND}"]\n')
            extra = f'[register]\npath = "{work / "register.toml"}"\n'
        config = write_hub_config(work, extra=extra)
        journal = work / "journal.sqlite"
        hub = launch_hub(broker, config, work / "hub.log", free_port(), tree=tree)
        try:
            with Publisher(broker.host, broker.port, client_id="flood") as pub:
                started = time.monotonic()
                for i in range(fakes):
                    pub.publish(state_topic(SITE, f"fake-{i}"), _state(0))
                pub.flush()
                flood_s = time.monotonic() - started
                # A real vehicle keeps the site in view meanwhile (l4mon/site_watch.py).
                seq = 0
                deadline = time.monotonic() + SETTLE_S
                while time.monotonic() < deadline:
                    pub.publish(state_topic(SITE, BACKGROUND), _state(seq))
                    seq += 1
                    time.sleep(0.1)
                event = msgspec.json.encode(VehicleEvent(ts=time.time(),
                                                         kind="takeover_request", seq=0))
                pub.publish(event_topic(SITE, REAL), event, qos=1)
                pub.flush()
                acked = time.monotonic()
                latency = None
                while time.monotonic() - acked < WAIT_ALERT_S:
                    if hub.json("/api/alerts", vehicle=REAL, severity="takeover"):
                        latency = time.monotonic() - acked
                        break
                    time.sleep(0.01)
            metrics = {name: hub.metric(name) for name in (
                "l4mon_messages_received_total", "l4mon_vehicles_evicted_total",
                "l4mon_vehicles_newcomers", "l4mon_vehicles_on_probation")}
            quarantined = hub.get("/metrics").text
            rss = hub.rss_mb()
        finally:
            stop_hub(hub)
        raised, still_open = _fake_takeovers(journal)
        hub = launch_hub(broker, config, work / "hub.log", free_port(), tree=tree)
        try:
            reopened = sum(1 for a in hub.json("/api/alerts", state="open", limit=1_000)
                           if (a.get("vehicle") or "").startswith("fake-"))
        finally:
            stop_hub(hub)
        refused = {line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                   for line in quarantined.splitlines()
                   if line.startswith("l4mon_messages_quarantined_total{")
                   and not line.endswith(" 0.0")}
        return {"fakes": fakes, "register": register, "flood_s": round(flood_s, 2),
                "real_takeover_latency_s": None if latency is None else round(latency, 3),
                "fake_takeover_alerts_raised": raised, "fake_takeover_alerts_open": still_open,
                "fake_alerts_open_after_restart": reopened, "quarantined": refused,
                "hub_rss_mb": round(rss, 1), **metrics}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fakes", type=int, default=50_000)
    ap.add_argument("--register", action="store_true")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the source tree of the hub")
    args = ap.parse_args()
    if not 1 <= args.fakes <= 200_000:
        ap.error("--fakes must be 1..200000")
    print(msgspec.json.encode(run(args.fakes, args.register, args.tree)).decode())


if __name__ == "__main__":
    main()
