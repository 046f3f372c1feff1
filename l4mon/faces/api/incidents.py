"""Incident routes: several vehicles' alerts with one cause (l4mon/alerts/incidents.py), seen
and acknowledged as one. Thin calls into the engine, which journals each member's transition."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from l4mon.alerts.actions import AlertClosed, IncidentNotFound
from l4mon.alerts.engine import AlertEngine
from l4mon.alerts.incidents import Incident
from l4mon.auth import Principal
from l4mon.faces.api.alerts import AckBody
from l4mon.faces.api.deps import errors, leading
from l4mon.faces.api.json import JSON
from l4mon.runtime import Runtime

#: An incident's id is its first alert's id.
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def incident_view(incident: Incident, engine: AlertEngine) -> dict[str, Any]:
    """The incident with its member alerts (each with its runbook), open ones first."""
    members = sorted(incident.members.values(), key=lambda a: (not a.is_open, a.id))
    return {**incident.to_dict(), "alerts": [engine.view(a) for a in members]}


def routes(runtime: Runtime, viewer: Any, operator: Any) -> APIRouter:
    router = APIRouter(prefix="/api", responses=errors(401, 429))

    def engine() -> AlertEngine:
        return runtime.hub.alerts

    def find(incident_id: int) -> Incident:
        try:
            return engine().incident(incident_id)
        except IncidentNotFound:
            raise HTTPException(status_code=404, detail=f"no open or recent incident "
                                                        f"{incident_id}") from None

    @router.get("/incidents", dependencies=[Depends(viewer)], responses=errors(503))
    async def list_incidents() -> JSON:
        """Open incidents (newest first) and the last closed ones, with their groupings."""
        book = engine().incidents
        return JSON({
            "open": [incident_view(i, engine()) for i in sorted(book.open.values(),
                                                      key=lambda i: -i.opened_at)],
            "recent": [incident_view(i, engine()) for i in book.closed],
            "groups": [{"name": g.name, "title": g.title, "by": g.by, "rules": sorted(g.rules),
                        "window_s": g.window_s, "min_members": g.min_members,
                        "runbook": None if g.runbook is None else g.runbook.to_dict()}
                       for g in book.groups],
        })

    @router.get("/incidents/{incident_id}", dependencies=[Depends(viewer)],
                responses=errors(404, 503))
    async def get_incident(incident_id: IncidentId) -> JSON:
        return JSON(incident_view(find(incident_id), engine()))

    @router.post("/incidents/{incident_id}/ack", responses=errors(400, 413, 403, 404, 409, 503))
    async def acknowledge(incident_id: IncidentId, body: AckBody,
                          who: Principal = Depends(leading(runtime, operator))) -> JSON:
        """Acknowledge every member not yet acknowledged, each journaled as its own."""
        find(incident_id)
        try:
            incident = engine().acknowledge_incident(incident_id, who.name,
                                                     runtime.clock.now(), body.note)
        except AlertClosed as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return JSON(incident_view(incident, engine()))

    return router
