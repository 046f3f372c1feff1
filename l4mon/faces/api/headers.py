"""Security headers on every response the hub's application gives: pages, API, errors and
refused WebSocket handshakes alike.

The console loads only its own files (``ui/static``: no inline script or style, no CDN), so its
page may run scripts and styles from this origin only and call this hub and the pair's peers
(a console moves to whichever hub leads, l4mon/leadership.py), over HTTP and WebSocket. A report
(``/api/reports``) is one self-contained page whose only style is inline and whose charts are
inline SVG: it may load and call nothing. Anything else (JSON) is no document: it may load
nothing. No page may be framed (clickjacking an acknowledgement), nothing is MIME-sniffed, no
address leaks in a Referer, and nothing but the static assets is cached (alert and fleet data
and tokens' answers must not sit in a shared cache or the browser's disk).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"))
_NOTHING = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_REPORT = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")


def console_policy(peers: Iterable[str]) -> str:
    """The console page's Content-Security-Policy: its own files, and calls to this hub and
    to ``peers`` (each by HTTP and by WebSocket)."""
    origins = []
    for peer in sorted({p.rstrip("/") for p in peers}):
        origins += [peer, "ws" + peer.removeprefix("http")]
    connect = " ".join(["'self'", *origins])
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the headers to each response start; a header the route set itself is kept."""

    def __init__(self, app: ASGIApp, *, peers: Iterable[str] = ()) -> None:
        self.app = app
        self.console = console_policy(peers).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        policy = self.console if path == "/" else \
            _REPORT.encode() if path == "/api/reports" else _NOTHING.encode()
        extra = [*_ALWAYS, (b"content-security-policy", policy)]
        if not path.startswith("/static/"):
            extra.append((b"cache-control", b"no-store"))

        async def with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
