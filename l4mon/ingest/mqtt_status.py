"""What the operator and /metrics see of the broker connection and the ingest paths."""

from __future__ import annotations

from collections import deque

from l4mon.ingest.refusals import RefusedSenders


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
        #: The largest packet the hub reads, announced to the broker as its MQTT 5 Maximum
        #: Packet Size (l4mon/ingest/refusals.py); None until the source is built.
        self.max_packet_bytes: int | None = None
        #: Whether packets are read with that bound (l4mon/ingest/_bounded_read.py), and why
        #: not when they are not (self-check mismatch, gmqtt internals moved, aiomqtt).
        self.bounded_read = False
        self.bounded_read_reason: str | None = "not started"
        #: Packets over the bound refused unread, and retained messages on event topics.
        self.refused_oversize = 0
        self.refused_retained = 0
        #: Times the broker ended the hub's session because another client took its client
        #: id (MQTT 5 reason 0x8E), and when it last did (the hub's clock).
        self.session_takeovers = 0
        self.session_taken_over_at: float | None = None
        #: When the broker last closed the hub's connection unasked and without a reason
        #: (the newest ten; Mosquitto 2.0.11's way of handing the session to another client).
        self.broker_closes: deque[float] = deque(maxlen=10)
        self.broker_closes_total = 0
        #: Who sent what the transport refused (the ``sender_refused`` alert rule reads it).
        self.senders = RefusedSenders()

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

    def set_bounded_read(self, on: bool, reason: str | None = None) -> None:
        self.bounded_read = on
        self.bounded_read_reason = None if on else (reason or "unknown")
