"""The seam between an MQTT client backend and the hub's buffer: how a message is handed over,
and when its acknowledgement may go."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from l4mon.types import Delivery


class Deliver(Protocol):
    """Hands one message to the buffer. ``then`` (a QoS 1 message's PUBACK) runs once the hub
    has processed the batch the message was in, never before."""

    def __call__(self, delivery: Delivery, then: Callable[[], None] | None = None, /) -> None:
        ...


class Checked(Protocol):
    """The identity check (l4mon/ingest/identity.py): a delivery, the PUBLISH's MQTT v5 user
    properties (name, value) in order, and the same ``then`` as ``Deliver``."""

    def __call__(self, delivery: Delivery, user_properties: Sequence[tuple[str, str]],
                 then: Callable[[], None] | None = None, /) -> None:
        ...
