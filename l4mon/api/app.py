"""The FastAPI application. Handlers are ``async`` on purpose: they then run on the hub's own
event loop and read its state between batches, never concurrently with ingest."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

import msgspec
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from l4mon import __version__
from l4mon.api import views
from l4mon.hub import INTERNAL_ERROR
from l4mon.metrics import HubCollector, exposition, make_registry
from l4mon.runtime import Runtime
from telemetry.decode import REASONS
from telemetry.fleet import CAPACITY, SITE_CONFLICT


class JSON(Response):
    """msgspec encodes our plain dicts several times faster than the stdlib."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="l4mon", version=__version__, default_response_class=JSON)
    hub = runtime.hub
    registry = make_registry(HubCollector(hub, buffer=lambda: runtime.buffer,
                                          mqtt=lambda: runtime.mqtt))
    console = resources.files("ui").joinpath("static/index.html")

    @app.get("/healthz")
    async def healthz() -> JSON:
        now = runtime.clock.now()
        mqtt = runtime.mqtt
        body = {
            "status": "ok" if mqtt is None or mqtt.connected else "degraded",
            "version": __version__,
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
            },
            "vehicles": len(hub.fleet.vehicles),
        }
        return JSON(body)

    @app.get("/api/vehicles")
    async def list_vehicles(site: Annotated[str | None, Query(max_length=64)] = None) -> JSON:
        return JSON(views.vehicles(hub.fleet, runtime.clock.now(), site=site))

    @app.get("/api/vehicles/{vehicle}")
    async def get_vehicle(vehicle: str) -> JSON:
        track = hub.fleet.vehicles.get(vehicle)
        if track is None:
            raise HTTPException(status_code=404, detail=f"no vehicle {vehicle!r}")
        return JSON(views.vehicle_detail(track, runtime.clock.now()))

    @app.get("/api/rsus")
    async def list_rsus() -> JSON:
        now = runtime.clock.now()
        return JSON([views.rsu_brief(r, now) for _, r in sorted(hub.fleet.rsus.items())])

    @app.get("/api/quarantine")
    async def get_quarantine(
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
        reason: Annotated[str | None, Query()] = None,
    ) -> JSON:
        if reason is not None and reason not in (*REASONS, CAPACITY, SITE_CONFLICT, INTERNAL_ERROR):
            raise HTTPException(status_code=422, detail=f"unknown reason {reason!r}")
        return JSON(views.quarantine(hub.quarantine, limit=limit, reason=reason))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(exposition(registry), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(console.read_text(encoding="utf-8"))

    return app
