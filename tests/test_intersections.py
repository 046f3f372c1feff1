"""Handovers and link health per intersection, V2I delivery, and the alert rules on them.

Everything goes through the real Hub (ingest of JSON on v1 topics, ticks every 0.25 s) with a
small site: junction "ix-a" is a 30 m circle at (36.0, 136.0); "ix-b" a polygon further north.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from handover.intersections import IntersectionBook, Zones
from l4mon.alerts.rules import load_rules
from l4mon.config import config_from_dict
from l4mon.hub import Hub
from l4mon.store.journal import SqliteJournal
from telemetry.site import Intersection, LocalFrame, Site, parse_site
from telemetry.topics import link_topic, rsu_topic, state_topic

T0 = 1_700_000_000.0
SITE = "s"
IN_A = (36.0, 136.0)
OUTSIDE = (36.01, 136.01)  # ~1.4 km away from both
IN_B = (36.0031, 136.0)


def site() -> Site:
    return parse_site({
        "name": SITE, "origin": {"lat": 36.0, "lon": 136.0},
        "intersections": [
            {"id": "ix-a", "name": "Alpha junction", "lat": 36.0, "lon": 136.0,
             "radius_m": 30.0},
            {"id": "ix-b", "name": "Bravo junction",
             "polygon": [[36.0030, 135.9997], [36.0030, 136.0003], [36.0032, 136.0003],
                         [36.0032, 135.9997]]},
        ],
    })


class Drive:
    """One vehicle with links ``l5g`` and ``lte``, 10 Hz, through a Hub ticking every 0.25 s."""

    def __init__(self, hub: Hub, vehicle: str = "v1") -> None:
        self.hub = hub
        self.vehicle = vehicle
        self.t = 0.0
        self.seq: dict[str, int] = {}
        self.next_tick = T0 + 0.25
        self.v2i_rx = 0
        self.rsu_tx = 0
        self.rsu_seq = 0

    def _next(self, stream: str) -> int:
        self.seq[stream] = self.seq.get(stream, -1) + 1
        return self.seq[stream]

    def run(self, seconds: float, *, at: tuple[float, float] = OUTSIDE,
            cells: dict[str, str | None] | None = None, rtt: float | None = 20.0,
            rsrp: float = -90.0, sinr: float = 15.0, v2i_ratio: float | None = None,
            rsu_hz: float = 2.0) -> None:
        cells = {"l5g": "n1", "lte": "e1"} if cells is None else cells
        for _ in range(round(seconds * 10)):
            now = T0 + self.t
            while self.next_tick <= now:
                self.hub.tick(self.next_tick)
                self.next_tick += 0.25
            batch: list[tuple[str, bytes, None]] = []
            if v2i_ratio is not None:
                # The RSU broadcasts 10 msg/s and reports its count at rsu_hz; the vehicle
                # counts what it got (exactly v2i_ratio of it) in every state message.
                self.rsu_tx += 1
                self.v2i_rx = round(self.rsu_tx * v2i_ratio)
                if round(self.t * 10) % round(10 / rsu_hz) == 0:
                    self.rsu_seq += 1
                    batch.append((rsu_topic(SITE, "rsu-a"), json.dumps({
                        "ts": now, "seq": self.rsu_seq, "intersection": "ix-a",
                        "boot_id": "b1", "tx_msgs": self.rsu_tx}).encode(), None))
            state = {"ts": now, "seq": self._next("state"), "lat": at[0], "lon": at[1],
                     "speed_mps": 5.0, "heading_deg": 0.0, "mode": "autonomous"}
            if v2i_ratio is not None:
                state["v2i_rx"] = {"rsu-a": self.v2i_rx}
            batch.append((state_topic(SITE, self.vehicle), json.dumps(state).encode(), None))
            for link, cell in cells.items():
                sample = {"ts": now, "seq": self._next(link), "rat": "nr" if link == "l5g"
                          else "lte", "cell_id": cell, "rsrp_dbm": rsrp, "sinr_db": sinr,
                          "rtt_ms": rtt}
                if cell is None:
                    sample["rat"] = "none"
                batch.append((link_topic(SITE, self.vehicle, link), json.dumps(sample).encode(),
                               None))
            self.hub.ingest(batch, now)
            self.t = round(self.t + 0.1, 6)

    def settle(self, seconds: float = 8.0) -> None:
        self.run(seconds, at=OUTSIDE, cells={"l5g": self.last("l5g"), "lte": self.last("lte")})

    def last(self, link: str) -> str | None:
        track = self.hub.fleet.vehicles[self.vehicle].links[link]
        return track.last.cell_id if track.last else None


def make_hub(tmp_path: Path | None = None, **config: object) -> Hub:
    cfg = config_from_dict({"alerts": {"journal": str(tmp_path / "j.sqlite")
                                       if tmp_path else ":memory:"}, **config})
    return Hub(store=SqliteJournal(cfg.alerts.journal), config=cfg, site=site(),
               rules=load_rules())


def kpis(hub: Hub, ix: str, link: str) -> dict:
    return hub.intersections.snapshot(T0 + 10_000)[ix]["links"][link]


# -- zones ---------------------------------------------------------------------------------------

def test_zones_circle_polygon_and_between() -> None:
    zones = Zones(site())
    assert zones.at(*IN_A) == "ix-a"
    assert zones.at(36.0 + 25 / 111_195, 136.0) == "ix-a"  # 25 m north: inside the 30 m circle
    assert zones.at(36.0 + 35 / 111_195, 136.0) is None  # 35 m north: outside
    assert zones.at(*IN_B) == "ix-b"
    assert zones.at(36.0033, 136.0) is None  # just north of the polygon
    assert zones.at(*OUTSIDE) is None
    assert zones.at(None, None) is None
    assert not Zones(None) and Zones(site())


def _shapes() -> Site:
    """Circles (one far north, where a degree of longitude is short) and polygons (a concave
    one, with vertices sharing a latitude: the ray-casting edge cases)."""
    return parse_site({
        "name": SITE, "origin": {"lat": 36.0, "lon": 136.0},
        "intersections": [
            {"id": "circle", "name": "C", "lat": 36.0, "lon": 136.0, "radius_m": 30.0},
            {"id": "north", "name": "N", "lat": 78.2, "lon": 15.6, "radius_m": 250.0},
            {"id": "square", "name": "S",
             "polygon": [[36.0030, 135.9997], [36.0030, 136.0003], [36.0032, 136.0003],
                         [36.0032, 135.9997]]},
            {"id": "ell", "name": "L",  # an L: concave, a notch cut out of its north-east
             "polygon": [[36.0040, 135.9990], [36.0040, 136.0010], [36.0045, 136.0010],
                         [36.0045, 136.0000], [36.0050, 136.0000], [36.0050, 135.9990]]},
        ],
    })


def _around(ix: Intersection, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points over twice the zone's extent, plus its vertices, points on its edges'
    latitudes, its centre, and NaN."""
    if ix.polygon is not None:
        lats = np.array([p[0] for p in ix.polygon])
        lons = np.array([p[1] for p in ix.polygon])
        lat0, lon0 = lats.mean(), lons.mean()
        half_lat, half_lon = np.ptp(lats), np.ptp(lons)
        extra_lat = np.r_[lats, rng.choice(lats, 200)]
        extra_lon = np.r_[lons, rng.uniform(lon0 - half_lon, lon0 + half_lon, 200)]
    else:
        assert ix.lat is not None and ix.lon is not None and ix.radius_m is not None
        lat0, lon0 = ix.lat, ix.lon
        half_lat = 2 * ix.radius_m / 111_195
        half_lon = half_lat / np.cos(np.radians(ix.lat))
        # on the circle itself, to rounding
        frame = LocalFrame.at(lat0, lon0)
        edge = [frame.to_latlon(ix.radius_m * math.cos(a), ix.radius_m * math.sin(a))
                for a in rng.uniform(0, 2 * np.pi, 200)]
        extra_lat, extra_lon = np.array([p[0] for p in edge]), np.array([p[1] for p in edge])
    lat = np.r_[rng.uniform(lat0 - half_lat, lat0 + half_lat, n), extra_lat, lat0, np.nan, lat0]
    lon = np.r_[rng.uniform(lon0 - half_lon, lon0 + half_lon, n), extra_lon, lon0, lon0, np.nan]
    return lat, lon


@pytest.mark.parametrize("ix_id", ["circle", "north", "square", "ell"])
def test_contains_many_equals_the_scalar_test_on_random_points(ix_id: str) -> None:
    """The vectorised membership test (the report's scan) answers exactly as
    ``Intersection.contains`` (the site's definition), point by point, both shapes."""
    shapes = _shapes()
    zones = Zones(shapes)
    ix = shapes.intersection(ix_id)
    assert ix is not None
    lat, lon = _around(ix, np.random.default_rng(sum(map(ord, ix_id))), 20_000)
    got = zones.contains_many(ix_id, lat, lon)
    want = np.array([not (np.isnan(a) or np.isnan(b)) and ix.contains(a, b)
                     for a, b in zip(lat.tolist(), lon.tolist(), strict=True)])
    assert got.dtype == bool and got.shape == lat.shape
    assert np.array_equal(got, want)
    assert 0.1 < want[:20_000].mean() < 0.9  # the sample straddles the boundary
    assert zones.contains_many(ix_id, lat[:0], lon[:0]).shape == (0,)


def test_contains_many_knows_only_the_sites_intersections() -> None:
    zones = Zones(site())
    assert zones.covers("ix-a") and not zones.covers("ix-z") and not zones.covers(None)
    assert not Zones(None).covers("ix-a")
    with pytest.raises(KeyError):
        zones.contains_many("ix-z", np.array([36.0]), np.array([136.0]))
    assert zones.contains_many("ix-a", np.array([*IN_A[:1], OUTSIDE[0]]),
                               np.array([IN_A[1], OUTSIDE[1]])).tolist() == [True, False]


# -- handovers tagged and counted ------------------------------------------------------------------

def test_handover_inside_is_tagged_and_counted_outside_is_not() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE)
    drive.run(3, at=IN_A)
    drive.run(3, at=IN_A, cells={"l5g": "n2", "lte": "e1"})  # l5g hands over in ix-a
    drive.run(3, at=OUTSIDE, cells={"l5g": "n2", "lte": "e1"})
    drive.run(3, at=OUTSIDE, cells={"l5g": "n2", "lte": "e2"})  # lte hands over outside
    drive.settle()
    entries = list(hub.handovers.kept)
    assert [(e.link, e.intersection, e.record.kind) for e in entries] == [
        ("l5g", "ix-a", "success"), ("lte", None, "success")]
    l5g = kpis(hub, "ix-a", "l5g")
    assert (l5g["handovers"], l5g["success"], l5g["failures"], l5g["success_rate"]) == \
        (1, 1, 0, 1.0)
    assert l5g["interruption_p50_ms"] == entries[0].record.interruption_ms
    assert kpis(hub, "ix-a", "lte")["handovers"] == 0  # the lte change was outside


def test_ping_pong_and_failure_rates_and_percentiles_match_numpy() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    # Three ping-pongs on l5g (n1 → n2 → n1 within 0.5 s), then a failure: no service 2 s.
    for _ in range(3):
        drive.run(0.5, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
        drive.run(6, at=IN_A)
    drive.run(2, at=IN_A, cells={"l5g": None, "lte": "e1"})
    drive.run(6, at=IN_A, cells={"l5g": "n3", "lte": "e1"})
    drive.settle()
    records = [e.record for e in hub.handovers.kept if e.link == "l5g"]
    assert all(e.intersection == "ix-a" for e in hub.handovers.kept)
    got = kpis(hub, "ix-a", "l5g")
    kinds = [r.kind for r in records]
    assert kinds.count("ping_pong") == 3 and kinds.count("failure") == 1
    changes = len(records) - 1
    assert got["handovers"] == changes and got["failures"] == 1
    assert got["ping_pong_rate"] == pytest.approx(3 / changes, abs=1e-4)
    assert got["success_rate"] == pytest.approx(kinds.count("success") / len(records), abs=1e-4)
    values = [r.interruption_ms for r in records]
    assert got["interruption_p50_ms"] == pytest.approx(np.percentile(values, 50))
    assert got["interruption_p95_ms"] == pytest.approx(np.percentile(values, 95))
    assert got["interruption_max_ms"] == max(values)
    assert max(values) >= 2000.0  # the outage


# -- time in zone, radio, degradations -------------------------------------------------------------

def test_time_in_zone_degraded_and_down_and_weakest_radio() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE, rsrp=-109.0)  # weaker radio outside must not count
    drive.run(10, at=IN_A, rsrp=-95.0, sinr=12.0)
    drive.run(10, at=IN_A, rtt=400.0, rsrp=-101.0, sinr=4.0)  # RTT p95 > 150: degraded
    drive.run(5, at=OUTSIDE)
    lte = kpis(hub, "ix-a", "lte")
    # 20 s in the zone, give or take a tick at each edge.
    assert lte["time_in_zone_s"] == pytest.approx(20.0, abs=0.5)
    # Degraded after the 1 s hold once the window's p95 crosses 150 ms (a few samples in).
    assert 7.0 <= lte["time_degraded_s"] <= 9.5
    assert lte["time_down_s"] == 0.0
    assert lte["degradations"] == 1
    assert (lte["min_rsrp_dbm"], lte["min_sinr_db"]) == (-101.0, 4.0)
    assert sorted(d[1:] for d in hub.intersections.degradations) == [
        ("v1", "l5g", "degraded", "ix-a"), ("v1", "lte", "degraded", "ix-a")]


# -- V2I ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [1.0, 0.8, 0.5])
def test_v2i_delivery_ratio_and_age_of_information(ratio: float) -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE, v2i_ratio=ratio)  # outside: not counted
    drive.run(20, at=IN_A, v2i_ratio=ratio)
    drive.run(5, at=OUTSIDE, v2i_ratio=ratio)
    v2i = hub.intersections.snapshot(T0 + 30)["ix-a"]["v2i"]
    assert v2i["delivery_ratio"] == pytest.approx(ratio, abs=0.02)
    # ~20 s in the zone at 10 msg/s, minus the first tick that only sets the marks.
    assert 180 <= v2i["expected"] <= 200
    # RSU reports every 0.5 s: the newest status is at most that old (+ a tick) at a tick.
    assert 0.0 <= v2i["aoi_p50_s"] <= 0.5 and v2i["aoi_max_s"] <= 0.76


def test_v2i_rsu_reboot_rebases_instead_of_counting_a_negative_delta() -> None:
    book = IntersectionBook(site())
    book._note_tx("r", _Status(ts=1.0, tx=1000, boot="a"))
    book._note_tx("r", _Status(ts=2.0, tx=1010, boot="a"))
    book._count_v2i("v", "ix-a", "r", 2.0, 500)
    book._note_tx("r", _Status(ts=3.0, tx=5, boot="b"))  # rebooted: counter from 0
    book._note_tx("r", _Status(ts=4.0, tx=15, boot="b"))
    book._count_v2i("v", "ix-a", "r", 4.0, 509)  # boot changed: marks re-based, nothing counted
    book._count_v2i("v", "ix-a", "r", 4.0, 509)
    assert book.v2i.get("ix-a") is None or book.v2i["ix-a"].expected == 0


class _Status:
    def __init__(self, *, ts: float, tx: int, boot: str) -> None:
        self.ts = ts
        self.tx_msgs = tx
        self.boot_id = boot


# -- alert rules -------------------------------------------------------------------------------

def test_failure_inside_an_intersection_raises_a_takeover_alert_naming_it() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    drive.run(2, at=IN_A, cells={"l5g": None, "lte": "e1"})
    drive.run(7, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
    alerts = [a for a in hub.alerts.open.values()  # type: ignore[union-attr]
              if a.rule == "handover_failure_in_intersection"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.severity, alert.vehicle, alert.link, alert.intersection) == \
        ("takeover", "v1", "l5g", "ix-a")
    assert "Alpha junction" in alert.detail and "failure" in alert.detail


def test_the_same_failure_outside_any_intersection_raises_no_handover_alert() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE)
    drive.run(2, at=OUTSIDE, cells={"l5g": None, "lte": "e1"})
    drive.run(7, at=OUTSIDE, cells={"l5g": "n2", "lte": "e1"})
    assert [e.record.kind for e in hub.handovers.kept] == ["failure"]
    assert not [a for a in hub.alerts.journal.alerts(limit=100)  # type: ignore[union-attr]
                if a.rule == "handover_failure_in_intersection"]


def test_a_normal_handover_inside_raises_nothing() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    drive.run(7, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
    assert [e.record.kind for e in hub.handovers.kept] == ["success"]
    assert not hub.alerts.journal.alerts(limit=100)  # type: ignore[union-attr]


def test_repeated_ping_pong_at_one_intersection_warns_with_the_cells_then_clears() -> None:
    hub = make_hub(handover={"hotspot_window_s": 60.0})
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    for _ in range(2):
        drive.run(0.5, at=IN_A, cells={"l5g": "n1", "lte": "e2"})
        drive.run(6, at=IN_A)
    hot = [a for a in hub.alerts.open.values() if a.rule == "ping_pong_hotspot"]  # type: ignore[union-attr]
    assert not hot  # two are not "repeated" (threshold 3)
    drive.run(0.5, at=IN_A, cells={"l5g": "n1", "lte": "e2"})
    drive.run(6, at=IN_A)
    hot = [a for a in hub.alerts.open.values() if a.rule == "ping_pong_hotspot"]  # type: ignore[union-attr]
    assert len(hot) == 1
    alert = hot[0]
    assert (alert.severity, alert.vehicle, alert.intersection) == ("warning", None, "ix-a")
    assert "Alpha junction" in alert.detail and "e1 ↔ e2" in alert.detail
    # The window (60 s) passes with no more ping-pong, then the 60 s clear hold.
    drive.run(130, at=OUTSIDE)
    assert alert.state == "resolved"


def test_intersection_alert_survives_a_restart_and_old_journals_gain_the_column(
        tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # a version-1 journal: no intersection column
    db.executescript("""
        CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL,
          title TEXT NOT NULL, severity TEXT NOT NULL, site TEXT, vehicle TEXT, link TEXT,
          rsu TEXT, state TEXT NOT NULL, raised_at REAL NOT NULL,
          detail TEXT NOT NULL DEFAULT '', escalated INTEGER NOT NULL DEFAULT 0,
          escalated_at REAL, acknowledged_at REAL, acknowledged_by TEXT, resolved_at REAL,
          resolved_by TEXT, resolve_reason TEXT, on_duty_at_raise TEXT NOT NULL DEFAULT '[]',
          flaps INTEGER NOT NULL DEFAULT 0, last_raised_at REAL);
        INSERT INTO alerts (rule, title, severity, vehicle, state, raised_at)
          VALUES ('telemetry_stale', 't', 'takeover', 'v9', 'raised', 1.0);
    """)
    db.close()
    journal = SqliteJournal(path)
    (old,) = journal.open_alerts()
    assert (old.vehicle, old.intersection) == ("v9", None)
    journal.close()
    hub = make_hub(tmp_path, alerts={"journal": str(path)})
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    for _ in range(3):
        drive.run(0.5, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
        drive.run(6, at=IN_A)
    raised = {a.rule: a for a in hub.alerts.open.values()}  # type: ignore[union-attr]
    assert raised["ping_pong_hotspot"].intersection == "ix-a"
    again = SqliteJournal(path)
    restored = {a.rule: a for a in again.open_alerts()}
    assert restored["ping_pong_hotspot"].intersection == "ix-a"
    assert restored["ping_pong_hotspot"].key == ("ping_pong_hotspot", "ix-a", None)


def test_an_outage_from_the_zone_edge_through_the_junction_is_the_junctions() -> None:
    """The link goes silent just before the zone and comes back inside: tagged ix-a."""
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE)
    drive.run(0.3, at=OUTSIDE, cells={"lte": "e1"})  # l5g silent from here...
    drive.run(2, at=IN_A, cells={"lte": "e1"})
    drive.run(7, at=IN_A)  # ...back inside the junction
    (entry,) = list(hub.handovers.kept)
    assert (entry.link, entry.record.kind, entry.intersection) == ("l5g", "failure", "ix-a")
    assert (entry.record.lat, entry.record.lon) == OUTSIDE
    assert (entry.record.end_lat, entry.record.end_lon) == IN_A


def test_ping_pong_rates_for_other_windows() -> None:
    """Returns after 0.5 s, 1.5 s and 4 s: a ping-pong at 1 s only for the first; the 2 s and
    5 s windows count the others too."""
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=IN_A)
    for away in (0.5, 1.5, 4.0):
        drive.run(away, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
        drive.run(8, at=IN_A)
    got = kpis(hub, "ix-a", "l5g")
    changes = got["handovers"]
    assert changes == 6 and got["ping_pong"] == 1
    assert got["ping_pong_rate_by_window"] == {
        "1s": round(1 / 6, 4), "2s": round(2 / 6, 4), "5s": round(3 / 6, 4)}
