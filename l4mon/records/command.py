"""A command as the hub journals it, and the states it goes through.

    issued ──▶ sent ──▶ received ──▶ executing ──▶ done
       │         │          │            │
       ▼         ▼          ▼            ▼
     failed   not_confirmed (no answer in time)   refused (by the vehicle)

``issued``: journaled, not yet accepted by the broker. ``sent``: the broker acknowledged the
QoS 1 publish. ``failed``: the broker never took it (not connected, refused). A late answer
still moves a ``not_confirmed`` command on: the vehicle did act, and the journal says so.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

ISSUED: Final = "issued"
SENT: Final = "sent"
FAILED: Final = "failed"
NOT_CONFIRMED: Final = "not_confirmed"
RECEIVED: Final = "received"
EXECUTING: Final = "executing"
DONE: Final = "done"
REFUSED: Final = "refused"
#: How far along each state is: an answer moves a command only forward, so a duplicate or a
#: reordered answer never undoes a later one. ``not_confirmed`` sits with ``sent``: any
#: answer of the vehicle is news after it.
PROGRESS: Final[dict[str, int]] = {ISSUED: 0, SENT: 1, NOT_CONFIRMED: 1, FAILED: 1,
                                   RECEIVED: 2, EXECUTING: 3, DONE: 4, REFUSED: 4}
#: States in which the hub still waits for the vehicle.
WAITING: Final[tuple[str, ...]] = (ISSUED, SENT, RECEIVED, EXECUTING)
#: States after which nothing more is expected.
FINAL: Final[tuple[str, ...]] = (DONE, REFUSED, FAILED)


class CommandRecord(msgspec.Struct, kw_only=True):
    """One command, as journaled (table ``commands``); ``state`` is its latest step."""

    id: str
    vehicle: str
    site: str
    kind: str
    issued_by: str
    issued_at: float
    state: str
    #: By when the vehicle must have said ``received``, and by when ``done`` (or refused).
    received_by: float
    done_by: float
    reason: str | None = None
    text: str | None = None
    override: str | None = None
    sent_at: float | None = None
    updated_at: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class CommandStep(msgspec.Struct, kw_only=True):
    """One line of a command's history (table ``command_log``): who or what moved it, when."""

    seq: int
    command_id: str
    at: float
    state: str
    #: The operator (issue, resend), ``vehicle`` (an answer), or None (the hub: a timeout).
    actor: str | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]
