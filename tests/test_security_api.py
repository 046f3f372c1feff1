"""The API under attack: property-based requests from its own OpenAPI spec (schemathesis), a
token on every route, and the failed-token limit on HTTP and the WebSocket handshake."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from starlette.routing import Mount, Route

from l4mon.assembly import build_runtime
from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.config import ConfigError, config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.faces.api.limits import FailureLimiter
from l4mon.hub import Hub
from l4mon.ingest.publisher import MqttPublisher
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from telemetry.topics import event_topic, link_topic, rsu_topic, state_topic
from telemetry.wire import LinkSample, RsuStatus, VehicleEvent, VehicleState

NOW = 1_700_000_000.0
ADMIN = "security-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
#: Routes that answer without a token, and why: liveness carries counts only (load balancers
#: have no token), and the console page and its static assets hold no data: the console asks
#: for a token before it calls anything.
PUBLIC = {"/healthz", "/", "/static"}
#: Examples per operation: enough to find the bugs it found here in ~10 s for the whole spec;
#: set L4MON_FUZZ_EXAMPLES=500 for a deeper hunt.
EXAMPLES = int(os.environ.get("L4MON_FUZZ_EXAMPLES", "30"))


def _runtime(journal: Path, **auth: object) -> Runtime:
    """A hub with a journal (so the alert routes are live), one vehicle, one RSU, an alert."""
    config = config_from_dict({
        "alerts": {"journal": str(journal)},
        "auth": {"tokens": [{"name": "root", "role": "admin", "sha256": hash_token(ADMIN)}],
                 **auth},
    })
    # Commands are live too: the hub's own publisher, with no broker behind it.
    runtime = build_runtime(config, clock=ManualClock(NOW), publisher=MqttPublisher())
    batch = []
    for seq in range(20):
        ts = NOW - 2 + seq * 0.1
        batch.append((state_topic("s", "veh-1"), msgspec.json.encode(VehicleState(
            ts=ts, seq=seq, lat=36.06, lon=136.34, speed_mps=6.0, heading_deg=10.0,
            mode="autonomous")), None))
        batch.append((link_topic("s", "veh-1", "l5g"), msgspec.json.encode(LinkSample(
            ts=ts, seq=seq, rat="nr", cell_id="c1", rsrp_dbm=-80.0, rtt_ms=20.0)), None))
    batch.append((event_topic("s", "veh-1"), msgspec.json.encode(VehicleEvent(
        ts=NOW, kind="takeover_request", seq=1)), None))
    batch.append((rsu_topic("s", "rsu-1"), msgspec.json.encode(RsuStatus(
        ts=NOW, seq=0, intersection="ix-1", tx_msgs=1)), None))
    batch.append(("l4mon/v1/s/vehicle/veh-1/state", b"{not json", None))
    runtime.hub.ingest(batch, NOW)
    runtime.hub.tick(NOW)
    return runtime


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    runtime = _runtime(tmp_path_factory.mktemp("security") / "journal.sqlite")
    assert runtime.hub.alerts is not None and runtime.hub.alerts.open, "fixture raises an alert"
    yield create_app(runtime)
    runtime.hub.alerts.journal.close()


def _spec_app() -> FastAPI:
    """An app on an empty hub, only to serve the spec (it does not depend on the hub's state)."""
    tokens = TokenStore([("root", "admin", hash_token(ADMIN))])
    hub = Hub(store=open_journal(":memory:"))
    return create_app(Runtime(hub=hub, clock=ManualClock(NOW), tokens=tokens))


#: A body the spec forbids may also be refused for its size (413, [http] max_body_bytes)
#: before it is parsed: a rejection like 400/422, so negative data may get it too.
_CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]}}})
#: Loaded once at import through the token-protected /openapi.json, as a client would.
schema = schemathesis.openapi.from_asgi("/openapi.json", _spec_app(), headers=AUTH,
                                        config=_CONFIG)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_spec(case: schemathesis.Case, app: FastAPI) -> None:
    """Generated requests with an admin token: never a 5xx, every answer as the spec says."""
    case.call_and_validate(headers=AUTH, app=app)


def _call(app: FastAPI, method: str, path: str, *, token: str | None = None,
          client: str = "127.0.0.1") -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40_000))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers=headers) as http:
            return await http.request(method, path, json={} if method == "POST" else None)
    return asyncio.run(call())


async def _ws_handshake(app: FastAPI, query: str, client: str) -> tuple[int, dict[str, str]]:
    """Drive the ASGI WebSocket handshake by hand: (HTTP status of a denial, its headers), or
    (101, {}) if the server accepted (then the connection is dropped at once)."""
    scope = {"type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "scheme": "ws", "path": "/ws", "raw_path": b"/ws", "root_path": "",
             "query_string": query.encode(), "headers": [], "client": (client, 40_000),
             "server": ("hub", 80), "subprotocols": [],
             "extensions": {"websocket.http.response": {}}}
    inbox = [{"type": "websocket.connect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent and sent[0]["type"] == "websocket.http.response.start":
        return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert sent and sent[0]["type"] == "websocket.accept", sent
    return 101, {}


def _flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(prefix, route) through included routers (FastAPI keeps those as wrapper objects)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes, prefix + route.include_context.prefix)
        else:
            yield prefix, route


def _routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the app has, path parameters filled in."""
    out = []
    for prefix, route in _flat(app.routes):
        if isinstance(route, (APIRoute, Route)):
            path = prefix + route.path.replace("{vehicle}", "veh-1").replace("{alert_id}", "1")
            out += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
        elif isinstance(route, (APIWebSocketRoute, Mount)):
            kind = "WS" if isinstance(route, APIWebSocketRoute) else "MOUNT"
            out.append((kind, prefix + route.path))
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r}")
    return out


def test_every_route_but_the_public_ones_needs_a_token(app: FastAPI) -> None:
    """Walks app.routes itself, so a route added later is covered without editing this test:
    each answers 401 without a token and with a wrong one; /ws refuses the handshake."""
    routes = _routes_of(app)
    checked = [(m, p) for m, p in routes if p not in PUBLIC]
    assert {("GET", "/metrics"), ("GET", "/openapi.json"), ("POST", "/api/alerts/1/ack"),
            ("POST", "/api/demo/faults"), ("WS", "/ws")} <= set(checked)
    assert {p for _, p in routes if p in PUBLIC} == PUBLIC  # the exceptions still exist
    for n, (method, path) in enumerate(checked):
        for token in (None, "wrong-token"):
            client = f"10.9.{n}.{token is None:d}"  # one address each: no failure limit here
            if method == "WS":
                query = "" if token is None else f"token={token}"
                status, _ = asyncio.run(_ws_handshake(app, query, client=client))
            else:
                response = _call(app, method, path, token=token, client=client)
                status = response.status_code
                assert "veh-1" not in response.text
            assert status == 401, (method, path, token)
    # Deliberately public: liveness counts, the console page and its assets (no fleet data).
    for path in ("/healthz", "/", "/static/console.js"):
        response = _call(app, "GET", path)
        assert response.status_code == 200 and "veh-1" not in response.text, path


def test_limiter_blocks_after_max_failures_for_the_rest_of_the_window() -> None:
    """Failures open a window at the first one; the limit holds until that window closes."""
    clock = ManualClock(NOW)
    limiter = FailureLimiter(max_failures=3, window_s=60.0, max_clients=100, clock=clock.now)
    for _ in range(2):
        limiter.failed("a")
    assert limiter.retry_after("a") is None  # 2 < 3: may still try
    clock.advance(10.0)
    limiter.failed("a")
    assert limiter.retry_after("a") == 50  # window opened at NOW: 50 s left
    assert limiter.retry_after("b") is None  # per address
    clock.advance(49.5)
    assert limiter.retry_after("a") == 1  # rounded up, never 0 while blocked
    clock.advance(0.5)
    assert limiter.retry_after("a") is None
    limiter.failed("a")  # a new window, counted from 1
    assert limiter.retry_after("a") is None


def test_limiter_table_is_bounded_and_drops_expired_windows_first() -> None:
    """A flood of addresses cannot grow the table; live windows outlast expired ones."""
    clock = ManualClock(NOW)
    limiter = FailureLimiter(max_failures=1, window_s=60.0, max_clients=3, clock=clock.now)
    limiter.failed("old")
    clock.advance(61.0)
    limiter.failed("x")
    limiter.failed("y")
    limiter.failed("z")  # full: "old" has expired and goes, x and y stay blocked
    assert len(limiter) == 3
    assert [limiter.retry_after(c) is not None for c in "xyz"] == [True, True, True]
    for n in range(1_000):
        limiter.failed(f"flood-{n}")
    assert len(limiter) == 3


def test_limiter_off_with_zero_and_rejects_nonsense() -> None:
    """max_failures = 0 turns it off; impossible settings fail at start, in config too."""
    limiter = FailureLimiter(max_failures=0, window_s=1.0, max_clients=1, clock=lambda: NOW)
    for _ in range(100):
        limiter.failed("a")
    assert limiter.retry_after("a") is None and len(limiter) == 0
    with pytest.raises(ValueError):
        FailureLimiter(max_failures=1, window_s=0.0, max_clients=1, clock=lambda: NOW)
    with pytest.raises(ConfigError, match="auth"):
        config_from_dict({"auth": {"window_s": -1.0}})


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[FastAPI, ManualClock]]:
    """An app whose limit is 3 failures per 60 s, on a clock the test moves."""
    runtime = _runtime(tmp_path / "journal.sqlite", max_failures=3, window_s=60.0)
    assert isinstance(runtime.clock, ManualClock)
    yield create_app(runtime), runtime.clock
    runtime.hub.alerts.journal.close()  # type: ignore[union-attr]


def test_too_many_bad_tokens_get_429_with_retry_after(
        limited: tuple[FastAPI, ManualClock]) -> None:
    """After 3 failures an address's bad tokens get 429 with Retry-After; others are
    unaffected; the block ends with the window."""
    app, clock = limited
    for _ in range(3):
        assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.66").status_code == 401
    blocked = _call(app, "GET", "/api/me", token="guess", client="10.0.0.66")
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "60"
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.7").status_code == 401
    clock.advance(45.0)
    assert _call(app, "GET", "/metrics", client="10.0.0.66").headers["retry-after"] == "15"
    clock.advance(15.0)
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.66").status_code == 401


def test_a_good_token_passes_from_a_blocked_address(
        limited: tuple[FastAPI, ManualClock]) -> None:
    """20 bad tokens from one address used to lock its operators out for 60 s. The
    token is checked first now: the operator's acknowledgement and reads pass while the same
    address's bad tokens are still answered 429."""
    app, _ = limited
    for _ in range(5):
        _call(app, "GET", "/api/me", token="guess", client="10.0.0.66")
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.66").status_code == 429
    me = _call(app, "GET", "/api/me", token=ADMIN, client="10.0.0.66")
    assert (me.status_code, me.json()["name"]) == (200, "root")
    ack = _call(app, "POST", "/api/alerts/1/ack", token=ADMIN, client="10.0.0.66")
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert _call(app, "GET", "/api/me", client="10.0.0.66").status_code == 429


def test_good_tokens_are_never_counted(limited: tuple[FastAPI, ManualClock]) -> None:
    """Many requests with a valid token, interleaved with two failures, stay under the limit."""
    app, _ = limited
    for n in range(50):
        token = "typo" if n in (10, 40) else ADMIN
        status = _call(app, "GET", "/api/vehicles", token=token, client="10.0.0.8").status_code
        assert status == (401 if token == "typo" else 200)


def test_websocket_handshake_shares_the_limit(limited: tuple[FastAPI, ManualClock]) -> None:
    """Failed /ws handshakes count like HTTP failures, and a blocked address's bad tokens get
    429 there too, with Retry-After; a good token's handshake still passes."""
    app, clock = limited
    for query in ("", "token=guess"):
        assert asyncio.run(_ws_handshake(app, query, client="10.0.0.99"))[0] == 401
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.99").status_code == 401
    status, headers = asyncio.run(_ws_handshake(app, "token=guess", client="10.0.0.99"))
    assert (status, headers.get("retry-after")) == (429, "60")
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.99").status_code == 429
    assert asyncio.run(_ws_handshake(app, f"token={ADMIN}", client="10.0.0.99"))[0] == 101
    clock.advance(60.0)
    assert _call(app, "GET", "/api/me", token="guess", client="10.0.0.99").status_code == 401
