"""Handover and intersection routes: the junction view (docs/handover.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query

from handover.book import HandoverEntry
from l4mon.faces.api.deps import errors
from l4mon.faces.api.json import JSON
from l4mon.runtime import Runtime

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
        after_seq: Annotated[int | None, Query(ge=-1, le=2**62)] = None,
        before_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> JSON:
        """Final handover records, newest first, with counts of all records by kind.

        ``seq`` numbers records in the order they became final (not quite time order: a long
        failure becomes final after later handovers), so ``after_seq`` is the cursor a poller
        wants (with ``before_seq`` to page back); ``since`` filters by the record's own time."""
        out = []
        total = sum(hub.handovers.counts.values())
        for back, entry in enumerate(reversed(hub.handovers.kept)):
            seq = total - 1 - back
            if after_seq is not None and seq <= after_seq:
                break
            if before_seq is not None and seq >= before_seq:
                continue
            if since is not None and entry.record.at < since:
                continue
            if (vehicle is not None and entry.vehicle != vehicle) \
                    or (link is not None and entry.link != link) \
                    or (intersection is not None and entry.intersection != intersection) \
                    or (kind is not None and entry.record.kind != kind) \
                    or (in_intersection is not None
                        and (entry.intersection is not None) != in_intersection):
                continue
            out.append({"seq": seq, **entry_view(entry)})
            if len(out) >= limit:
                break
        return JSON({"handovers": out, "counts": dict(sorted(hub.handovers.counts.items())),
                     "kept": len(hub.handovers.kept), "last_seq": total - 1})

    @router.get("/failovers")
    async def list_failovers(
        vehicle: Name = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> JSON:
        """Failover events (a link became unusable; until another carried the vehicle), newest
        first."""
        out = []
        for vid, event in reversed(hub.handovers.failovers):
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
