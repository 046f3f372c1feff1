"""Read-only fleet routes: vehicles, RSUs, quarantine, the site plot's geometry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query

from l4mon import views
from l4mon.faces.api.deps import errors
from l4mon.faces.api.json import JSON
from l4mon.hub import INTERNAL_ERROR
from l4mon.runtime import Runtime
from telemetry.decode import REASONS
from telemetry.fleet import REASONS as FLEET_REASONS
from telemetry.vehicle import SERVICE_STATES

#: A vehicle's service, as ``GET /api/vehicles?service=`` filters by it.
ServiceState = Literal[SERVICE_STATES]  # type: ignore[valid-type]
#: Quarantine reasons a client may filter by: an enum in the spec, validated like any query.
Reason = Literal[(*REASONS, *FLEET_REASONS, INTERNAL_ERROR)]  # type: ignore[valid-type]


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(viewer)], responses=errors(401, 429))
    hub = runtime.hub

    @router.get("/vehicles")
    async def list_vehicles(site: Annotated[str | None, Query(max_length=64)] = None,
                            service: ServiceState | None = None) -> JSON:
        return JSON(views.vehicles(hub.fleet, runtime.clock.now(), site=site,
                                   unseen=hub.feed.unseen(), lookahead=hub.lookahead,
                                   service=service))

    @router.get("/service", responses=errors(503))
    async def service_log(
        vehicle: Annotated[str | None, Query(max_length=64)] = None,
        since: Annotated[float | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> JSON:
        """Vehicles entering and leaving service, and connections lost without a word (their
        MQTT wills), newest first, as the journal keeps them."""
        engine = hub.alerts
        if engine is None:
            raise HTTPException(status_code=503, detail="this hub runs no journal")
        return JSON(engine.journal.service_log(vehicle=vehicle, since=since, limit=limit))

    @router.get("/vehicles/{vehicle}", responses=errors(404))
    async def get_vehicle(vehicle: str) -> JSON:
        track = hub.fleet.vehicles.get(vehicle)
        if track is None:
            raise HTTPException(status_code=404, detail=f"no vehicle {vehicle!r}")
        return JSON(views.vehicle_detail(track, runtime.clock.now(), hub.feed.unseen(),
                                         hub.lookahead))

    @router.get("/rsus")
    async def list_rsus() -> JSON:
        now = runtime.clock.now()
        return JSON([views.rsu_brief(r, now) for _, r in sorted(hub.fleet.rsus.items())])

    @router.get("/quarantine")
    async def get_quarantine(
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
        reason: Reason | None = None,
    ) -> JSON:
        return JSON(views.quarantine(hub.quarantine, limit=limit, reason=reason))

    @router.get("/site")
    async def get_site() -> JSON:
        site = runtime.site
        return JSON(None if site is None else msgspec.to_builtins(site))

    return router
