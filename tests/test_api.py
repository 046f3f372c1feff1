"""The HTTP API in-process (ASGI), on a hub fed directly: shapes, validation, status codes."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.hub import Hub
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from telemetry.topics import link_topic, rsu_topic, state_topic
from telemetry.wire import LinkSample, RsuStatus, VehicleState
from testing.asgi import request

NOW = 1_700_000_000.0
TOKEN = "api-test-token"


@pytest.fixture
def runtime() -> Runtime:
    clock = ManualClock(NOW)
    hub = Hub(store=open_journal(":memory:"))
    batch = []
    for seq in range(50):
        ts = NOW - 5 + seq * 0.1
        batch.append((state_topic("s", "veh-1"), msgspec.json.encode(VehicleState(
            ts=ts, seq=seq, lat=36.06, lon=136.34, speed_mps=6.0, heading_deg=10.0,
            mode="autonomous")), None))
        batch.append((link_topic("s", "veh-1", "l5g"), msgspec.json.encode(LinkSample(
            ts=ts, seq=seq, rat="nr", cell_id="c1", rsrp_dbm=-80.0, rtt_ms=20.0 + seq % 5)),
            None))
    batch.append((rsu_topic("s", "rsu-1"), msgspec.json.encode(RsuStatus(
        ts=NOW, seq=0, intersection="ix-1", tx_msgs=100)), None))
    batch.append(("l4mon/v1/s/vehicle/veh-1/link/l5g", b"not json", None))
    hub.ingest(batch, NOW)
    hub.tick(NOW)
    return Runtime(hub=hub, clock=clock, tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))


def _get(runtime: Runtime, path: str, *, token: str | None = TOKEN,
         **params: object) -> httpx.Response:
    return request(runtime, "GET", path, token=token, params=params)


@pytest.mark.parametrize("path", ["/api/vehicles", "/api/vehicles/veh-1", "/api/rsus",
                                  "/api/quarantine", "/api/site", "/api/alerts", "/api/duty",
                                  "/api/me", "/metrics"])
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_no_token_no_data(runtime: Runtime, path: str, token: str | None) -> None:
    """Without a valid token every data endpoint answers 401, never fleet data."""
    response = _get(runtime, path, token=token)
    assert response.status_code == 401
    assert "veh-1" not in response.text


def test_healthz_needs_no_token_and_shows_no_fleet(runtime: Runtime) -> None:
    """Liveness is public but carries counts only."""
    response = _get(runtime, "/healthz", token=None)
    assert response.status_code == 200
    assert "veh-1" not in response.text
    assert response.json()["role"] == "single"  # no hub pair: this hub always decides


def test_vehicle_list_and_detail(runtime: Runtime) -> None:
    """The list is brief; the detail carries both windows and the sequence counters."""
    listed = _get(runtime, "/api/vehicles").json()
    assert [v["id"] for v in listed] == ["veh-1"]
    assert listed[0]["links"]["l5g"]["state"] == "ok"
    assert "windows" not in listed[0]["links"]["l5g"]
    detail = _get(runtime, "/api/vehicles/veh-1").json()
    link = detail["links"]["l5g"]
    assert set(link["windows"]) == {"10s", "60s"}
    assert link["windows"]["60s"]["samples"] == 50
    assert link["sequence"]["received"] == 50
    assert link["windows"]["60s"]["rtt_p50_ms"] == 22.0


def test_unknown_vehicle_is_404(runtime: Runtime) -> None:
    """Asking for a vehicle the hub has never heard of is a 404 with the id in the message."""
    response = _get(runtime, "/api/vehicles/nobody")
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 5000}, {"limit": "x"},
                                    {"reason": "no_such_reason"}])
def test_quarantine_rejects_bad_queries(runtime: Runtime, params: dict) -> None:
    """Bad query parameters are 422, never a 500."""
    assert _get(runtime, "/api/quarantine", **params).status_code == 422


def test_quarantine_lists_the_bad_message(runtime: Runtime) -> None:
    """The malformed payload is kept raw with its reason."""
    body = _get(runtime, "/api/quarantine", reason="malformed").json()
    assert body["counts"] == {"malformed": 1}
    assert body["items"][0]["payload_text"] == "not json"


def test_rsus_and_metrics(runtime: Runtime) -> None:
    """RSUs are listed; /metrics is Prometheus text with no vehicle ids in it."""
    assert _get(runtime, "/api/rsus").json()[0]["tx_msgs"] == 100
    text = _get(runtime, "/metrics").text
    assert "l4mon_messages_accepted_total 101.0" in text
    assert 'l4mon_links{state="ok"} 1.0' in text
    assert "veh-1" not in text


def test_demo_routes_are_404_outside_the_demo(runtime: Runtime) -> None:
    """A hub that is not a demo has no fault injection."""
    assert _get(runtime, "/api/demo").status_code == 404
