"""Shared aliases, so that stages depend on these rather than on each other."""

from __future__ import annotations

from typing import TypeAlias

#: One message as the transport delivered it: topic, raw payload, MQTT v5 content type or None.
Delivery: TypeAlias = tuple[str, bytes, "str | None"]
#: What a source hands the hub at once; batching makes the hand-off nearly free per message.
Batch: TypeAlias = list[Delivery]
