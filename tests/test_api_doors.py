"""The HTTP doors in-process, where the ASGI calls themselves show what was read: the body is
not touched before the token passes, public routes take no body, a pair's console may still
call its peer, and ``last_seq`` is validated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from l4mon.assembly import build_runtime
from l4mon.auth import hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.faces.api.resume import parse_last_seq
from l4mon.runtime import Runtime
from tests.test_security_api import ADMIN, NOW, _ws_handshake

PEER = "http://hub-b.depot.example:8080"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    config = config_from_dict({
        "alerts": {"journal": str(tmp_path / "journal.sqlite")},
        "auth": {"tokens": [{"name": "root", "role": "admin", "sha256": hash_token(ADMIN)}]},
        "ha": {"peers": ["http://hub-a.depot.example:8080", PEER]}})
    return build_runtime(config, clock=ManualClock(NOW))


async def _post_counting_reads(runtime: Runtime, headers: list[tuple[bytes, bytes]]
                               ) -> tuple[int, int]:
    """POST /api/alerts/1/ack straight through ASGI with a body the app must ask for: (the
    answer's status, how many times the app asked for body)."""
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/alerts/1/ack",
             "raw_path": b"/api/alerts/1/ack", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"hub"), (b"content-length", b"2"),
                         (b"content-type", b"application/json"), *headers],
             "client": ("10.1.1.1", 40_000), "server": ("hub", 80)}
    await create_app(runtime)(scope, receive, send)
    return sent[0]["status"], reads


def test_the_body_is_not_read_before_the_token_passes(runtime: Runtime) -> None:
    """FastAPI parses a body before it runs dependencies; the gate runs before FastAPI."""
    assert asyncio.run(_post_counting_reads(runtime, [])) == (401, 0)
    assert asyncio.run(_post_counting_reads(
        runtime, [(b"authorization", b"Bearer guess")])) == (401, 0)
    status, reads = asyncio.run(_post_counting_reads(
        runtime, [(b"authorization", f"Bearer {ADMIN}".encode())]))
    assert (status, reads) == (404, 1)  # read once, parsed, answered: no alert 1 here


def _call(runtime: Runtime, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return asyncio.run(call())


def test_public_routes_take_no_body(runtime: Runtime) -> None:
    assert _call(runtime, "GET", "/healthz", content=b"x" * 10).status_code == 413
    assert _call(runtime, "GET", "/healthz").status_code == 200


def test_a_pair_console_may_still_call_its_peer(runtime: Runtime) -> None:
    """The console page's policy lets it call the peers (HTTP and WebSocket) and nothing
    else; a preflight (no token) is still answered, and a refusal carries CORS headers."""
    page = _call(runtime, "GET", "/")
    policy = page.headers["content-security-policy"]
    assert f"connect-src 'self' http://hub-a.depot.example:8080 ws://hub-a.depot.example:8080 " \
           f"{PEER} ws://hub-b.depot.example:8080;" in policy
    preflight = _call(runtime, "OPTIONS", "/api/alerts/1/ack", headers={
        "Origin": PEER, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PEER
    refused = _call(runtime, "POST", "/api/alerts/1/ack", json={}, headers={"Origin": PEER})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == PEER
    assert refused.headers["x-frame-options"] == "DENY"


def test_last_seq_is_a_whole_number_or_the_handshake_is_refused(runtime: Runtime) -> None:
    """``/ws?last_seq=²`` was a 500 ("²".isdigit() is True, int() refuses it)."""
    app = create_app(runtime)
    for bad in ("²", "-1", "1.5", "9" * 30, "%EF%BC%91"):
        status, headers = asyncio.run(_ws_handshake(app, f"token={ADMIN}&last_seq={bad}",
                                                    client="10.2.2.2"))
        assert status == 400, bad
        assert headers["x-frame-options"] == "DENY"
    assert asyncio.run(_ws_handshake(app, f"token={ADMIN}&last_seq=12", client="10.2.2.2")
                       )[0] == 101
    assert parse_last_seq(None) is None and parse_last_seq("") is None
    assert parse_last_seq(str(2**63 - 1)) == 2**63 - 1
