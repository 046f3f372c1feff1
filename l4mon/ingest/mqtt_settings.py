"""The ``[mqtt]`` table of the hub config: which broker, how to connect, which topics.

Read by the MQTT source and by both client backends, so it lives apart from all three.
"""

from __future__ import annotations

import re
import ssl
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from telemetry.topics import PREFIX, SUBSCRIPTIONS

ClientName = Literal["gmqtt", "aiomqtt"]
#: A site name as topics carry it (telemetry/topics.py): no separators or wildcards.
_SITE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class MqttSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[mqtt]`` table of the hub config."""

    url: str = "mqtt://127.0.0.1:1883"
    client: ClientName = "gmqtt"
    client_id: str = "l4mon-hub"
    #: MQTT v5 session expiry: how long the broker keeps our subscriptions and QoS 1 messages
    #: while we are disconnected.
    session_expiry_s: int = 3_600
    #: When set, subscribe as ``$share/{group}/...`` so several hubs split one fleet.
    shared_group: str | None = None
    #: When set, subscribe only to these sites' topics: hubs that split a fleet by site each
    #: see every stream of their vehicles (a shared group splits per message, not per vehicle;
    #: docs/scaling.md). Empty: every site.
    sites: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None
    #: For mqtts://: the CA that signed the broker's certificate (empty: the system's CAs), and
    #: the hub's own client certificate and key where the broker requires one.
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive_s: int = 15
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    buffer_capacity: int = 200_000
    #: MQTT v5 user property in which the broker names the authenticated publisher (see
    #: l4mon/ingest/identity.py and docs/operations.md); only read with require_identity.
    identity_property: str = "l4mon-client"
    #: Quarantine (``identity_mismatch``) every message whose identity property is absent,
    #: repeated, or not the vehicle/RSU its topic names. Only on if the broker stamps it.
    require_identity: bool = False
    #: Commands go out, and the vehicles' answers come in, on a connection of their own, so
    #: neither waits behind the telemetry backlog the broker holds for the hub (issue 25;
    #: l4mon/commands/connection.py). Its client id, credentials and certificate default to
    #: ``<client_id>-commands`` and the hub's own; a broker that names a client by its
    #: certificate needs a certificate of its own for it (docs/operations.md).
    command_connection: bool = True
    command_client_id: str = ""
    command_username: str | None = None
    command_password: str | None = None
    command_cert_file: str = ""
    command_key_file: str = ""

    def __post_init__(self) -> None:
        parse_url(self.url)
        if bool(self.command_cert_file) != bool(self.command_key_file):
            raise ValueError("mqtt: command_cert_file and command_key_file go together")
        if self.command_client_id == self.client_id:
            raise ValueError("mqtt: command_client_id must differ from client_id: one client "
                             "id is one session, and the broker hands it to the latest of two")
        if not self.identity_property:
            raise ValueError("mqtt: identity_property must not be empty")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("mqtt: cert_file and key_file go together")
        if self.backoff_initial_s <= 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("mqtt: need 0 < backoff_initial_s <= backoff_max_s")
        bad = [s for s in self.sites if not _SITE.match(s)]
        if bad or len(set(self.sites)) != len(self.sites):
            raise ValueError(f"mqtt: sites must be distinct site names (A-Z a-z 0-9 _ . : -), "
                             f"got {list(self.sites)!r}")

    def topics(self) -> list[str]:
        """The subscriptions: every site, or only ``sites``; under ``$share/`` with a group."""
        if self.sites:
            topics = [f"{PREFIX}/{site}/{family}/#" for site in self.sites
                      for family in ("vehicle", "rsu")]
        else:
            topics = list(SUBSCRIPTIONS)
        if self.shared_group:
            return [f"$share/{self.shared_group}/{t}" for t in topics]
        return topics


def parse_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host:port`` or ``mqtts://host:port`` → (host, port, tls)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT URL (mqtt://HOST:PORT or mqtts://HOST:PORT): {url!r}")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context for an mqtts:// URL (hostname and certificate verified), else None."""
    if not parse_url(settings.url)[2]:
        return None
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if settings.cert_file:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    return context
