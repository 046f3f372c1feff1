"""Shared aliases, so that stages depend on these rather than on each other."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeAlias

#: One message as the transport delivered it: topic, raw payload, MQTT v5 content type or None.
Delivery: TypeAlias = tuple[str, bytes, "str | None"]
#: What a source hands the hub at once; batching makes the hand-off nearly free per message.
Batch: TypeAlias = list[Delivery]


class Spawn(Protocol):
    """Starts a task on behalf of its owner: ``asyncio.create_task`` for a part running on its
    own, the live process's ``TaskGroup.create_task`` when it owns the part (l4mon/process.py),
    so that a part's failure is the whole process's."""

    def __call__(self, coro: Coroutine[Any, Any, None], /, *,
                 name: str | None = None) -> asyncio.Task[None]: ...
