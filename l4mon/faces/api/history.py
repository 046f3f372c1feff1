"""History routes: a vehicle's recent links (l4mon/history.py), for the console's charts, and
the alerts of every shift the journal holds, paged, for the console's History tab.

The charts' ten minutes live in memory; the alert history is read from the journal, so it
reaches back past any restart of the hub and past what a page saw since it was loaded.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from l4mon.faces.api.deps import errors
from l4mon.faces.api.json import JSON
from l4mon.records.alert import OPEN_STATES
from l4mon.runtime import Runtime

#: A page of the alert history: enough for a screen, small enough that paging back through a
#: month of a fleet's alerts never holds more than this in one answer.
PAGE_DEFAULT: Final = 50
PAGE_MAX: Final = 200


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

    @router.get("/history/alerts", responses=errors(503))
    async def alert_history(
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
        vehicle: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        severity: Literal["info", "warning", "takeover"] | None = None,
        state: Literal["open", "resolved"] | None = None,
    ) -> JSON:
        """Alerts as the journal keeps them, newest first, one page at a time: ``before``
        is the ``next_before`` of the previous page (None on the last page)."""
        journal = hub.store
        states = OPEN_STATES if state == "open" else (state,) if state else None
        # One more than asked tells whether an older page exists without a count query.
        found = journal.alerts(states=states, severity=severity, vehicle=vehicle,
                               before_id=before, limit=limit + 1)
        page = found[:limit]
        more = len(found) > limit
        return JSON({"alerts": [a.to_dict() for a in page],
                     "next_before": page[-1].id if more and page else None,
                     "limit": limit})

    return router
