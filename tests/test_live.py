"""The console fan-out (l4mon/faces/api/live.py) with in-memory sockets: ordering, coalescing, and a
stuck console that must neither slow the others nor lose alerts silently."""

from __future__ import annotations

import asyncio
import json
import time

from l4mon.console_stream import Broadcaster
from l4mon.records.alert import Alert, Transition


class MemorySocket:
    """Stands in for a WebSocket: records what is sent; can be made to stop reading."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[dict] = []
        self.stuck = stuck
        self.closed: tuple[int, str] | None = None
        self._incoming: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()  # a client that stopped reading: the send never ends
        self.sent.append(json.loads(text))

    async def receive_text(self) -> str:
        return await self._incoming.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def _alert(n: int) -> tuple[Transition, Alert]:
    alert = Alert(id=n, rule="both_links_down", title="t", severity="takeover", site="s",
                  vehicle=f"v{n}", link=None, rsu=None, state="raised", raised_at=float(n))
    return Transition(seq=n, alert_id=n, at=float(n), kind="raised", actor=None, detail="",
                      on_duty=[]), alert


async def _no_state() -> None:
    return None


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_snapshot_first_then_alerts_in_order_and_state_coalesced() -> None:
    """A console gets the snapshot, every alert frame in seq order, and only the newest state."""
    async def scenario() -> MemorySocket:
        hub_side = Broadcaster(state_frame=_no_state, clock=time.monotonic)
        ws = MemorySocket()
        task = asyncio.create_task(hub_side.serve(ws, snapshot=lambda: {"vehicles": []},  # type: ignore[arg-type]
                                                  missed=lambda _: [], last_seq=None))
        await _settle()
        for n in range(1, 6):
            hub_side.alert(*_alert(n))
        for k in range(3):  # three state frames before the sender runs: only the last is sent
            hub_side.publish("state", {"vehicles": [{"id": "v", "k": k}]})
        await _settle()
        task.cancel()
        return ws

    ws = asyncio.run(scenario())
    kinds = [f["type"] for f in ws.sent]
    assert kinds[0] == "snapshot"
    assert [f["seq"] for f in ws.sent if f["type"] == "alert"] == [1, 2, 3, 4, 5]
    states = [f for f in ws.sent if f["type"] == "state"]
    assert [s["vehicles"][0]["k"] for s in states] == [2]


def test_resume_sends_missed_alerts_before_the_snapshot_and_never_twice() -> None:
    """Reconnecting with last_seq replays what was missed, then a snapshot, without repeats."""
    async def scenario() -> MemorySocket:
        hub_side = Broadcaster(state_frame=_no_state, clock=time.monotonic)
        ws = MemorySocket()
        missed = [_alert(4), _alert(5)]
        task = asyncio.create_task(hub_side.serve(ws, snapshot=lambda: {},  # type: ignore[arg-type]
                                                  missed=lambda seq: missed if seq == 3 else [],
                                                  last_seq=3))
        await _settle()
        hub_side.alert(*_alert(5))  # raced with the replay: must not be sent twice
        hub_side.alert(*_alert(6))
        await _settle()
        task.cancel()
        return ws

    ws = asyncio.run(scenario())
    assert [(f["type"], f["seq"]) for f in ws.sent] == [
        ("alert", 4), ("alert", 5), ("snapshot", 0), ("alert", 6)]


def test_a_stuck_console_is_closed_and_does_not_hold_up_the_others() -> None:
    """One console stops reading: the other still gets all 1,500 alerts; the stuck one is
    closed with 1013 and a reason once it is more than the backlog behind."""
    async def scenario() -> tuple[Broadcaster, MemorySocket, MemorySocket, int]:
        hub_side = Broadcaster(state_frame=_no_state, clock=time.monotonic)
        good, stuck = MemorySocket(), MemorySocket(stuck=False)
        tasks = [asyncio.create_task(hub_side.serve(ws, snapshot=lambda: {},  # type: ignore[arg-type]
                                                    missed=lambda _: [], last_seq=None))
                 for ws in (good, stuck)]
        await _settle()
        stuck.stuck = True  # it got its snapshot, then stopped reading
        for n in range(1, 1_501):
            hub_side.alert(*_alert(n))
            if n % 100 == 0:
                await _settle()
        await _settle()
        remaining = len(hub_side.clients)
        for task in tasks:
            task.cancel()
        return hub_side, good, stuck, remaining

    hub_side, good, stuck, remaining = asyncio.run(scenario())
    assert [f["seq"] for f in good.sent if f["type"] == "alert"] == list(range(1, 1_501))
    assert stuck.closed is not None and stuck.closed[0] == 1013
    assert "last_seq" in stuck.closed[1]
    assert hub_side.disconnected_slow == 1
    assert remaining == 1  # the stuck console is gone, the good one stays
