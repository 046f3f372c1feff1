"""A vehicle's recent history (l4mon/history.py), for the console's charts: the last ten
minutes of each link, and the lines the charts draw them against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from l4mon.api.deps import errors
from l4mon.api.json import JSON
from l4mon.runtime import Runtime


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(viewer)], responses=errors(401, 429))
    hub = runtime.hub

    @router.get("/vehicles/{vehicle}/history", responses=errors(404))
    async def vehicle_history(vehicle: str) -> JSON:
        """Per link, one point a second for the last 10 minutes: t, rtt_p95_ms, ul_kbps,
        state (columns, oldest first); with the vehicle's uplink requirement and the RTT
        thresholds of the link verdicts."""
        if vehicle not in hub.fleet.vehicles:
            raise HTTPException(status_code=404, detail=f"no vehicle {vehicle!r}")
        body = runtime.history.view(vehicle, runtime.clock.now())
        links = hub.config.links
        body["ul_required_kbps"] = hub.config.requirements.ul_requirement(vehicle)
        body["thresholds"] = {"rtt_p95_ms": {"degraded": links.degraded.rtt_p95_ms,
                                             "down": links.down.rtt_p95_ms}}
        return JSON(body)

    return router
