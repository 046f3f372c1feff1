"""The live process has one owner (l4mon/process.py): sinks start before the source, stop after
it, the recorder drains and the journal closes last; a part that fails stops it all with its
own error. A real hub fed by the real simulated fleet through the demo's FeedSource, a real
HTTP server on a free loopback port, a real recorder and journal in a temporary folder."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from l4mon.assembly import build_hub, build_runtime
from l4mon.clock import LiveClock
from l4mon.config import config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.ingest.generated import FeedSource
from l4mon.process import LiveProcess
from l4mon.recorder import Recorder
from l4mon.store.journal import JournalError
from scenarios.sim import SimFleet
from telemetry.drivelog import Manifest, read_manifest
from telemetry.site import DEMO_SITE_PATH, load_site
from testing.broker import free_port


def _parts(tmp_path: Path, generate: object = None) -> tuple:
    clock = LiveClock()
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=3, seed=2, start=clock.now())
    config = config_from_dict({"alerts": {"journal": str(tmp_path / "journal.sqlite")}})
    hub = build_hub(config, site=site)
    source = FeedSource(generate=generate or fleet.advance, clock=clock)
    recorder = Recorder(tmp_path / "rec", manifest=Manifest(site=site.name))
    runtime = build_runtime(config, clock=clock, hub=hub, buffer=source.buffer,
                            recorder=recorder)
    return hub, source, recorder, runtime


def test_the_process_starts_sinks_first_and_stops_them_last(tmp_path: Path) -> None:
    hub, source, recorder, runtime = _parts(tmp_path)
    port = free_port()
    seen: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        async with LiveProcess(runtime, source, app=create_app(runtime),
                               http=("127.0.0.1", port), journal=hub.alerts.journal) as live:
            assert runtime.ready.is_set()
            async with httpx.AsyncClient() as client:  # the HTTP sink answers while it runs
                seen["health"] = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
            await asyncio.sleep(1.0)
            asyncio.get_running_loop().call_later(0.2, stop.set)
            await live.wait(stop)
        seen["tasks"] = [t.get_name() for t in asyncio.all_tasks()
                         if t is not asyncio.current_task()]

    asyncio.run(main())
    assert seen["health"]["status"] in ("ok", "degraded")  # type: ignore[index]
    assert seen["tasks"] == []  # every task the process started has ended
    assert hub.accepted > 100
    # the recorder was drained after the source stopped: every message the hub took is there
    assert recorder.recorded == hub.accepted
    assert read_manifest(tmp_path / "rec").messages == hub.accepted
    with pytest.raises(JournalError, match="closed database"):  # the journal is closed, last
        hub.alerts.journal.open_alerts()
    with socket.socket() as probe:  # and the HTTP port is free again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_a_part_that_fails_stops_the_process_with_its_own_error(tmp_path: Path) -> None:
    """The tick loop fails (a bug): the whole process stops, the caller sees that error (not a
    group of one), and the sinks are still closed in order."""
    hub, source, recorder, runtime = _parts(tmp_path)

    def broken_tick(now: float) -> set[str]:
        raise RuntimeError("a bug in the tick")

    hub.tick_start = broken_tick  # type: ignore[method-assign]

    async def main() -> None:
        async with LiveProcess(runtime, source, journal=hub.alerts.journal) as live:
            await asyncio.wait_for(live.wait(asyncio.Event()), timeout=10)

    with pytest.raises(RuntimeError, match="a bug in the tick"):
        asyncio.run(main())
    assert recorder.recorded == hub.accepted
    with pytest.raises(JournalError, match="closed database"):
        hub.alerts.journal.open_alerts()


def test_a_source_that_fails_stops_the_process(tmp_path: Path) -> None:
    """The source's own work (here the demo feed's generator) runs in the process's task
    group: when it fails, the process stops with that error instead of ingesting nothing."""
    calls = 0
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=2, seed=4, start=LiveClock().now())

    def generate(now: float) -> list[tuple[str, bytes]]:
        nonlocal calls
        calls += 1
        if calls > 10:
            raise ValueError("the generator broke")
        return fleet.advance(now)

    hub, source, recorder, runtime = _parts(tmp_path, generate)

    async def main() -> None:
        async with LiveProcess(runtime, source, journal=hub.alerts.journal) as live:
            await asyncio.wait_for(live.wait(asyncio.Event()), timeout=10)

    with pytest.raises(ValueError, match="the generator broke"):
        asyncio.run(main())
    assert hub.accepted > 0 and recorder.recorded == hub.accepted
