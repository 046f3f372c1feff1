"""The FastAPI application. Handlers are ``async`` on purpose: they then run on the hub's own
event loop and read its state between batches, never concurrently with ingest."""

from __future__ import annotations

from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from l4mon import __version__
from l4mon.alerts.standby import NotLeader
from l4mon.faces.api import (
    alerts,
    commands,
    demo,
    fleet,
    handovers,
    history,
    incidents,
    linkmap,
    reports,
)
from l4mon.faces.api.deps import (
    LEADER_HEADER,
    authenticate,
    bearer,
    caller,
    client_address,
    errors,
    not_leader,
    require,
)
from l4mon.faces.api.gate import Gate
from l4mon.faces.api.headers import SecurityHeaders
from l4mon.faces.api.json import JSON
from l4mon.faces.api.limits import FailureLimiter
from l4mon.faces.api.resume import parse_last_seq
from l4mon.faces.api.sessions import TokenSessions
from l4mon.metrics import HubCollector, exposition, make_registry
from l4mon.runtime import Runtime
from l4mon.seats import NoSeat
from l4mon.store.journal import JournalError
from l4mon.store.keeper import JournalUnavailable


class HubApp(FastAPI):
    """FastAPI whose every response, its own error pages included, carries the security
    headers: they wrap the whole stack, outside Starlette's error handling."""

    peers: tuple[str, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), peers=self.peers)


def create_app(runtime: Runtime) -> FastAPI:
    # The spec is served below behind a token like everything else; the Swagger/ReDoc pages
    # are off because they load their scripts from a CDN, which a hub must never depend on.
    app = HubApp(title="l4mon", version=__version__, default_response_class=JSON,
                 openapi_url=None, docs_url=None, redoc_url=None)
    app.peers = tuple(runtime.peers)
    hub = runtime.hub
    auth = hub.config.auth
    limiter = FailureLimiter(max_failures=auth.max_failures, window_s=auth.window_s,
                             max_clients=auth.max_tracked_clients, clock=runtime.clock.now)
    viewer = require("viewer")
    operator = require("operator")
    sessions = TokenSessions(runtime.tokens, runtime.clock.now,
                             spawn=runtime.broadcaster.spawn)
    registry = make_registry(HubCollector(hub, buffer=lambda: runtime.buffer,
                                          mqtt=lambda: runtime.mqtt,
                                          broadcaster=runtime.broadcaster,
                                          recorder=lambda: runtime.recorder,
                                          ha=lambda: runtime.ha,
                                          loop_lag=runtime.loop_lag))
    static = resources.files("ui").joinpath("static")
    # Token before body: the gate runs before FastAPI reads anything (l4mon/faces/api/gate.py).
    app.add_middleware(Gate, max_body_bytes=hub.config.http.max_body_bytes,
                       check=lambda token, client: authenticate(
                           runtime.tokens, limiter, token, client, runtime.clock.now()))
    origins = sorted({peer.rstrip("/") for peer in runtime.peers})
    if origins:
        # Added after the gate, so outside it: a preflight (which carries no token) is
        # answered here, and a refusal from the gate still carries the CORS headers.
        # A console loaded from one hub of a pair calls the other when it leads: those
        # origins, and no others, may read the API from a page (the token still decides).
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=[LEADER_HEADER], max_age=600)

    _refusals(app, runtime)

    _health(app, runtime)

    @app.get("/openapi.json", dependencies=[Depends(viewer)], include_in_schema=False)
    async def openapi() -> JSON:
        return JSON(app.openapi())

    @app.get("/metrics", dependencies=[Depends(viewer)], response_class=Response,
             responses={**errors(401, 429), 200: {"content": {"text/plain": {}},
                                                  "description": "Prometheus text format"}})
    async def metrics() -> Response:
        return Response(exposition(registry), media_type="text/plain; version=0.0.4")

    app.include_router(fleet.routes(runtime, viewer))
    app.include_router(history.routes(runtime, viewer))
    app.include_router(handovers.routes(runtime, viewer))
    app.include_router(linkmap.routes(runtime, viewer))
    app.include_router(alerts.routes(runtime, viewer, operator))
    app.include_router(incidents.routes(runtime, viewer, operator))
    app.include_router(demo.routes(runtime, viewer, operator))
    app.include_router(commands.routes(runtime, viewer, operator))
    app.include_router(reports.routes(runtime, viewer))

    _console_socket(app, runtime, limiter, sessions)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _refusals(app: HubApp, runtime: Runtime) -> None:
    """How the engine's and the journal's refusals are answered, whatever the route."""
    hub = runtime.hub

    @app.exception_handler(NotLeader)
    async def refused(request: Request, error: NotLeader) -> JSON:
        """The engine's own refusal, should the role change between the route's check and
        the action (a fenced leader): the same answer as the check."""
        denied = not_leader(runtime)
        return JSON({"detail": denied.detail}, status_code=503, headers=denied.headers)

    @app.exception_handler(JournalError)
    @app.exception_handler(JournalUnavailable)
    async def journal_down(request: Request, error: Exception) -> JSON:
        """The journal does not answer (a database restarting, a connection cut, a full
        disk): 503 naming the cause, never a 500. Reads and actions work again once it is
        back; the hub reconnects by itself."""
        keeper = hub.alerts.keeper
        why = keeper.why() if not keeper.ok \
            else f"the alert journal is unavailable ({error})"
        return JSON({"detail": f"{why}; retry shortly"}, status_code=503,
                    headers={"Retry-After": "2"})


def _health(app: HubApp, runtime: Runtime) -> None:
    """``/healthz``: for load balancers without a token, for people with one."""
    hub = runtime.hub

    @app.get("/healthz")
    async def healthz(request: Request) -> JSON:
        """Liveness for load balancers and people. Without a token: ok or degraded, and the
        hub's role (a console finds a pair's leader by it); with any token: the detail
        (versions, counts, the broker's last error) a stranger has no business reading."""
        now = runtime.clock.now()
        mqtt = runtime.mqtt
        alerts = hub.alerts
        journal_ok = alerts.keeper.ok
        unseen = len(hub.feed.unseen())  # sites the hub cannot see (l4mon/site_watch.py)
        healthy = (mqtt is None or mqtt.connected) and journal_ok and not unseen
        ha = runtime.ha_view()
        if ha["role"] == "fenced":
            healthy = False
        if caller(request) is None:
            return JSON({"status": "ok" if healthy else "degraded", "role": ha["role"]})
        return JSON({
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            # single (no pair), leader, standby or fenced (l4mon/leadership.py); consoles
            # move to the hub whose role is leader (or single)
            "role": ha["role"],
            "leader_since": ha["leader_since"],
            "ha": None if runtime.ha is None else {
                k: v for k, v in runtime.ha.view().items() if k != "self"},
            "uptime_s": round(now - runtime.started_at, 3),
            "ingest": {
                "received": hub.received, "accepted": hub.accepted,
                "duplicates": hub.duplicates, "quarantined": hub.quarantine.total,
                "last_batch_age_s": None if hub.last_batch_at is None
                else round(now - hub.last_batch_at, 3),
            },
            "mqtt": None if mqtt is None else {
                "connected": mqtt.connected, "connects": mqtt.connects,
                "disconnects": mqtt.disconnects, "last_error": mqtt.last_error,
                # Which client, whether its fast path passed its self-check, and per ingest
                # path whether a QoS 1 event is acknowledged only once processed (and if not,
                # why): docs/operations.md, "The MQTT client".
                "client": None if mqtt.client is None else " ".join(mqtt.client),
                "lean_path": mqtt.lean_path, "lean_path_reason": mqtt.lean_path_reason,
                "ack_after_processing": dict(mqtt.ack_after_processing),
                "ack_after_processing_reasons": dict(mqtt.ack_reasons),
            },
            "journal": {"ok": journal_ok,
                        "failures": alerts.journal_failures,
                        "kept": alerts.keeper.queued,
                        "acks_held": 0 if runtime.buffer is None else runtime.buffer.held},
            "vehicles": len(hub.fleet.vehicles),
            "sites_unseen": unseen,
            # which link map the look-ahead uses (docs/linkmap.md), None: none; no path
            # here, since this answer needs no token
            "linkmap": None if hub.lookahead is None else {
                "fingerprint": hub.lookahead.fingerprint,
                "rows": len(hub.lookahead.linkmap.rows),
                "drives": len(hub.lookahead.linkmap.drives)},
        })


def _console_socket(app: HubApp, runtime: Runtime, limiter: FailureLimiter,
                    sessions: TokenSessions) -> None:
    """``/ws``: the console stream, for a token with a seat, closed when the token stops
    holding."""

    @app.websocket("/ws")
    async def live(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token") \
            or bearer(websocket.headers.get("authorization"))
        try:
            who = authenticate(runtime.tokens, limiter, token, client_address(websocket),
                               runtime.clock.now())
            last_seq = parse_last_seq(websocket.query_params.get("last_seq"))
            seat = runtime.broadcaster.seats.take(who.name)
        except (HTTPException, NoSeat) as denied:
            status, detail, headers = (denied.status_code, denied.detail, denied.headers) \
                if isinstance(denied, HTTPException) else (denied.status, denied.detail,
                                                           {"Retry-After": "5"})
            await websocket.send_denial_response(
                JSON({"detail": detail}, status_code=status, headers=headers))
            return
        with seat:
            await websocket.accept()
            # Closed by the hub if the token is revoked or expires meanwhile (sessions.py).
            await sessions.hold(who, websocket, runtime.broadcaster.serve(
                websocket, snapshot=runtime.snapshot, missed=runtime.missed,
                last_seq=last_seq))
