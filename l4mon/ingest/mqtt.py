"""The MQTT source: the one narrow seam between the hub and an MQTT client library.

``MqttSource`` owns the connection for as long as its ``async with`` block lasts: it connects,
subscribes with a persistent session (so the broker keeps QoS 1 events while the hub is away),
and when the broker goes away it reconnects with capped exponential backoff, saying so in the
log and in ``status``. Which client library does the wire work is a setting; both are measured
in ``bench/ingest.py`` and the faster one is the default (see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import msgspec

from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.identity import IdentityCheck
from l4mon.types import Batch, Delivery
from telemetry.topics import PREFIX, SUBSCRIPTIONS

if TYPE_CHECKING:
    from l4mon.clock import Clock
    from telemetry.quarantine import Quarantine

log = logging.getLogger("l4mon.mqtt")

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

    def __post_init__(self) -> None:
        parse_url(self.url)
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


class MqttStatus:
    """What the operator and /metrics see of the broker connection."""

    def __init__(self) -> None:
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.failed_attempts = 0
        self.last_error: str | None = None


#: Delivery plus the PUBLISH's MQTT v5 user properties (name, value), for the identity check.
Checked = Callable[[Delivery, Sequence[tuple[str, str]]], None]
#: A backend runs one connection: connect, subscribe, deliver, and return (or raise) when the
#: connection is gone. The supervisor here decides whether and when to try again. With a
#: ``Checked`` callable, every message goes through it instead of straight to ``deliver``.
Session = Callable[[MqttSettings, Callable[[Delivery], None], Callable[[], None], Checked | None],
                   Awaitable[None]]


def _backend(name: ClientName) -> Session:
    if name == "gmqtt":
        from l4mon.ingest._gmqtt import run_session
    else:
        from l4mon.ingest._aiomqtt import run_session
    return run_session


class MqttSource:
    """``async with MqttSource(settings=...) as source: async for batch in source: ...``

    With ``settings.require_identity`` it needs the hub's ``quarantine`` and ``clock``: messages
    whose sender does not match their topic are kept there and never reach the buffer.
    """

    def __init__(self, *, settings: MqttSettings, quarantine: Quarantine | None = None,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.status = MqttStatus()
        self.buffer = BatchBuffer(capacity=settings.buffer_capacity)
        self.identity: IdentityCheck | None = None
        if settings.require_identity:
            if quarantine is None or clock is None:
                raise ValueError("mqtt.require_identity needs the hub's quarantine and clock")
            self.identity = IdentityCheck(deliver=self.buffer.put, quarantine=quarantine,
                                          clock=clock, property_name=settings.identity_property)
        self._session = _backend(settings.client)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttSource:
        if self._task is not None:
            raise RuntimeError("MqttSource is not re-entrant")
        self._task = asyncio.create_task(self._supervise(), name="l4mon-mqtt")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.buffer.close()

    def __aiter__(self) -> MqttSource:
        return self

    async def __anext__(self) -> Batch:
        return await self.buffer.__anext__()

    def _on_connected(self) -> None:
        status = self.status
        status.connected = True
        status.connects += 1
        status.failed_attempts = 0
        log.info("connected to %s (connection %d)", self.settings.url, status.connects)

    async def _supervise(self) -> None:
        status = self.status
        delay = self.settings.backoff_initial_s
        while True:
            try:
                await self._session(self.settings, self.buffer.put, self._on_connected,
                                    self.identity)
                error = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any transport failure means: try again later
                error = f"{type(exc).__name__}: {exc}"
            if status.connected:
                status.connected = False
                status.disconnects += 1
                delay = self.settings.backoff_initial_s
                log.warning("lost broker %s (%s); reconnecting", self.settings.url, error)
            else:
                status.failed_attempts += 1
                log.warning("cannot reach broker %s (%s); retry %d in %.1f s",
                            self.settings.url, error, status.failed_attempts, delay)
            status.last_error = error
            # Jitter keeps a fleet of hubs from reconnecting in lockstep after a broker restart.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.backoff_max_s)
