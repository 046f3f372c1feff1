"""The console WebSocket end to end: real ``l4mon serve``, real broker, websockets client."""

from __future__ import annotations

import asyncio
import json
import time

import msgspec
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker
from testing.hub import TEST_TOKEN, HubProcess
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt


def _ws_url(hub: HubProcess, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"ws://{hub.http.base_url.host}:{hub.http.base_url.port}/ws?{query}"


async def _frames(ws: websockets.ClientConnection, until: object, within_s: float = 10.0
                  ) -> list[dict]:
    got: list[dict] = []
    async with asyncio.timeout(within_s):
        while not until(got):  # type: ignore[operator]
            got.append(json.loads(await ws.recv()))
    return got


@pytest.mark.parametrize("token", [None, "wrong"])
def test_websocket_without_a_valid_token_is_refused_with_401(hub_process: HubProcess,
                                                             token: str | None) -> None:
    """No token, no data: the handshake itself is answered 401."""
    async def connect() -> None:
        params = {} if token is None else {"token": token}
        async with websockets.connect(_ws_url(hub_process, **params)):
            pass

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(connect())
    assert info.value.response.status_code == 401


def test_alert_frames_arrive_live_and_are_replayed_on_resume(broker: Broker,
                                                             hub_process: HubProcess) -> None:
    """Snapshot first; a takeover request arrives as an alert frame; reconnecting with last_seq
    replays the acknowledgement made while the console was away, then a fresh snapshot."""
    event = msgspec.json.encode(VehicleEvent(ts=time.time(), kind="takeover_request", seq=1))
    hub_process.http.post("/api/duty/on").raise_for_status()  # else it escalates at once

    async def scenario() -> tuple[list[dict], list[dict]]:
        async with websockets.connect(_ws_url(hub_process, token=TEST_TOKEN)) as ws:
            first = await _frames(ws, lambda got: len(got) >= 1)
            with Publisher(broker.host, broker.port) as pub:
                pub.publish(event_topic("ws", "veh-1"), event, qos=1)
            first += await _frames(ws, lambda got: any(f["type"] == "alert" for f in got))
        alert = next(f for f in first if f["type"] == "alert")
        hub_process.http.post(f"/api/alerts/{alert['alert']['id']}/ack",
                              json={}).raise_for_status()
        async with websockets.connect(_ws_url(hub_process, token=TEST_TOKEN,
                                              last_seq=alert["seq"])) as ws:
            second = await _frames(ws, lambda got: any(f["type"] == "snapshot" for f in got))
        return first, second

    first, second = asyncio.run(scenario())
    assert first[0]["type"] == "snapshot"
    raised = next(f for f in first if f["type"] == "alert")
    assert raised["transition"]["kind"] == "raised"
    assert raised["alert"]["rule"] == "takeover_requested"
    assert raised["alert"]["vehicle"] == "veh-1"
    assert [f["type"] for f in second] == ["alert", "snapshot"]
    assert second[0]["seq"] == raised["seq"] + 1
    assert second[0]["transition"]["kind"] == "acknowledged"
    assert second[0]["alert"]["acknowledged_by"] == "tester"
    assert [a["state"] for a in second[1]["alerts"]] == ["acknowledged"]
