"""gmqtt behind the MQTT seam: pure asyncio, MQTT 5, the fastest client we measured.

A PUBLISH reaches the hub by one of two paths, and on both a QoS 1 event is acknowledged to the
broker only once the hub has processed it (journaled any alert it raised):

- **lean** (``install_lean_publish``): l4mon reads QoS 0 and QoS 1 PUBLISH packets itself,
  properties (content type, user properties for the identity check) included, and hands a
  QoS 1 message's PUBACK to the buffer, which sends it after processing. It replaces a private
  method of gmqtt's package handler, so gmqtt is pinned exactly (pyproject.toml,
  constraints.txt) and ``self_check`` compares it with gmqtt's own parse of synthetic packets at
  start-up: on any difference it is not installed, loudly.
- **gmqtt**: gmqtt's own reader, for whatever the lean path leaves (topic aliases, QoS 2,
  malformed packets) and for everything when the lean path is off. The client runs with
  ``optimistic_acknowledgement=False`` and a coroutine ``on_message`` that returns only once the
  hub has processed the message, so gmqtt sends the PUBACK after that (its public contract).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from l4mon.ingest import _bounded_read
from l4mon.ingest.delivery import Checked, Deliver
from l4mon.ingest.mqtt_settings import MqttSettings, parse_url, tls_context
from l4mon.ingest.mqtt_status import MqttStatus
from l4mon.ingest.publisher import MqttPublisher, Send
from l4mon.ingest.refusals import TransportGuard, is_event_topic
from l4mon.types import Delivery

# gmqtt logs every reconnect attempt and dropped socket itself; our supervisor says it once.
logging.getLogger("gmqtt").setLevel(logging.ERROR)
log = logging.getLogger("l4mon.ingest")

VERSION = getattr(gmqtt, "__version__", "?")
_PUBLISH_QOS_MASK = 0xF6  # packet type and QoS bits of the fixed header (not DUP, RETAIN)
_PUBLISH_QOS0 = 0x30
_PUBLISH_QOS1 = 0x32
_PUBACK = 0x40
_RETAIN = 0x01
#: MQTT 5 DISCONNECT reason: another client connected with this client id.
SESSION_TAKEN_OVER = 0x8E
#: Ack paths as /healthz and /metrics name them.
LEAN, GMQTT = "lean", "gmqtt"

#: What the lean path read from a PUBLISH's properties: content type, user properties (name,
#: value) in order, and where the payload starts.
Props = tuple["str | None", list[tuple[str, str]], int]


def _properties(packet: bytes, at: int) -> Props | None:
    """Read the MQTT v5 property block starting at ``packet[at]`` (its length).

    None when the lean path must leave the packet to gmqtt: a topic alias (gmqtt keeps the alias
    table), a property a PUBLISH may not carry, invalid UTF-8, or a block that does not add up.
    """
    try:
        length = shift = 0
        for _ in range(4):  # variable byte integer, at most 4 bytes
            byte = packet[at]
            at += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        else:
            return None
        end = at + length
        if end > len(packet):
            return None
        content_type: str | None = None
        users: list[tuple[str, str]] = []
        while at < end:
            pid = packet[at]
            at += 1
            if pid in (0x03, 0x08, 0x09):  # content type, response topic, correlation data
                start = at + 2
                at = start + ((packet[at] << 8) | packet[at + 1])
                if pid == 0x03 and content_type is None:  # gmqtt keeps the first, too
                    content_type = packet[start:at].decode("utf-8")
                elif pid == 0x08:
                    packet[start:at].decode("utf-8")  # gmqtt decodes it: same failures
            elif pid == 0x26:  # user property: two strings
                start = at + 2
                at = start + ((packet[at] << 8) | packet[at + 1])
                name = packet[start:at].decode("utf-8")
                start = at + 2
                at = start + ((packet[at] << 8) | packet[at + 1])
                users.append((name, packet[start:at].decode("utf-8")))
            elif pid == 0x01:  # payload format indicator
                at += 1
            elif pid == 0x02:  # message expiry interval
                at += 4
            elif pid == 0x0B:  # subscription identifier, a variable byte integer
                for _ in range(4):
                    at += 1
                    if not packet[at - 1] & 0x80:
                        break
                else:
                    return None
            else:  # 0x23 topic alias, or not a PUBLISH property at all
                return None
            if at > end:
                return None
    except (IndexError, UnicodeDecodeError):
        return None
    return content_type, users, end


#: Looks at a retained PUBLISH (fixed header byte, body) before anything else does: True when
#: it refused it (quarantined and acknowledged), False to let it take its path.
RetainedScreen = Callable[[int, bytes], bool]


def install_lean_publish(client: Any, deliver: Deliver, checked: Checked | None = None, *,
                         retained: RetainedScreen | None = None) -> bool:
    """Route QoS 0 and QoS 1 PUBLISH packets past gmqtt's general path: to
    ``deliver((topic, payload, content_type))``, or with ``checked`` to
    ``checked(delivery, user_properties)``; a QoS 1 message also gets ``ack``, which sends its
    PUBACK and which the buffer runs once the hub has processed the message (gmqtt's own
    optimistic path acknowledges before its callback even runs). Everything else (topic
    aliases, QoS 2, a topic that is not UTF-8) takes gmqtt's path.

    MQTT v5 only (3.1.1 has no properties byte): installed only on a client set for v5. gmqtt
    changes the protocol only when it reconnects by itself after a refusal, which the hub's
    client never does (``reconnect_retries`` -2), and ``run_session`` checks it after each
    connect; so the per-packet path does not test it again.

    gmqtt's path costs ~5.5 us a message in Python: format strings built per packet for
    struct, a properties dict, two debug-log calls with eagerly formatted arguments, and an
    ``inspect.iscoroutinefunction`` on the callback, every time. This reads the topic length,
    the topic and the properties directly. It relies on gmqtt's package handler
    (``_package_handler._handle_packet(cmd, packet)`` and ``_send_puback(mid)``), so it checks
    that those exist and, where they do not (another gmqtt version), leaves gmqtt alone and says
    so; ``self_check`` verifies what it yields. Returns whether it was installed.

    ``retained`` sees every PUBLISH with its RETAIN bit set first (a bit test per message; the
    broker sets it only on retained copies sent when the hub subscribes).
    """
    handler = getattr(client, "_package_handler", None)
    general = getattr(handler, "_handle_packet", None)
    puback = getattr(handler, "_send_puback", None)
    state = getattr(client, "_connection_state", None)
    if general is None or puback is None \
            or getattr(state, "protocol_version", None) != MQTTv50:
        log.warning("gmqtt %s: lean PUBLISH path not installed (unknown internals or not "
                    "MQTT v5); using gmqtt's own", VERSION)
        return False

    def with_properties(topic: str, packet: bytes, at: int, mid: int | None) -> bool:
        """A PUBLISH that carries properties; False: leave it to gmqtt."""
        props = _properties(packet, at)
        if props is None:
            return False
        content_type, users, body = props
        delivery = (topic, packet[body:], content_type)
        if mid is None:
            if checked is None:
                deliver(delivery)
            else:
                checked(delivery, users)
        elif checked is None:
            deliver(delivery, partial(puback, mid))
        else:
            checked(delivery, users, partial(puback, mid))
        return True

    # Two near-copies on purpose: this runs for every message, and each test or call saved on
    # the plain QoS 0 branch (nearly all telemetry) is measurable (docs/benchmarks.md).
    def handle_packet(cmd: int, packet: bytes) -> None:
        if cmd & _RETAIN and retained is not None and cmd & 0xF0 == _PUBLISH_QOS0 \
                and retained(cmd, packet):
            return
        kind = cmd & _PUBLISH_QOS_MASK
        if kind == _PUBLISH_QOS0 and len(packet) > 2:
            end = 2 + ((packet[0] << 8) | packet[1])
            if 2 < end < len(packet):  # a topic (none: an alias) and a property length
                try:
                    topic = packet[2:end].decode("utf-8")
                except UnicodeDecodeError:
                    pass  # gmqtt's path logs and handles it
                else:
                    if packet[end] == 0:  # no properties
                        if checked is None:
                            deliver((topic, packet[end + 1:], None))
                        else:
                            checked((topic, packet[end + 1:], None), ())
                        return
                    if with_properties(topic, packet, end, None):
                        return
        elif kind == _PUBLISH_QOS1 and len(packet) > 4:
            end = 2 + ((packet[0] << 8) | packet[1])
            if 2 < end < len(packet) - 2:  # a topic, the packet id and a property length
                try:
                    topic = packet[2:end].decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    mid = (packet[end] << 8) | packet[end + 1]
                    if packet[end + 2] == 0:
                        if checked is None:
                            deliver((topic, packet[end + 3:], None), partial(puback, mid))
                        else:
                            checked((topic, packet[end + 3:], None), (), partial(puback, mid))
                        return
                    if with_properties(topic, packet, end + 2, mid):
                        return
        general(cmd, packet)

    handler._handle_packet = handle_packet
    return True


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def own_path_handler(deliver: Deliver, checked: Checked | None,
                     pending: set[asyncio.Future[None]],
                     guard: TransportGuard | None = None) -> Callable[..., Any]:
    """gmqtt's ``on_message`` for a client with ``optimistic_acknowledgement=False``: a
    coroutine, so gmqtt sends a QoS 1 message's PUBACK (with the reason code it returns) only
    when it returns, which is once the buffer ran its ``then``. ``pending`` holds the waits of
    this session, so they can be let go when it ends. With ``guard``, a retained message on an
    event topic is refused (and acknowledged at once)."""

    async def on_message(_client: Any, topic: str, payload: bytes, qos: int,
                         props: dict) -> int:
        if guard is not None and props.get("retain") and is_event_topic(topic):
            guard.retained_event(topic, payload)
            return 0
        content_type = props.get("content_type")
        delivery = (topic, payload, content_type[0] if content_type else None)
        if not qos:
            if checked is None:
                deliver(delivery)
            else:
                checked(delivery, props.get("user_property") or ())
            return 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending.add(done)
        try:
            if checked is None:
                deliver(delivery, partial(_settle, done))
            else:
                checked(delivery, props.get("user_property") or (), partial(_settle, done))
            await done
        finally:
            pending.discard(done)
        return 0  # PUBACK "success": refused or not, the message was received and handled

    return on_message


# --- The start-up self-check -------------------------------------------------------------------

_TOPIC = "l4mon/v1/self-check/vehicle/vé-1/event".encode()


def _prop_str(pid: int, text: str) -> bytes:
    raw = text.encode()
    return bytes([pid]) + len(raw).to_bytes(2, "big") + raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _publish(qos: int, props: bytes, payload: bytes, *, mid: int = 0, flags: int = 0,
             topic: bytes = _TOPIC) -> tuple[int, bytes]:
    """A PUBLISH as gmqtt's protocol hands it on: fixed header byte, body after the length."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    return 0x30 | (qos << 1) | flags, body + _varint(len(props)) + props + payload


def synthetic_publishes() -> list[tuple[str, int, bytes, bool]]:
    """(what, fixed header, body, whether the lean path must take it): the shapes the hub gets."""
    ctype = _prop_str(0x03, "application/msgpack")
    who = b"\x26" + _prop_str(0, "l4mon-client")[1:] + _prop_str(0, "vé-1")[1:]
    other = b"\x26" + _prop_str(0, "site")[1:] + _prop_str(0, "s")[1:]
    many = (b"\x01\x01" + b"\x02" + (60).to_bytes(4, "big") + ctype + who + other
            + _prop_str(0x08, "reply/to") + b"\x09\x00\x02\x00\xff" + b"\x0b" + _varint(300))
    long_value = b"\x26" + _prop_str(0, "note")[1:] + _prop_str(0, "x" * 200)[1:]
    return [
        ("QoS 0", *_publish(0, b"", b'{"seq":1}'), True),
        ("QoS 0 retained, empty payload", *_publish(0, b"", b"", flags=1), True),
        ("QoS 0 with content type", *_publish(0, ctype, b"\x81\xa3seq\x01"), True),
        ("QoS 0 with content type and identity", *_publish(0, ctype + who, b"\x00\x01"), True),
        ("QoS 1", *_publish(1, b"", b'{"kind":"mrm"}', mid=0x0102), True),
        ("QoS 1 redelivered, retained", *_publish(1, b"", b"{}", mid=0xFFFE, flags=9), True),
        ("QoS 1 with content type", *_publish(1, ctype, b"\x80", mid=7), True),
        ("QoS 1 with content type, identity and more", *_publish(1, many, b"\x80", mid=0x0A0B),
         True),
        ("QoS 1 with a property block over 127 bytes", *_publish(1, long_value, b"{}", mid=9),
         True),
        ("QoS 0 with a topic alias", *_publish(0, b"\x23\x00\x01", b"{}"), False),
    ]


#: One message as a path yields it: topic, payload, content type, user properties, QoS, the
#: packet id acknowledged, and whether that PUBACK was already sent when the hub got it.
Seen = tuple[str, bytes, "str | None", tuple[tuple[str, str], ...], int, "int | None", bool]


def _scratch_client(sent: list[tuple[int, int]], **options: Any) -> Any:
    """A gmqtt client that never connects; the PUBACKs it would send land in ``sent``."""
    client = gmqtt.Client("l4mon-self-check", **options)
    client._connection = SimpleNamespace(  # what send_command_with_mid writes to
        send_command_with_mid=lambda cmd, mid, _dup, reason_code=0: sent.append((cmd, mid)))
    return client


def _gmqtt_parse(cmd: int, body: bytes) -> list[Seen]:
    """What gmqtt itself makes of a packet: its on_message arguments and the PUBACK it sends."""
    sent: list[tuple[int, int]] = []
    seen: list[Seen] = []
    client = _scratch_client(sent)

    def on_message(_c: Any, topic: str, payload: bytes, qos: int, props: dict) -> int:
        content_type = props.get("content_type")
        seen.append((topic, payload, content_type[0] if content_type else None,
                     tuple(props.get("user_property") or ()), qos, None, False))
        return 0

    client.on_message = on_message
    client._package_handler._handle_packet(cmd, body)
    acked = [mid for command, mid in sent if command == _PUBACK]
    return [(*s[:5], acked[0] if acked else None, False) for s in seen]


def _lean_parse(cmd: int, body: bytes, *, identity: bool) -> tuple[list[Seen], bool]:
    """What a client with the lean path installed yields for a packet, and whether the lean
    path (rather than gmqtt's, which it falls through to) took it."""
    sent: list[tuple[int, int]] = []
    seen: list[Seen] = []
    lean_took = False
    client = _scratch_client(sent)

    def on_message(_c: Any, topic: str, payload: bytes, qos: int, props: dict) -> int:
        content_type = props.get("content_type")
        seen.append((topic, payload, content_type[0] if content_type else None,
                     tuple(props.get("user_property") or ()) if identity else (), qos,
                     sent[-1][1] if sent else None, False))
        return 0

    def take(delivery: Delivery, users: Sequence[tuple[str, str]],
             ack: Callable[[], None] | None) -> None:
        nonlocal lean_took
        lean_took = True
        early = bool(sent)  # a PUBACK before the hub even has the message
        mid = None
        if ack is not None:
            ack()
            mid = sent[-1][1] if sent and sent[-1][0] == _PUBACK else None
        seen.append((*delivery, tuple(users), 1 if ack is not None else 0, mid, early))

    client.on_message = on_message
    if identity:
        installed = install_lean_publish(
            client, lambda _d, _a=None: None,
            lambda delivery, users, ack=None: take(delivery, users, ack))
    else:
        installed = install_lean_publish(
            client, lambda delivery, ack=None: take(delivery, (), ack))
    if not installed:
        raise RuntimeError("could not be installed")
    client._package_handler._handle_packet(cmd, body)
    return seen, lean_took


def check_lean_path() -> str | None:
    """Feed every synthetic PUBLISH through the lean path and through gmqtt's own, with and
    without the identity check; None when all agree, else what differed."""
    for what, cmd, body, lean_must_take in synthetic_publishes():
        expected = _gmqtt_parse(cmd, body)
        if not expected:
            return f"{what}: gmqtt's own path yielded nothing (self-check outdated?)"
        for identity in (False, True):
            mode = " (identity check on)" if identity else ""
            got, took = _lean_parse(cmd, body, identity=identity)
            want = expected if identity else [(*e[:3], (), *e[4:]) for e in expected]
            if got != want:
                return f"{what}{mode}: lean path gave {got!r}, gmqtt's own {want!r}"
            if took != lean_must_take:
                return (f"{what}{mode}: the lean path "
                        f"{'did not take' if lean_must_take else 'took'} it")
    return None


async def check_own_path_acks() -> str | None:
    """gmqtt's own path with ``optimistic_acknowledgement=False`` and a coroutine on_message:
    None when it sends a QoS 1 PUBACK only after on_message returned, else what it did."""
    sent: list[tuple[int, int]] = []
    client = _scratch_client(sent, optimistic_acknowledgement=False)
    release = asyncio.Event()
    got: list[str] = []

    async def on_message(_c: Any, topic: str, _payload: bytes, _qos: int, _props: dict) -> int:
        got.append(topic)
        await release.wait()
        return 0

    client.on_message = on_message
    client._package_handler._handle_packet(*_publish(1, b"", b"{}", mid=0x0304))
    for _ in range(5):
        await asyncio.sleep(0)
    if not got:
        return "on_message was not called"
    if sent:
        return f"PUBACK sent before on_message returned: {sent!r}"
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    if sent != [(_PUBACK, 0x0304)]:
        return f"after on_message returned, sent {sent!r} instead of one PUBACK for 0x0304"
    return None


async def self_check(settings: MqttSettings, status: MqttStatus) -> None:
    """Before the first connection: is the lean path still right for the installed gmqtt, does
    gmqtt's own path acknowledge after processing, and does the bounded reader split streams
    as gmqtt's own loop does? Records all three; a failure is logged as a warning and turns
    that part off (the hub then runs on gmqtt's own path or reader)."""
    status.client = ("gmqtt", VERSION)
    try:
        bounded = _bounded_read.check_reader(status.max_packet_bytes or 20_480)
    except Exception as exc:  # internals moved: any failure is a reason not to swap them
        bounded = f"self-check raised {type(exc).__name__}: {exc}"
    if bounded is None:
        status.set_bounded_read(True)
    else:
        bounded = f"gmqtt {VERSION} failed the bounded-reader self-check: {bounded}"
        log.warning("bounded packet reader OFF, gmqtt reads every packet whole (one oversized "
                    "message can hold up all others): %s", bounded)
        status.set_bounded_read(False, bounded)
    try:
        reason = check_lean_path()
    except Exception as exc:  # internals moved: any failure is a reason not to patch them
        reason = f"self-check raised {type(exc).__name__}: {exc}"
    if reason is None:
        status.set_lean_path(True)
        status.set_ack(LEAN, True)
    else:
        reason = f"gmqtt {VERSION} failed the lean-path self-check: {reason}"
        log.warning("lean PUBLISH path OFF, using gmqtt's own (slower): %s", reason)
        status.set_lean_path(False, reason)
        status.drop_ack(LEAN)
    try:
        own = await check_own_path_acks()
    except Exception as exc:
        own = f"could not be verified: {type(exc).__name__}: {exc}"
    if own is None:
        status.set_ack(GMQTT, True)
    else:
        own = f"gmqtt {VERSION}'s own path: {own}"
        log.warning("QoS 1 events on gmqtt's own path may be acknowledged before they are "
                    "processed: %s", own)
        status.set_ack(GMQTT, False, own)


def retained_screen(handler: Any, guard: TransportGuard) -> RetainedScreen:
    """The lean path's look at a retained PUBLISH: one on an event topic is refused and its
    QoS 1 PUBACK sent at once; any other (or one it cannot read: gmqtt's path reads it, and
    ``own_path_handler`` looks again) goes on."""

    def screen(cmd: int, packet: bytes) -> bool:
        if len(packet) < 2:
            return False
        end = 2 + ((packet[0] << 8) | packet[1])
        try:
            topic = packet[2:end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        if not is_event_topic(topic):
            return False
        qos = (cmd >> 1) & 0x03
        if qos > 1:
            return False  # never subscribed to; gmqtt's path has the QoS 2 handshake
        at = end + 2 if qos else end
        props = _properties(packet, at) if at < len(packet) else None
        if props is None:
            return False
        guard.retained_event(topic, packet[props[2]:])
        if qos:
            handler._send_puback((packet[end] << 8) | packet[end + 1])
        return True

    return screen


def refuse_oversized(handler: Any, guard: TransportGuard
                     ) -> Callable[[_bounded_read.Refused], None]:
    """What the bounded reader does with a packet over the bound once it has gone by: a QoS 1
    PUBLISH is acknowledged (sent again, it would only be refused again; unacknowledged, the
    broker would send it again at every reconnect), and it is quarantined and counted."""

    def refuse(refused: _bounded_read.Refused) -> None:
        if refused.packet_id is not None:
            if refused.qos == 1:
                handler._send_puback(refused.packet_id)
            elif refused.qos == 2:
                handler._send_pubrec(refused.packet_id)
        guard.oversized(refused)

    return refuse


def qos1_sender(client: Any) -> Send:
    """A sender for ``MqttPublisher`` on this client: a QoS 1 PUBLISH whose await ends with the
    broker's PUBACK reason code. gmqtt's own ``publish`` returns nothing and tells nobody of
    the PUBACK, so this builds the packet with gmqtt's connection (which numbers it) and
    watches PUBACKs through the package handler (its dispatch looks the method up by name,
    so the instance attribute is what runs). Pinned gmqtt, like the lean path."""
    handler = client._package_handler
    original = handler._handle_puback_packet
    waiting: dict[int, asyncio.Future[int]] = {}

    def on_puback(cmd: int, packet: bytes) -> None:
        mid = (packet[0] << 8) | packet[1]
        done = waiting.pop(mid, None)
        if done is not None and not done.done():
            done.set_result(packet[2] if len(packet) > 2 else 0)  # v5: the reason code
        original(cmd, packet)

    handler._handle_puback_packet = on_puback
    handler._handler_cache.pop(_PUBACK, None)

    async def send(topic: str, payload: bytes) -> int:
        mid, _ = client._connection.publish(gmqtt.Message(topic, payload, qos=1))
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        waiting[mid] = done
        try:
            return await done
        finally:
            waiting.pop(mid, None)

    return send


async def run_session(settings: MqttSettings, deliver: Deliver,
                      connected: Callable[[], None], checked: Checked | None,
                      status: MqttStatus, guard: TransportGuard,
                      publisher: MqttPublisher | None = None) -> None:
    """One connection. The lean path and the bounded reader are installed only if
    ``self_check`` passed (``status``). The hub announces ``guard.max_packet`` as its MQTT 5
    Maximum Packet Size, so a broker that honours it never sends a larger packet; the bounded
    reader refuses one from a broker that does not (or an MQTT 3.1.1 session). With
    ``publisher``, the hub publishes (commands) on this connection while it is up."""
    host, port, _ = parse_url(settings.url)
    client = gmqtt.Client(settings.client_id, clean_session=False,
                          optimistic_acknowledgement=False,
                          session_expiry_interval=settings.session_expiry_s,
                          maximum_packet_size=guard.max_packet)
    # The supervisor owns reconnecting. gmqtt reconnects while ``failed_connections <=
    # reconnect_retries``, so 0 still allows one retry, ~6 s after a loss: that stale client
    # then kicks the supervisor's new one off (same client id), and each kick breeds another
    # (bench/faults.py, broker restart). -2 (not -1, which is "unlimited") allows none.
    client.set_config({"reconnect_retries": -2})
    if settings.username:
        client.set_auth_credentials(settings.username, settings.password)
    lost = asyncio.Event()
    pending: set[asyncio.Future[None]] = set()

    def on_disconnect(_client: Any, packet: Any, _exc: Any = None) -> None:
        # The broker's DISCONNECT (its reason code first); the socket's close comes as an
        # empty one, and a refused CONNACK as an exception object.
        if isinstance(packet, (bytes, bytearray)) and packet[:1] == bytes([SESSION_TAKEN_OVER]):
            log.error("the broker handed this hub's session (client id %r) to another client",
                      settings.client_id)
            guard.session_taken_over()
        lost.set()

    handler = client._package_handler
    client.on_message = own_path_handler(deliver, checked, pending, guard)
    client.on_disconnect = on_disconnect
    # Installed before connecting: a persistent session's queued events arrive right after the
    # CONNACK, before connect() returns.
    if status.lean_path and not install_lean_publish(
            client, deliver, checked, retained=retained_screen(handler, guard)):
        status.set_lean_path(False, f"gmqtt {VERSION}: package handler internals not found")
        status.drop_ack(LEAN)
    if status.bounded_read:
        _bounded_read.install(client, limit=guard.max_packet,
                              refuse=refuse_oversized(handler, guard),
                              unavailable=lambda why: status.set_bounded_read(
                                  False, f"gmqtt {VERSION}: {why}"),
                              closed_by_broker=guard.closed_by_broker)
    await client.connect(host, port, ssl=tls_context(settings) or False,
                         keepalive=settings.keepalive_s)
    try:
        if client._connection_state.protocol_version != MQTTv50:  # see install_lean_publish
            vars(client._package_handler).pop("_handle_packet", None)  # gmqtt's own again
            status.set_lean_path(False, "MQTT 3.1.1 session: the lean path reads MQTT v5")
            status.drop_ack(LEAN)
            status.set_ack(GMQTT, False, "MQTT 3.1.1 session: gmqtt acknowledges on receipt")
        # no_local: the hub's own commands (under the vehicle filter) are not sent back to it
        # (MQTT 5 forbids it on a shared subscription; the hub drops its own there).
        client.subscribe([gmqtt.Subscription(t, qos=1, no_local=not t.startswith("$share/"))
                          for t in settings.topics()])
        if publisher is not None:
            publisher.attach(qos1_sender(client))
        connected()
        await lost.wait()
    finally:
        if publisher is not None:
            publisher.detach()
        if client.is_connected:
            await client.disconnect()
        # This connection is closed: a PUBACK now goes nowhere, so the waits can end (messages
        # the buffer dropped never run their ``then``) and their tasks finish instead of being
        # destroyed pending; the broker sends the unacknowledged events again next session.
        if _closed(client):
            for done in list(pending):
                _settle(done)


def _closed(client: Any) -> bool:
    """Whether the client's connection is closed for good (unknown internals: say no)."""
    connection = getattr(client, "_connection", None)
    is_closing = getattr(connection, "is_closing", None)
    return bool(is_closing()) if callable(is_closing) else False
