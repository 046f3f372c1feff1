"""Read-only fleet routes: vehicles, RSUs, quarantine, the site plot's geometry."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query

from l4mon.api import views
from l4mon.api.json import JSON
from l4mon.hub import INTERNAL_ERROR
from l4mon.runtime import Runtime
from telemetry.decode import REASONS
from telemetry.fleet import CAPACITY, SITE_CONFLICT


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(viewer)])
    hub = runtime.hub

    @router.get("/vehicles")
    async def list_vehicles(site: Annotated[str | None, Query(max_length=64)] = None) -> JSON:
        return JSON(views.vehicles(hub.fleet, runtime.clock.now(), site=site))

    @router.get("/vehicles/{vehicle}")
    async def get_vehicle(vehicle: str) -> JSON:
        track = hub.fleet.vehicles.get(vehicle)
        if track is None:
            raise HTTPException(status_code=404, detail=f"no vehicle {vehicle!r}")
        return JSON(views.vehicle_detail(track, runtime.clock.now()))

    @router.get("/rsus")
    async def list_rsus() -> JSON:
        now = runtime.clock.now()
        return JSON([views.rsu_brief(r, now) for _, r in sorted(hub.fleet.rsus.items())])

    @router.get("/quarantine")
    async def get_quarantine(
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
        reason: Annotated[str | None, Query()] = None,
    ) -> JSON:
        if reason is not None and reason not in (*REASONS, CAPACITY, SITE_CONFLICT,
                                                 INTERNAL_ERROR):
            raise HTTPException(status_code=422, detail=f"unknown reason {reason!r}")
        return JSON(views.quarantine(hub.quarantine, limit=limit, reason=reason))

    @router.get("/site")
    async def get_site() -> JSON:
        site = runtime.site
        return JSON(None if site is None else msgspec.to_builtins(site))

    return router
