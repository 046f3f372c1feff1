"""Commands as a replay sees them: each recorded command and the vehicle's answers to it, with
the times the recording hub had them, never sent to anyone.

Why: a recording keeps the commands the hub sent and the answers it heard (l4mon/recorder.py);
replaying it through the hub's own ingest (``Hub.command_messages``) gives each command's
round trip — sent → received, sent → done — and the links the vehicle could be reached on
when it was sent, which the report groups by (l4mon/faces/report/command_times.py). A replay has no
broker and no operator: it publishes nothing and decides nothing about commands; it only
reads what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from telemetry.commands import ANSWER, COMMAND, decode_answer, decode_command, parse_command_topic
from telemetry.fleet import Fleet
from telemetry.linkstate import DEGRADED, OK

#: Commands a replay keeps (a day of a fleet sends hundreds, not millions).
MAX_COMMANDS: Final = 100_000
#: Link states a command can ride on.
_USABLE: Final = (OK, DEGRADED)


@dataclass
class Trail:
    """One command: when the recording hub sent it, and when each answer reached it."""

    id: str
    vehicle: str
    site: str
    kind: str
    sent_at: float
    #: The vehicle's usable links when it was sent, joined: "l5g+lte"; "none" without one.
    links: str
    answers: dict[str, float] = field(default_factory=dict)
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        received, done = self.answers.get("received"), self.answers.get("done")
        return {"id": self.id, "vehicle": self.vehicle, "site": self.site, "kind": self.kind,
                "sent_at": self.sent_at, "links": self.links, "answers": dict(self.answers),
                "refused": self.refused,
                "received_ms": None if received is None else
                round((received - self.sent_at) * 1000, 3),
                "done_ms": None if done is None else round((done - self.sent_at) * 1000, 3)}


class CommandTrail:
    """Takes the command-family messages of a replay (``Hub.command_messages``)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.commands: dict[str, Trail] = {}
        #: Messages that were no recorded command or answer of one (counted, not raised:
        #: the live hub quarantined them already when it heard them).
        self.unmatched = 0

    def take(self, topic: str, payload: bytes, now: float) -> None:
        route = parse_command_topic(topic)
        if route is None:
            self.unmatched += 1
            return
        try:
            if route.kind == COMMAND:
                command = decode_command(payload)
                if command.id not in self.commands and len(self.commands) < MAX_COMMANDS:
                    self.commands[command.id] = Trail(
                        command.id, route.vehicle, route.site, command.kind, now,
                        self._links(route.vehicle))
                return  # sent again: the first send is when the round trip starts
            assert route.kind == ANSWER
            answer = decode_answer(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            self.unmatched += 1
            return
        trail = self.commands.get(answer.id)
        if trail is None or trail.vehicle != route.vehicle:
            self.unmatched += 1
            return
        trail.answers.setdefault(answer.status, now)  # a repeated answer: its first arrival
        if answer.status == "refused":
            trail.refused = answer.reason

    def _links(self, vehicle: str) -> str:
        track = self.fleet.vehicles.get(vehicle)
        usable = sorted(name for name, link in (track.links.items() if track else ())
                        if link.health.state in _USABLE)
        return "+".join(usable) or "none"

    def rows(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in sorted(self.commands.values(), key=lambda t: t.sent_at)]
