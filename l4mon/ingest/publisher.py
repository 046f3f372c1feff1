"""The hub's way out: QoS 1 publishes on its own MQTT connection (commands to vehicles).

The hub was subscribe-only; commands need it to speak. They go out on the command connection
(l4mon/commands/connection.py: its own client id, so they never queue behind telemetry), or
with ``[mqtt] command_connection = false`` on the telemetry connection; a command counts
as *sent* only once the broker acknowledged it (PUBACK): a publish the broker refused, or did
not acknowledge within ``timeout_s``, is ``NotSent`` with the reason, never assumed delivered.
The connection's backend attaches a sender while it is connected and detaches it when it is
gone, so a publish while the hub is away from its broker is refused at once, not queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

#: Sends one QoS 1 PUBLISH and returns the broker's PUBACK reason code (0: accepted).
Send = Callable[[str, bytes], Awaitable[int]]
#: MQTT 5 PUBACK reason codes a sender may see, named for the operator.
NO_SUBSCRIBERS: Final = 0x10
REASONS: Final[dict[int, str]] = {0x10: "no matching subscribers", 0x80: "unspecified error",
                                  0x83: "implementation specific error",
                                  0x87: "not authorized (the broker's ACL)",
                                  0x90: "topic name invalid", 0x97: "quota exceeded",
                                  0x99: "payload format invalid"}


class NotSent(Exception):
    """The broker did not take the message; ``reason`` says why, for the journal and the API."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Publisher(Protocol):
    """What the command service needs: a QoS 1 publish that returns once the broker has it."""

    async def publish(self, topic: str, payload: bytes) -> str:
        """A note on how the broker took it ("" or e.g. "no matching subscribers"), or
        ``NotSent``."""
        ...


class MqttPublisher:
    """Publishes through whichever connection of the hub is up (``attach``/``detach``)."""

    def __init__(self, *, timeout_s: float = 2.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self._send: Send | None = None
        self.sent = 0
        self.refused = 0

    def attach(self, send: Send) -> None:
        self._send = send

    def detach(self) -> None:
        self._send = None

    @property
    def connected(self) -> bool:
        return self._send is not None

    async def publish(self, topic: str, payload: bytes) -> str:
        send = self._send
        if send is None:
            self.refused += 1
            raise NotSent("the hub is not connected to its broker")
        try:
            code = await asyncio.wait_for(send(topic, payload), self.timeout_s)
        except TimeoutError:
            self.refused += 1
            raise NotSent(f"the broker did not acknowledge it within {self.timeout_s:g} s") \
                from None
        except (OSError, RuntimeError, AttributeError) as error:  # the connection went away
            self.refused += 1
            raise NotSent(f"the connection failed while sending: {error}") from None
        if code >= 0x80:
            self.refused += 1
            raise NotSent(f"the broker refused it: {REASONS.get(code, f'reason 0x{code:02x}')}")
        self.sent += 1
        return REASONS.get(code, "") if code else ""
