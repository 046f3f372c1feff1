"""What the operator and /metrics see of the broker connection and the ingest paths."""

from __future__ import annotations


class MqttStatus:
    """What the operator and /metrics see of the broker connection and of the ingest paths."""

    def __init__(self) -> None:
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.failed_attempts = 0
        self.last_error: str | None = None
        #: The client library and its version, e.g. ("gmqtt", "0.8.0"); None until started.
        self.client: tuple[str, str] | None = None
        #: Whether gmqtt's PUBLISH packets go through l4mon's lean reader (l4mon/ingest/_gmqtt.py),
        #: and why not when they do not (self-check mismatch, unknown internals, aiomqtt).
        self.lean_path = False
        self.lean_path_reason: str | None = "not started"
        #: Per path a QoS 1 event can take: is its PUBACK sent only once the hub processed it?
        self.ack_after_processing: dict[str, bool] = {}
        #: Why not, for each path where it does not hold.
        self.ack_reasons: dict[str, str] = {}

    def set_lean_path(self, on: bool, reason: str | None = None) -> None:
        self.lean_path = on
        self.lean_path_reason = None if on else (reason or "unknown")

    def set_ack(self, path: str, holds: bool, reason: str | None = None) -> None:
        self.ack_after_processing[path] = holds
        if holds:
            self.ack_reasons.pop(path, None)
        else:
            self.ack_reasons[path] = reason or "unknown"

    def drop_ack(self, path: str) -> None:
        """A path no message takes any more (the lean path, switched off)."""
        self.ack_after_processing.pop(path, None)
        self.ack_reasons.pop(path, None)
