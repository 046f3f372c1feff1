"""The live stream to consoles: one sender task per client, so no client can slow the hub.

The hub side only appends to per-client queues (O(1), never awaits). Alert frames are queued
in full and never dropped; a client that lets more than ``max_alert_backlog`` of them pile up
is told why and disconnected, since an operator must not silently miss a takeover. State frames
are built once per interval for everyone and coalesced: a slow client just gets fewer of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from l4mon.alerts.journal import JournalError
from l4mon.alerts.model import Alert, Transition

log = logging.getLogger("l4mon.live")

Snapshot = Callable[[], dict[str, Any]]


class Client:
    def __init__(self, websocket: WebSocket, *, max_alert_backlog: int) -> None:
        self.websocket = websocket
        self.alerts: deque[bytes] = deque()
        self.max_alert_backlog = max_alert_backlog
        self.state: bytes | None = None  # the newest state frame not yet sent
        self.wake = asyncio.Event()
        self.sent_seq = 0
        self.too_slow = False
        #: (code, reason) of the close frame the hub ends this socket with, when it does.
        self.closing: tuple[int, str] | None = None
        self.sender: asyncio.Task[None] | None = None

    def push_alert(self, frame: bytes, seq: int) -> None:
        if self.too_slow or (seq and seq <= self.sent_seq):
            return  # being disconnected; or already sent during resume
        if len(self.alerts) >= self.max_alert_backlog:
            # The sender may be stuck inside a send to a client that stopped reading: it would
            # never see a flag, so it is cancelled from here and the socket closed with a reason.
            self.too_slow = True
            if self.sender is not None:
                self.sender.cancel()
            return
        self.alerts.append(frame)
        self.wake.set()

    def push_state(self, frame: bytes) -> None:
        self.state = frame  # coalesced: only the newest matters
        self.wake.set()


class Broadcaster:
    """Fan-out of alert transitions (immediately) and fleet state (every ``interval_s``)."""

    def __init__(self, *, state_frame: Callable[[], Awaitable[dict[str, Any] | None]],
                 interval_s: float = 0.5, max_alert_backlog: int = 1_000) -> None:
        self.state_frame = state_frame
        self.interval_s = interval_s
        self.max_alert_backlog = max_alert_backlog
        self.clients: set[Client] = set()
        self.seq = 0  # the newest alert transition seq
        self.frames_sent = 0
        self.disconnected_slow = 0

    def alert(self, transition: Transition, alert: Alert) -> None:
        """An engine listener: called after the transition is journaled."""
        self.seq = max(self.seq, transition.seq)
        frame = msgspec.json.encode({"type": "alert", "seq": transition.seq,
                                     "transition": transition.to_dict(),
                                     "alert": alert.to_dict()})
        for client in self.clients:
            client.push_alert(frame, transition.seq)

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        frame = msgspec.json.encode({"type": kind, "seq": self.seq, **body})
        for client in self.clients:
            client.push_state(frame) if kind == "state" else client.push_alert(frame, 0)

    async def run(self) -> None:
        """Build and fan out a state frame every interval while anyone is watching."""
        while True:
            await asyncio.sleep(self.interval_s)
            if self.clients:
                body = await self.state_frame()
                if body is not None:
                    self.publish("state", body)

    async def serve(self, websocket: WebSocket, *, snapshot: Snapshot,
                    missed: Callable[[int], list[tuple[Transition, Alert]]],
                    last_seq: int | None) -> None:
        """Run one accepted WebSocket until it closes (or is closed for being too slow)."""
        client = Client(websocket, max_alert_backlog=self.max_alert_backlog)
        self.clients.add(client)  # before reading the journal, so nothing falls in between
        reader = asyncio.create_task(self._read(client))
        client.sender = asyncio.create_task(self._send_loop(client, snapshot, missed, last_seq))
        try:
            await asyncio.wait([reader, client.sender], return_when=asyncio.FIRST_COMPLETED)
            if client.too_slow:
                self.disconnected_slow += 1
                log.warning("console disconnected: more than %d alert frames behind",
                            self.max_alert_backlog)
                client.closing = (1013, "too slow for alert frames; reconnect with last_seq")
            if client.closing is not None:
                code, reason = client.closing
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(code=code, reason=reason),
                                           timeout=1.0)
        finally:
            self.clients.discard(client)
            for task in (reader, client.sender):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _send_loop(self, client: Client, snapshot: Snapshot,
                         missed: Callable[[int], list[tuple[Transition, Alert]]],
                         last_seq: int | None) -> None:
        try:
            if last_seq is not None:
                for transition, alert in missed(last_seq):
                    await self._send(client, msgspec.json.encode({
                        "type": "alert", "seq": transition.seq,
                        "transition": transition.to_dict(), "alert": alert.to_dict()}))
                    client.sent_seq = max(client.sent_seq, transition.seq)
            await self._send(client, msgspec.json.encode(
                {"type": "snapshot", "seq": self.seq, **snapshot()}))
            while True:
                await client.wake.wait()
                client.wake.clear()
                while client.alerts:
                    await self._send(client, client.alerts.popleft())
                if client.state is not None:
                    frame, client.state = client.state, None
                    await self._send(client, frame)
        except JournalError:
            # Resuming needs the journal (missed transitions): said, with a code the console
            # retries on, rather than a socket that just drops (JournalError is a RuntimeError).
            client.closing = (1013, "alert journal unavailable; retry shortly")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away

    async def _send(self, client: Client, frame: bytes) -> None:
        await client.websocket.send_text(frame.decode("utf-8"))
        self.frames_sent += 1

    async def _read(self, client: Client) -> None:
        """Answer pings; end when the client disconnects."""
        try:
            while True:
                text = await client.websocket.receive_text()
                with contextlib.suppress(msgspec.DecodeError):
                    if msgspec.json.decode(text).get("type") == "ping":
                        client.alerts.append(msgspec.json.encode({"type": "pong",
                                                                  "seq": self.seq}))
                        client.wake.set()
        except (WebSocketDisconnect, RuntimeError, AttributeError):
            pass
