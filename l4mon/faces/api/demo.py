"""Demo-only routes: inject faults into the simulated fleet to see the whole alert cycle."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from l4mon.demo import DemoFleet
from l4mon.faces.api.deps import errors
from l4mon.faces.api.json import JSON
from l4mon.runtime import Runtime

FAULT_KINDS = ("link_down", "both_links_down", "telemetry_stall", "rtt_spike", "bandwidth_cap",
               "takeover_request", "clock_skew", "deaf_to_commands")


class FaultBody(BaseModel):
    kind: Literal["link_down", "both_links_down", "telemetry_stall", "rtt_spike",
                  "bandwidth_cap", "takeover_request", "clock_skew", "deaf_to_commands"]
    vehicle: Annotated[str, Field(min_length=1, max_length=64)]
    link: Literal["l5g", "lte"] | None = None
    duration_s: float = Field(30.0, gt=0, le=3_600)
    value: float | None = Field(None, ge=0, le=1e6)


class ServiceBody(BaseModel):
    vehicle: Annotated[str, Field(min_length=1, max_length=64)]
    in_service: bool
    reason: Annotated[str, Field(max_length=256)] | None = None


class CellOutageBody(BaseModel):
    cell: Annotated[str, Field(min_length=1, max_length=64)]
    duration_s: float = Field(30.0, gt=0, le=3_600)


def routes(runtime: Runtime, viewer: Any, operator: Any) -> APIRouter:
    router = APIRouter(prefix="/api/demo", responses=errors(401, 404, 429))

    def fleet() -> DemoFleet:
        if runtime.demo is None:
            raise HTTPException(status_code=404, detail="not a demo hub")
        return runtime.demo

    @router.get("", dependencies=[Depends(viewer)])
    async def demo() -> JSON:
        sim = fleet()
        return JSON({"faults": list(FAULT_KINDS), "vehicles": sim.vehicle_ids,
                     "cells": sim.cell_ids})

    @router.post("/faults", dependencies=[Depends(operator)], responses=errors(400, 413, 403))
    async def inject(body: FaultBody) -> JSON:
        sim = fleet()
        if body.vehicle not in sim.vehicle_ids:
            raise HTTPException(status_code=404, detail=f"no simulated vehicle {body.vehicle!r}")
        try:
            sim.inject_fault(kind=body.kind, vehicle=body.vehicle, link=body.link,
                             start=runtime.clock.now(), duration=body.duration_s,
                             value=body.value)
        except ValueError as error:  # e.g. a link given for a whole-vehicle fault
            raise HTTPException(status_code=422, detail=str(error)) from None
        return JSON({"ok": True})

    @router.post("/service", dependencies=[Depends(operator)], responses=errors(400, 413, 403))
    async def service(body: ServiceBody) -> JSON:
        """A simulated shuttle ends its shift (says so, then powers off) or starts one."""
        sim = fleet()
        if body.vehicle not in sim.vehicle_ids:
            raise HTTPException(status_code=404, detail=f"no simulated vehicle {body.vehicle!r}")
        sim.set_service(body.vehicle, in_service=body.in_service, reason=body.reason)
        return JSON({"ok": True})

    @router.post("/cell-outage", dependencies=[Depends(operator)], responses=errors(400, 413, 403))
    async def cell_outage(body: CellOutageBody) -> JSON:
        """A cell goes dark: every simulated modem it serves loses service (an incident)."""
        sim = fleet()
        if body.cell not in sim.cell_ids:
            raise HTTPException(status_code=404, detail=f"no simulated cell {body.cell!r}")
        sim.cell_outage(body.cell, runtime.clock.now(), body.duration_s)
        return JSON({"ok": True})

    return router
