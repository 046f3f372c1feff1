"""Handover and intersection routes: the junction view of issue 5 (docs/handover.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query

from l4mon.api.deps import errors
from l4mon.api.json import JSON
from l4mon.runtime import Runtime
from telemetry.fleet import HandoverEntry

Kind = Literal["success", "failure", "ping_pong", "too_frequent"]
Name = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def entry_view(entry: HandoverEntry) -> dict[str, Any]:
    return {"vehicle": entry.vehicle, "link": entry.link, "intersection": entry.intersection,
            **msgspec.to_builtins(entry.record)}


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(viewer)], responses=errors(401, 429))
    hub = runtime.hub

    @router.get("/handovers")
    async def list_handovers(
        vehicle: Name = None,
        link: Name = None,
        intersection: Name = None,
        kind: Kind | None = None,
        since: Annotated[float | None, Query(ge=0.0, le=4_102_444_800.0)] = None,
        in_intersection: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> JSON:
        """Final handover records, newest first, with counts of all kept records by kind."""
        out = []
        for entry in reversed(hub.fleet.handovers):
            if since is not None and entry.record.at < since:
                break  # records are kept in the order they became final, roughly by time
            if (vehicle is not None and entry.vehicle != vehicle) \
                    or (link is not None and entry.link != link) \
                    or (intersection is not None and entry.intersection != intersection) \
                    or (kind is not None and entry.record.kind != kind) \
                    or (in_intersection is not None
                        and (entry.intersection is not None) != in_intersection):
                continue
            out.append(entry_view(entry))
            if len(out) >= limit:
                break
        return JSON({"handovers": out, "counts": dict(sorted(hub.fleet.handover_counts.items())),
                     "kept": len(hub.fleet.handovers)})

    @router.get("/failovers")
    async def list_failovers(
        vehicle: Name = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> JSON:
        """Failover events (a link became unusable; until another carried the vehicle), newest
        first."""
        out = []
        for vid, event in reversed(hub.fleet.failovers):
            if vehicle is not None and vid != vehicle:
                continue
            out.append({"vehicle": vid, **msgspec.to_builtins(event)})
            if len(out) >= limit:
                break
        return JSON({"failovers": out})

    @router.get("/intersections")
    async def list_intersections() -> JSON:
        """Every intersection of the site with its KPIs per link and its V2I delivery."""
        snapshot = hub.intersections.snapshot(runtime.clock.now())
        return JSON([{"id": ix, **data} for ix, data in snapshot.items()])

    @router.get("/intersections/{intersection}", responses=errors(404))
    async def get_intersection(intersection: str) -> JSON:
        snapshot = hub.intersections.snapshot(runtime.clock.now())
        if intersection not in snapshot:
            raise HTTPException(status_code=404, detail=f"no intersection {intersection!r}")
        recent = [{"at": at, "vehicle": v, "link": link, "state": state}
                  for at, v, link, state, ix in reversed(hub.intersections.degradations)
                  if ix == intersection][:100]
        return JSON({"id": intersection, **snapshot[intersection], "degradations": recent})

    return router
