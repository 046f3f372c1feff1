"""How many console sockets may be open: in total and per token, decided before the upgrade.

Each open console costs the hub a sender task, its queues, a socket buffer and a share of
every fan-out; 5,000 of them on one token pushed takeover latency to 357 ms. A
seat is taken before the WebSocket is accepted, with no ``await`` between the count and the
take, so a burst of handshakes cannot overshoot, and given back when the socket ends.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType


class NoSeat(Exception):
    """Refused before the upgrade: ``status`` (429 for the token's cap, 503 for the hub's)
    and ``detail`` for the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Seat:
    """One open console; leaving the ``with`` gives the seat back (once)."""

    __slots__ = ("_seats", "owner")

    def __init__(self, seats: Seats, owner: str) -> None:
        self._seats: Seats | None = seats
        self.owner = owner

    def __enter__(self) -> Seat:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        seats, self._seats = self._seats, None
        if seats is not None:
            seats.give_back(self.owner)


class Seats:
    """Seat counts by owner (a token's name). Not thread-safe: one event loop uses it."""

    def __init__(self, *, total: int, per_owner: int) -> None:
        if total <= 0 or per_owner <= 0:
            raise ValueError("need total > 0 and per_owner > 0")
        self.total = total
        self.per_owner = per_owner
        self.taken: Counter[str] = Counter()
        self.in_use = 0
        #: Handshakes refused since start, by cap ("token", "total"): ``/metrics``.
        self.refused: Counter[str] = Counter()

    def take(self, owner: str) -> Seat:
        """A seat for ``owner``, or ``NoSeat``."""
        if self.taken[owner] >= self.per_owner:
            self.refused["token"] += 1
            raise NoSeat(429, f"this token already has {self.per_owner} console connections "
                              "open (console.max_connections_per_token); close one")
        if self.in_use >= self.total:
            self.refused["total"] += 1
            raise NoSeat(503, f"this hub already serves {self.total} console connections "
                              "(console.max_connections); retry later")
        self.taken[owner] += 1
        self.in_use += 1
        return Seat(self, owner)

    def give_back(self, owner: str) -> None:
        self.in_use -= 1
        self.taken[owner] -= 1
        if self.taken[owner] <= 0:
            del self.taken[owner]
