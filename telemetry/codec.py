"""A payload's bytes in the encoding its MQTT content type names, for tools that edit or
republish recorded messages (scenario faults, paced replay). The hub itself decodes with
telemetry/decode.py, which also validates; this only round-trips."""

from __future__ import annotations

from typing import Any

import msgspec

from telemetry.decode import MSGPACK_TYPES


def is_msgpack(content_type: str | None) -> bool:
    return content_type in MSGPACK_TYPES  # exactly as the hub's decoder tells them


def decode(payload: bytes, content_type: str | None, type: Any = Any) -> Any:
    """The payload as ``type`` (a dict by default), JSON unless the content type says
    MessagePack."""
    if is_msgpack(content_type):
        return msgspec.msgpack.decode(payload, type=type)
    return msgspec.json.decode(payload, type=type)


def encode(obj: Any, content_type: str | None) -> bytes:
    """``obj`` in the same encoding ``decode`` read it from."""
    if is_msgpack(content_type):
        return msgspec.msgpack.encode(obj)
    return msgspec.json.encode(obj)
