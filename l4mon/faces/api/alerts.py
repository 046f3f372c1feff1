"""Alert and duty routes: thin calls into the engine and the roster, which journal first.

The caller is a ``Depends`` default, not an ``Annotated`` hint: the dependency is a closure
made per app, which FastAPI cannot resolve from a postponed (string) annotation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, StrictBool

from l4mon.alerts.actions import AlertClosed, AlertNotFound, StillHolds
from l4mon.alerts.engine import AlertEngine
from l4mon.auth import Principal
from l4mon.faces.api.deps import errors, leading
from l4mon.faces.api.json import JSON
from l4mon.records.alert import OPEN_STATES
from l4mon.runtime import Runtime

#: Alert ids are SQLite integers: a larger number is no alert, not a 500 from the driver.
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class AckBody(BaseModel):
    note: str = Field("", max_length=500)


class ResolveBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")
    #: Resolve even though the condition still holds (it will be raised again at once).
    force: StrictBool = False


class DutyOnBody(BaseModel):
    #: Named vehicles (None: all). At most 200, so the longest list still fits the body
    #: bound ([http] max_body_bytes, 16 KiB); a wider shift is all vehicles.
    vehicles: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = \
        Field(None, max_length=200)


def routes(runtime: Runtime, viewer: Any, operator: Any) -> APIRouter:
    router = APIRouter(prefix="/api", responses=errors(401, 429))
    #: An operator, for actions that change alerts or duty: only where alerts are decided
    #: (not on a pair's standby).
    acting = leading(runtime, operator)

    def engine() -> AlertEngine:
        return runtime.hub.alerts

    @router.get("/me")
    async def me(who: Principal = Depends(viewer)) -> JSON:
        return JSON({"name": who.name, "role": who.role})

    @router.get("/alerts", dependencies=[Depends(viewer)], responses=errors(503))
    async def list_alerts(
        state: Literal["open", "raised", "acknowledged", "resolved"] | None = None,
        severity: Literal["info", "warning", "takeover"] | None = None,
        vehicle: Annotated[str | None, Query(max_length=64)] = None,
        since: Annotated[float | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 200,
    ) -> JSON:
        states = OPEN_STATES if state == "open" else (state,) if state else None
        alerts = engine().journal.alerts(states=states, severity=severity, vehicle=vehicle,
                                         since=since, limit=limit)
        return JSON([engine().view(a) for a in alerts])

    @router.get("/alerts/{alert_id}", dependencies=[Depends(viewer)],
                responses=errors(404, 503))
    async def get_alert(alert_id: AlertId) -> JSON:
        try:
            alert = engine().get(alert_id)
        except AlertNotFound:
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
        history = engine().journal.history(alert_id)
        return JSON({"alert": engine().view(alert), "history": [t.to_dict() for t in history]})

    @router.get("/ha", dependencies=[Depends(viewer)])
    async def ha() -> JSON:
        """Which hub of a pair this is, who leads, and every hub's URL (l4mon/leadership.py)."""
        return JSON(runtime.ha_view())

    @router.post("/alerts/{alert_id}/ack", responses=errors(400, 413, 403, 404, 409, 503))
    async def acknowledge(alert_id: AlertId, body: AckBody,
                          who: Principal = Depends(acting)) -> JSON:
        try:
            alert = engine().acknowledge(alert_id, who.name, runtime.clock.now(), body.note)
        except AlertNotFound:
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
        except AlertClosed as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return JSON(engine().view(alert))

    @router.post("/alerts/{alert_id}/resolve", responses=errors(400, 413, 403, 404, 409, 503))
    async def resolve(alert_id: AlertId, body: ResolveBody,
                      who: Principal = Depends(acting)) -> JSON:
        try:
            alert = engine().resolve(alert_id, who.name, runtime.clock.now(),
                                     body.reason.strip(), fleet=runtime.hub.fleet,
                                     force=body.force)
        except AlertNotFound:
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
        except StillHolds as error:
            raise HTTPException(status_code=409, detail={
                "message": f"{error}. Resolve anyway with force: true, or acknowledge it.",
                "still_holds": error.why}) from None
        except AlertClosed as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return JSON(engine().view(alert))

    @router.get("/duty", dependencies=[Depends(viewer)])
    async def duty() -> JSON:
        return JSON(runtime.duty_view())

    @router.post("/duty/on", responses=errors(400, 413, 403, 503))
    async def duty_on(body: DutyOnBody | None = None,
                      who: Principal = Depends(acting)) -> JSON:
        vehicles = body.vehicles if body is not None and body.vehicles else None
        engine().duty.go_on(who.name, runtime.clock.now(), vehicles)
        return JSON(runtime.duty_changed())

    @router.post("/duty/off", responses=errors(403, 503))
    async def duty_off(who: Principal = Depends(acting)) -> JSON:
        engine().duty.go_off(who.name, runtime.clock.now())
        return JSON(runtime.duty_changed())

    return router
