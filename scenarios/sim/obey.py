"""How a simulated shuttle takes an operator's command (docs/protocol.md, "Commands").

Like a real vehicle's: an id is executed once, however often it arrives (a QoS 1 resend, an
operator's retry), and a repeat is answered with how far that id got; every step is answered
(received, executing, done) or the command is refused with the reason. What it obeys:

- ``stop`` and ``pull_over``: a minimal risk manoeuvre now (a pull-over is simulated as the
  same controlled stop); ``done`` once it stands;
- ``resume``: back to autonomous driving, refused while the fault that stopped it still acts
  or while a link is down (no remote supervision on both links);
- ``message``: shown and announced to the passengers at once.

No random draws here: a fleet that gets no command produces the same bytes as before.
"""

from __future__ import annotations

from typing import Final

import msgspec

from telemetry.commands import Command, CommandAnswer, decode_command

#: Ids a vehicle remembers having executed: more than an operator's retries ever span.
REMEMBERED: Final = 1_000


class Obedience:
    """One vehicle's commands: what came in, what it holds itself to, what it answers."""

    __slots__ = ("answers", "held", "inbox", "seen", "stopping")

    def __init__(self) -> None:
        #: Commands received (from the broker) and not yet taken at a tick.
        self.inbox: list[Command] = []
        #: id -> the last answer given for it (status, reason).
        self.seen: dict[str, tuple[str, str | None]] = {}
        #: The stop or pull-over that holds the vehicle still (its id), or None.
        self.held: str | None = None
        #: The stop whose ``done`` is still due (it is braking).
        self.stopping: str | None = None
        #: Answers to send at the next tick that can.
        self.answers: list[CommandAnswer] = []

    def deliver(self, payload: bytes) -> bool:
        """A command's bytes as the broker hands them over; False (and ignored) when they are
        not a command: there is no id to answer."""
        try:
            self.inbox.append(decode_command(payload))
        except (msgspec.ValidationError, msgspec.DecodeError):
            return False
        return True

    def take(self, t: float, *, fault_holds: bool, link_down: bool) -> None:
        """Act on the inbox at a tick at ``t``. ``fault_holds``: the fault that made the vehicle
        stop by itself still acts; ``link_down``: at least one link is down."""
        inbox, self.inbox = self.inbox, []
        for command in inbox:
            last = self.seen.get(command.id)
            if last is not None:  # already executed: say again how far it got
                self._answer(command.id, *last, t=t)
                continue
            self._answer(command.id, "received", t=t)
            if command.kind in ("stop", "pull_over"):
                self.held = self.stopping = command.id
                self._answer(command.id, "executing", t=t)
            elif command.kind == "resume":
                why = "the fault that stopped the vehicle still acts" if fault_holds else \
                    "a link is down: no remote supervision on both links" if link_down else None
                if why is not None:
                    self._answer(command.id, "refused", why, t=t)
                    continue
                self.held = self.stopping = None
                self._answer(command.id, "executing", t=t)
                self._answer(command.id, "done", "driving autonomously", t=t)
            else:  # message
                self._answer(command.id, "done", "shown and announced to the passengers", t=t)

    def stood_still(self, t: float) -> None:
        """The vehicle stands: a stop under way is done."""
        if self.stopping is not None:
            self._answer(self.stopping, "done", "standing still, hazard lights on", t=t)
            self.stopping = None

    def _answer(self, command_id: str, status: str, reason: str | None = None, *,
                t: float) -> None:
        self.answers.append(CommandAnswer(id=command_id, status=status,  # type: ignore[arg-type]
                                          ts=t, reason=reason))
        self.seen[command_id] = (status, reason)
        if len(self.seen) > REMEMBERED:
            del self.seen[next(iter(self.seen))]
