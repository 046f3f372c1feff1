"""The console socket's own bounds, below the application: what uvicorn's WebSocket protocol
(``websockets-sansio``) leaves unbounded, for a peer that floods or stops reading.

* Every frame a console sends (messages, WebSocket pings and pongs alike) is counted against
  a token bucket. uvicorn answers pings itself, writing each pong whether or not the peer
  reads: a ping flood without reading grew the hub's memory without bound. A real console
  sends one message every 2 s, so a peer over ``max_frames_per_s`` is closed with 1008.
* A close never waits for the peer to read: the close frame is queued whatever the write
  buffer holds, and a socket still open ``close_linger_s`` after it was closed is aborted.
  asyncio's ``close()`` waits for the peer to take every buffered byte, which one that does
  not read never does: sockets closed as "too slow" stayed open, and a SIGTERM'd hub waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from l4mon.config import ConsoleSettings

#: Close codes: the peer broke a bound of ours (RFC 6455 7.4.1).
POLICY_VIOLATION = 1008


@dataclass
class SocketCounts:
    """What the sockets' own bounds did since start (``/metrics``)."""

    #: Closed with 1008 for sending more frames than the budget.
    flooding: int = 0


class FrameBudget:
    """A token bucket over frames received: ``burst`` at once, ``rate`` per second after."""

    __slots__ = ("_at", "_clock", "_left", "burst", "rate")

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._left = float(burst)
        self._at = clock()

    def take(self) -> bool:
        """Spend one frame; False when the budget is gone."""
        now = self._clock()
        self._left = min(self.burst, self._left + max(0.0, now - self._at) * self.rate)
        self._at = now
        if self._left < 1.0:
            return False
        self._left -= 1.0
        return True


class LingerBoundTransport(asyncio.Transport):
    """The socket's transport, whose ``close()`` ends in ``abort()`` after ``linger_s``: by
    then a peer that reads has taken the close frame, and one that does not never will."""

    def __init__(self, inner: asyncio.Transport, *, linger_s: float,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.inner = inner
        self.linger_s = linger_s
        self._loop = loop
        self._abort: asyncio.TimerHandle | None = None

    def close(self) -> None:
        self.inner.close()
        if self._abort is None:
            self._abort = self._loop.call_later(self.linger_s, self.inner.abort)

    def lost(self) -> None:
        """The connection is gone: nothing left to abort."""
        if self._abort is not None:
            self._abort.cancel()

    def abort(self) -> None:
        self.inner.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(data)

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)


class BoundedConsoleProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with the bounds above. Made per hub by
    ``console_protocol`` (uvicorn builds the protocol itself, from its class)."""

    bounds: ClassVar[ConsoleSettings] = ConsoleSettings()
    clock: ClassVar[Callable[[], float]]
    counts: ClassVar[SocketCounts]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's fixed 10 s for the peer's close reply becomes ours.
        self.close_timeout = self.bounds.close_linger_s
        self.budget = FrameBudget(rate=self.bounds.max_frames_per_s,
                                  burst=self.bounds.frame_burst, clock=type(self).clock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport = cast(asyncio.Transport, transport)  # uvloop's is one, without the base
        transport.set_write_buffer_limits(high=self.bounds.write_buffer_bytes)
        self.transport = LingerBoundTransport(transport, linger_s=self.bounds.close_linger_s,
                                              loop=self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(self.transport, LingerBoundTransport):
            self.transport.lost()
        super().connection_lost(exc)

    # Every frame from the peer passes ``_admit`` first.

    def handle_text(self, event: Frame) -> None:
        if self._admit():
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if self._admit():
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if self._admit():
            super().handle_cont(event)

    def handle_ping(self) -> None:
        if self._admit():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._admit():
            super().handle_pong(event)

    def _admit(self) -> bool:
        if self.close_sent or self.transport.is_closing():
            return False  # being closed: nothing more is read or answered
        if self.budget.take():
            return True
        self.counts.flooding += 1
        self._fail(POLICY_VIOLATION, "too many frames; the console sends one every 2 s")
        return False

    def _fail(self, code: int, reason: str) -> None:
        """Close now, not waiting for the peer: the close frame (and any pongs websockets
        already queued) go into the buffer, reading stops, the socket is aborted after the
        linger."""
        self.conn.fail(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.close()

    async def send(self, message: Any) -> None:
        # A close from the application is written at once: uvicorn would first wait for
        # the write buffer to drain, which for a peer that stopped reading is never.
        if (message["type"] == "websocket.close" and self.handshake_complete
                and self.initial_response is None and not self.close_sent
                and not self.disconnected and not self.transport.is_closing()):
            code = message.get("code", 1000)
            reason = message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code,
                                   "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            # No reply within the linger: the peer is not reading, so nothing is left to wait
            # for (a reply cancels this and closes gracefully, uvicorn's handle_close).
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)
            return
        await super().send(message)


def console_protocol(bounds: ConsoleSettings, clock: Callable[[], float],
                     counts: SocketCounts) -> type[BoundedConsoleProtocol]:
    """The protocol class uvicorn is given (``ws=``), with this hub's bounds, clock and
    counts (uvicorn builds each protocol itself, from the class)."""
    return type("ConsoleProtocol", (BoundedConsoleProtocol,),
                {"bounds": bounds, "clock": staticmethod(clock), "counts": counts})
