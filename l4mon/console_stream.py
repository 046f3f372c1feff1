"""The live stream to consoles: one sender task per client, so no client can slow the hub.

The hub side only appends to per-client queues (O(1), never awaits). Alert frames are queued
in full and never dropped; a client that lets more than ``max_queued_frames`` of them (or
``max_queued_bytes``) pile up, or whose send has not gone out for ``send_stall_s``, is told
why (1013) and disconnected, since an operator must not silently miss a takeover. State
frames are built once per interval for everyone and coalesced: a slow client just gets fewer
of them; so are pongs, so pinging without reading queues nothing. Each frame is encoded to
text once for every client. Bounds below the application (frame rate, linger on close):
l4mon/console_socket.py; how many sockets at all: l4mon/seats.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from l4mon.config import ConsoleSettings
from l4mon.console_socket import SocketCounts
from l4mon.records.alert import Alert, Transition
from l4mon.seats import Seats
from l4mon.store.journal import JournalError

log = logging.getLogger("l4mon.live")

Snapshot = Callable[[], dict[str, Any]]

#: RFC 6455 "try again later": the console reconnects with last_seq and catches up.
TRY_AGAIN_LATER = 1013
#: RFC 6455 "unsupported data": the console sends JSON text frames only.
UNSUPPORTED_DATA = 1003


def _text(body: dict[str, Any]) -> str:
    return msgspec.json.encode(body).decode("utf-8")


class Client:
    """One console's queues. ``too_slow`` (why, once set) ends it."""

    __slots__ = ("alerts", "bounds", "closing", "pong_due", "queued_bytes", "sender",
                 "sending_since", "sent_seq", "state", "too_slow", "wake", "websocket")

    def __init__(self, websocket: WebSocket, *, bounds: ConsoleSettings) -> None:
        self.websocket = websocket
        self.bounds = bounds
        self.alerts: deque[str] = deque()
        self.queued_bytes = 0  # of the alert frames queued; frames are shared between clients
        self.state: str | None = None  # the newest state frame not yet sent
        self.pong_due = False  # coalesced like state: a thousand pings earn one pong
        self.wake = asyncio.Event()
        self.sent_seq = 0
        self.too_slow: str | None = None
        #: When the send in progress started (the broadcaster's clock); None between sends.
        self.sending_since: float | None = None
        #: (code, reason) of the close frame the hub ends this socket with, when it does.
        self.closing: tuple[int, str] | None = None
        self.sender: asyncio.Task[Exception | None] | None = None

    def push_alert(self, frame: str, seq: int) -> None:
        if self.too_slow is not None or (seq and seq <= self.sent_seq):
            return  # being disconnected; or already sent during resume
        bounds = self.bounds
        if len(self.alerts) >= bounds.max_queued_frames:
            self.drop(f"more than {bounds.max_queued_frames} alert frames behind")
            return
        if self.queued_bytes + len(frame) > bounds.max_queued_bytes:
            self.drop(f"more than {bounds.max_queued_bytes} bytes of alert frames behind")
            return
        self.alerts.append(frame)
        self.queued_bytes += len(frame)
        self.wake.set()

    def pop_alert(self) -> str:
        frame = self.alerts.popleft()
        self.queued_bytes -= len(frame)
        return frame

    def push_state(self, frame: str) -> None:
        self.state = frame  # coalesced: only the newest matters
        self.wake.set()

    def drop(self, why: str) -> None:
        """Too slow: the sender may be stuck inside a send to a client that stopped reading,
        where it would never see a flag, so it is cancelled from here; ``serve`` then closes
        the socket with the reason."""
        self.too_slow = why
        if self.sender is not None:
            self.sender.cancel()


class Broadcaster:
    """Fan-out of alert transitions (immediately) and fleet state (every ``interval_s``)."""

    def __init__(self, *, state_frame: Callable[[], Awaitable[dict[str, Any] | None]],
                 clock: Callable[[], float], interval_s: float = 0.5,
                 bounds: ConsoleSettings | None = None) -> None:
        self.state_frame = state_frame
        self.clock = clock
        self.interval_s = interval_s
        self.bounds = bounds if bounds is not None else ConsoleSettings()
        self.seats = Seats(total=self.bounds.max_connections,
                           per_owner=self.bounds.max_connections_per_token)
        self.clients: set[Client] = set()
        #: What the sockets' own bounds did (l4mon/console_socket.py).
        self.sockets = SocketCounts()
        self.seq = 0  # the newest alert transition seq
        self.frames_sent = 0
        self.disconnected_slow = 0
        #: The group ``run`` holds open: each console's tasks are its children, so the live
        #: process's task group owns them and stopping the process ends them.
        self._group: asyncio.TaskGroup | None = None

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[Exception | None]:
        """Start a console's task in the stream's group. A console's failure is its own: the
        task's result is what it raised (None: nothing), for its handler to act on, never the
        group's to propagate. With no stream running (an app tested without the live
        process) the task runs on its own."""
        if self._group is None:
            return asyncio.create_task(_contained(work))
        return self._group.create_task(_contained(work))

    def alert(self, transition: Transition, alert: Alert) -> None:
        """An engine listener: called after the transition is journaled."""
        self.seq = max(self.seq, transition.seq)
        frame = _text({"type": "alert", "seq": transition.seq,
                       "transition": transition.to_dict(), "alert": alert.to_dict()})
        for client in self.clients:
            client.push_alert(frame, transition.seq)

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        frame = _text({"type": kind, "seq": self.seq, **body})
        for client in self.clients:
            client.push_state(frame) if kind == "state" else client.push_alert(frame, 0)

    async def run(self) -> None:
        """Every interval: close the consoles whose send is stuck, then build and fan out a
        state frame while anyone is watching."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                while True:
                    await asyncio.sleep(self.interval_s)
                    self.drop_stalled()
                    if self.clients:
                        body = await self.state_frame()
                        if body is not None:
                            self.publish("state", body)
            finally:
                self._group = None

    def drop_stalled(self) -> None:
        """A console whose send has not gone out for ``send_stall_s`` stopped reading (its
        socket's buffer is full): it is closed rather than held, however few alerts wait."""
        stall = self.bounds.send_stall_s
        cutoff = self.clock() - stall
        for client in self.clients:
            since = client.sending_since
            if since is not None and since < cutoff and client.too_slow is None:
                client.drop(f"no frame went out for {stall:g} s")

    async def serve(self, websocket: WebSocket, *, snapshot: Snapshot,
                    missed: Callable[[int], list[tuple[Transition, Alert]]],
                    last_seq: int | None) -> None:
        """Run one accepted WebSocket until it closes (or is closed for being too slow)."""
        client = Client(websocket, bounds=self.bounds)
        self.clients.add(client)  # before reading the journal, so nothing falls in between
        reader = self.spawn(self._read(client))
        client.sender = self.spawn(self._send_loop(client, snapshot, missed, last_seq))
        try:
            await asyncio.wait([reader, client.sender], return_when=asyncio.FIRST_COMPLETED)
            if client.too_slow is not None:
                self.disconnected_slow += 1
                log.warning("console disconnected as too slow: %s", client.too_slow)
                client.closing = (TRY_AGAIN_LATER,
                                  f"too slow: {client.too_slow}; reconnect with last_seq")
            if client.closing is not None:
                code, reason = client.closing
                # The socket's protocol writes a close at once and aborts the socket after
                # its linger (l4mon/console_socket.py); the timeout guards any other server.
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
                    await self._send(client, _text({
                        "type": "alert", "seq": transition.seq,
                        "transition": transition.to_dict(), "alert": alert.to_dict()}))
                    client.sent_seq = max(client.sent_seq, transition.seq)
            await self._send(client, _text({"type": "snapshot", "seq": self.seq,
                                            **snapshot()}))
            while True:
                await client.wake.wait()
                client.wake.clear()
                while client.alerts:
                    await self._send(client, client.pop_alert())
                if client.pong_due:
                    client.pong_due = False
                    await self._send(client, _text({"type": "pong", "seq": self.seq}))
                if client.state is not None:
                    frame, client.state = client.state, None
                    await self._send(client, frame)
        except JournalError:
            # Resuming needs the journal (missed transitions): said, with a code the console
            # retries on, rather than a socket that just drops (JournalError is a RuntimeError).
            client.closing = (TRY_AGAIN_LATER, "alert journal unavailable; retry shortly")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away

    async def _send(self, client: Client, frame: str) -> None:
        client.sending_since = self.clock()
        await client.websocket.send_text(frame)
        client.sending_since = None
        self.frames_sent += 1

    async def _read(self, client: Client) -> None:
        """Answer pings (one pong per batch of them); end when the client disconnects. How
        much a client may send at all is bounded below (l4mon/console_socket.py)."""
        try:
            while True:
                text = await client.websocket.receive_text()
                with contextlib.suppress(msgspec.DecodeError, AttributeError):
                    if msgspec.json.decode(text).get("type") == "ping":
                        client.pong_due = True
                        client.wake.set()
        except KeyError:  # Starlette's receive_text on a binary frame
            client.closing = (UNSUPPORTED_DATA, "the console sends JSON text frames only")
        except (WebSocketDisconnect, RuntimeError):
            pass


async def _contained(work: Coroutine[Any, Any, None]) -> Exception | None:
    """A console's task as a child of the stream's group: what it raises is its result, for
    the console's handler, and not the group's to propagate (it would stop the process)."""
    try:
        await work
    except Exception as error:
        return error
    return None
