"""Console sessions (``/ws``) tied to the token that opened them: a session whose token is
revoked (``l4mon token revoke``) or expires is closed, not left streaming to whoever holds it.

One watcher runs while any session is open: it wakes when the token store saw the journal's
tokens change (a request noticed it) and at least every ``check_s`` (nobody made a request),
re-reads the tokens if they changed and ends the sessions whose token no longer holds. It stops
when the last session ends, so an idle hub runs nothing for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from starlette.websockets import WebSocket

from l4mon.auth import Principal, TokenStore

log = logging.getLogger("l4mon.live")

#: The close frame a session gets when its token stops holding (1008: policy violation).
REVOKED: Final = (1008, "token revoked or expired")


class TokenSessions:
    """Open sessions by principal; see the module docstring."""

    def __init__(self, tokens: TokenStore, clock: Callable[[], float], *,
                 spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Exception | None]],
                 check_s: float = 1.0) -> None:
        #: Starts the sessions' tasks in the console stream's group (l4mon/console_stream.py).
        self.spawn = spawn
        self.tokens = tokens
        self.clock = clock
        self.check_s = check_s
        self._open: dict[asyncio.Task[Exception | None], Principal] = {}
        self._ended: set[asyncio.Task[Exception | None]] = set()
        self._changed = asyncio.Event()
        self._watcher: asyncio.Task[Exception | None] | None = None
        #: Sessions closed because their token stopped holding.
        self.closed = 0
        tokens.on_change.append(self._changed.set)

    def __len__(self) -> int:
        return len(self._open)

    async def hold(self, principal: Principal, websocket: WebSocket,
                   session: Coroutine[Any, Any, None]) -> None:
        """Run ``session`` (an accepted socket's stream) until it ends, or until
        ``principal``'s token stops holding: then it is cancelled and the socket closed."""
        task = self.spawn(session)
        self._open[task] = principal
        if self._watcher is None or self._watcher.done():
            self._watcher = self.spawn(self._watch())
        try:
            await asyncio.wait([task])
        finally:
            del self._open[task]
            if not task.done():  # this handler itself was cancelled (server shutdown)
                task.cancel()
            if not self._open and self._watcher is not None:
                self._watcher.cancel()
        if task in self._ended:
            self._ended.discard(task)
            self.closed += 1
            log.info("console session of %s closed: %s", principal.name, REVOKED[1])
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(*REVOKED), timeout=1.0)
        elif not task.cancelled() and (error := task.result()) is not None:
            raise error

    async def _watch(self) -> None:
        while self._open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.check_s)
            self._changed.clear()
            now = self.clock()
            self.tokens.refresh(now)
            for task, principal in list(self._open.items()):
                if not task.done() and not self.tokens.holds(principal, now):
                    self._ended.add(task)
                    task.cancel()
