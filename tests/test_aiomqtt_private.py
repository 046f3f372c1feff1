"""The aiomqtt backend reaches one private attribute of a library, aiomqtt's ``_client``, in one
checked function (l4mon/ingest/_aiomqtt.py ``paho_client_of``): these prove the check, on the
installed aiomqtt and on a client that lost the attribute, and what start-up then reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import pytest

from l4mon.ingest import _aiomqtt
from l4mon.ingest.mqtt_settings import MqttSettings
from l4mon.ingest.mqtt_status import MqttStatus


def _in_a_loop(check: Callable[[], Any]) -> Any:
    """aiomqtt builds its client inside a running event loop, as the backend does."""
    async def run() -> Any:
        return check()
    return asyncio.run(run())


def test_the_installed_aiomqtt_has_the_paho_client_the_backend_needs() -> None:
    def check() -> None:
        client = aiomqtt.Client("127.0.0.1")
        assert isinstance(_aiomqtt.paho_client_of(client), paho.Client)
        assert _aiomqtt.manual_ack(client) is not None
    _in_a_loop(check)


def test_a_client_without_it_is_found_out_not_trusted() -> None:
    def check() -> None:
        client = aiomqtt.Client("127.0.0.1")
        client._client = object()  # type: ignore[assignment]  # an aiomqtt changed inside
        assert _aiomqtt.paho_client_of(client) is None
        assert _aiomqtt.manual_ack(client) is None
    _in_a_loop(check)


def test_start_up_says_whether_the_puback_waits_for_processing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = MqttSettings(url="mqtt://127.0.0.1:1883")
    status = MqttStatus()
    asyncio.run(_aiomqtt.self_check(settings, status))
    assert status.ack_after_processing[_aiomqtt.AIOMQTT] is True

    monkeypatch.setattr(_aiomqtt, "paho_client_of", lambda client: None)
    status = MqttStatus()
    asyncio.run(_aiomqtt.self_check(settings, status))
    assert status.ack_after_processing[_aiomqtt.AIOMQTT] is False
