"""The hub's command connection: commands out and the vehicles' answers in, on an MQTT
connection of their own.

On the telemetry connection a command's PUBACK and its answers queue behind the backlog the
broker holds for the hub (up to ``max_inflight_messages`` unacknowledged, the rest queued):
under 30,000 msg/s the click-to-"received" p99 was 0.4-1.4 s and some PUBACKs took over 2 s
(docs/benchmarks.md, "Commands"). This connection carries a handful of messages a second, so
nothing waits in front of them. It is an ``MqttSource`` like the telemetry one (same backend,
bounded reader, refusals, identity check, persistent session), subscribed to the answer topics
only; what it hears goes through the hub's one ingest path (``Runtime.consume``), so answers
are decoded and quarantined exactly as before.

It needs a client id of its own (``<client_id>-commands``): one client id is one session,
and the broker hands it to the latest client, which the telemetry connection would take for
a takeover (``hub_session_taken_over``). A broker that makes the certificate's name the
client id (deploy/mosquitto: ``use_identity_as_username`` + ``use_username_as_clientid``)
therefore needs a certificate of its own for it, with its own ACL entry (l4mon/mosquitto_acl.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from l4mon.ingest.mqtt import MqttSource
from l4mon.ingest.mqtt_settings import MqttSettings
from telemetry.commands import ANSWER
from telemetry.topics import PREFIX

if TYPE_CHECKING:
    from l4mon.clock import Clock
    from telemetry.quarantine import Quarantine

#: What the command connection's client id is, by default, after the hub's.
SUFFIX: Final = "-commands"
#: Answers waiting for the hub: a few per command, so this bounds a burst, not a backlog.
BUFFER_CAPACITY: Final = 10_000


def command_client_id(hub_client_id: str) -> str:
    """The command identity of a hub (also its certificate's name and ACL user)."""
    return f"{hub_client_id}{SUFFIX}"


class CommandMqttSettings(MqttSettings, frozen=True, forbid_unknown_fields=True):
    """The hub's ``[mqtt]`` settings as the command connection uses them."""

    def topics(self) -> list[str]:
        """The answer topics only, of the same sites and shared group as the telemetry."""
        sites = self.sites or ("+",)
        topics = [f"{PREFIX}/{site}/vehicle/+/{ANSWER}" for site in sites]
        if self.shared_group:
            return [f"$share/{self.shared_group}/{t}" for t in topics]
        return topics


def command_settings(hub: MqttSettings) -> CommandMqttSettings:
    """The command connection's settings: the hub's, under the command identity."""
    fields = msgspec.structs.asdict(hub)
    own_login = hub.command_username is not None
    own_cert = bool(hub.command_cert_file)
    fields.update(
        client_id=hub.command_client_id or command_client_id(hub.client_id),
        username=hub.command_username if own_login else hub.username,
        password=hub.command_password if own_login else hub.password,
        cert_file=hub.command_cert_file if own_cert else hub.cert_file,
        key_file=hub.command_key_file if own_cert else hub.key_file,
        buffer_capacity=min(hub.buffer_capacity, BUFFER_CAPACITY))
    return CommandMqttSettings(**fields)


def command_source(hub: MqttSettings, *, quarantine: Quarantine, clock: Clock,
                   max_payload_bytes: int) -> MqttSource:
    """The command connection; its ``publisher`` is the one commands go out on."""
    return MqttSource(settings=command_settings(hub), quarantine=quarantine, clock=clock,
                      max_payload_bytes=max_payload_bytes)
