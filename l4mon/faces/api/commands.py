"""Command routes: thin calls into the command service, which journals before it sends.

Who may: an operator (or admin) on duty for the vehicle, on the hub that decides (a pair's
leader); viewers never (403 by role), an operator off duty for it 403 by the service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field, StrictBool

from l4mon.auth import Principal
from l4mon.commands.service import CommandService, Refused
from l4mon.faces.api.deps import errors, leading
from l4mon.faces.api.json import JSON
from l4mon.records.command import WAITING
from l4mon.runtime import Runtime

Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Words = Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]


class CommandBody(BaseModel):
    kind: Literal["stop", "pull_over", "resume", "message"]
    #: The command's id: give one to make a retry safe (the same id is one command, executed
    #: once); none: the hub makes one.
    id: Annotated[str, Field(min_length=1, max_length=64,
                             pattern=r"^[A-Za-z0-9_.:-]+$")] | None = None
    reason: Words | None = None
    #: ``message``: what the passengers are shown and told.
    text: Words | None = None
    #: ``resume``: the second confirmation.
    confirm: StrictBool = False
    #: ``resume``: resume although a takeover cause holds, with this reason.
    override: Words | None = None
    #: Send although the vehicle is out of reach (it gets it if it comes back in time).
    force: StrictBool = False

    def misfit(self) -> str | None:
        """What does not fit the kind (answered 409, like every other "not like this"; the
        schema alone cannot say it), or None."""
        if self.kind == "message" and not self.text:
            return "a message needs text"
        if self.kind != "message" and self.text:
            return "only a message carries text"
        if self.kind != "resume" and (self.confirm or self.override):
            return "confirm and override are for resume only"
        return None


def routes(runtime: Runtime, viewer: Any, operator: Any) -> APIRouter:
    router = APIRouter(prefix="/api", responses=errors(401, 429))
    acting = leading(runtime, operator)

    def service() -> CommandService:
        if runtime.commands is None:
            raise HTTPException(status_code=503, detail="this hub sends no commands (no "
                                                        "broker connection to publish on)")
        return runtime.commands

    @router.post("/vehicles/{vehicle}/commands", status_code=202,
                 responses=errors(400, 413, 403, 409, 503))
    async def send(vehicle: Name, body: CommandBody, who: Principal = Depends(acting)) -> JSON:
        """Journal the command and publish it; 202 once the broker has it. The vehicle's
        answers follow: GET /api/commands/{id}, or the console stream's ``command`` frames."""
        commands = service()
        misfit = body.misfit()
        if misfit is not None:
            raise HTTPException(status_code=409, detail=misfit)
        try:
            site = commands.check(vehicle=vehicle, kind=body.kind, operator=who.name,
                                  confirm=body.confirm, override=body.override,
                                  force=body.force)
            forced = commands.out_of_reach(vehicle) if body.force else None
            command, new = await commands.issue(
                vehicle=vehicle, site=site, kind=body.kind, operator=who.name,
                now=runtime.clock.now(), command_id=body.id, reason=body.reason,
                text=body.text, override=body.override, forced=forced)
        except Refused as refused:
            raise HTTPException(status_code=refused.status, detail=refused.detail) from None
        return JSON({**command.to_dict(), "new": new}, status_code=202)

    @router.get("/commands", dependencies=[Depends(viewer)], responses=errors(503))
    async def list_commands(
        vehicle: Annotated[str | None, Query(max_length=64)] = None,
        waiting: bool = False,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 200,
    ) -> JSON:
        commands = service().journal.commands(vehicle=vehicle,
                                              states=WAITING if waiting else None, limit=limit)
        return JSON([c.to_dict() for c in commands])

    @router.get("/commands/{command_id}", dependencies=[Depends(viewer)],
                responses=errors(404, 503))
    async def get_command(command_id: Name) -> JSON:
        journal = service().journal
        command = journal.command(command_id)
        if command is None:
            raise HTTPException(status_code=404, detail=f"no command {command_id}")
        return JSON({"command": command.to_dict(),
                     "steps": [s.to_dict() for s in journal.command_log(command_id)]})

    return router
