"""The HTTP door: the token is checked, then the body is read, bounded, and only then does
FastAPI see the request.

FastAPI reads and parses a route's body *before* it runs the route's dependencies, so a token
check written as a dependency came after a stranger's gigabyte had been read and parsed. This
ASGI middleware runs first instead:

1. the token (``Authorization: Bearer``) is checked, with the failed-token limit
   (``authenticate``): a refusal (401, 429) is answered before a byte of the body is read;
2. a body larger than ``max_body_bytes`` is refused with 413: by its ``Content-Length``
   before reading, or, sent chunked, as soon as the bytes read pass the bound;
3. the body (at most ``max_body_bytes``) is handed to the application as read.

A request refused while its body is still coming is answered ``Connection: close``, so the
server drops the connection instead of reading (and discarding) the rest.

Public paths (``/healthz``, the console page and its static files) need no token and take no
body; a token given to one is still checked (``/healthz`` shows more to a token holder).
WebSocket handshakes go through untouched: the ``/ws`` route checks its own token.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from l4mon.auth import Principal
from l4mon.faces.api.deps import PRINCIPAL, bearer
from l4mon.faces.api.json import JSON

#: Checks a presented token for an address: the principal, or HTTPException (401/429).
Check = Callable[[str | None, str], Principal]


def is_public(path: str) -> bool:
    """Paths anyone may GET: liveness, and the console page and assets (no fleet data)."""
    return path in ("/", "/healthz") or path.startswith("/static/")


class Gate:
    """Token first, then a bounded body; see the module docstring."""

    def __init__(self, app: ASGIApp, *, check: Check, max_body_bytes: int) -> None:
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be > 0")
        self.app = app
        self.check = check
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        has_body = bool(declared) or "transfer-encoding" in headers
        token = bearer(headers.get("authorization"))
        public = is_public(scope["path"])
        if token is not None or not public:
            client = scope["client"][0] if scope.get("client") else "unknown"
            try:
                scope[PRINCIPAL] = self.check(token, client)
            except HTTPException as denied:
                await _refuse(send, denied.status_code, str(denied.detail),
                              headers=denied.headers, close=has_body)
                return
        if not has_body:
            await self.app(scope, receive, send)
            return
        if public:
            await _refuse(send, 413, "this route takes no request body", close=True)
            return
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, self._too_large(), close=True)
            return
        body = await _read_bounded(receive, self.max_body_bytes)
        if body is None:
            await _refuse(send, 413, self._too_large(), close=True)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"


def _content_length(headers: Headers) -> int | None:
    """The declared body size; None when not declared (or not a number: the server framing
    the request has refused that already, so this is only defensive)."""
    value = headers.get("content-length")
    if value is None or not value.isascii() or not value.strip().isdigit():
        return None
    return int(value)


async def _read_bounded(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as more than ``limit`` bytes have come. A client gone
    mid-body gives what came; the application then sees the disconnect on its next read."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then whatever the server says next
    (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _refuse(send: Send, status: int, detail: str, *,
                  headers: dict[str, str] | None = None, close: bool) -> None:
    """FastAPI's shape for a refusal (``{"detail": ...}``); ``close`` ends the connection
    after it, so an unread body is never read."""
    extra = dict(headers or {})
    if close:
        extra["Connection"] = "close"
    response = JSON({"detail": detail}, status_code=status, headers=extra)
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
