"""Shared fixtures: a real Mosquitto on a free loopback port, and a real ``l4mon serve``
(the parts themselves: testing/broker.py, testing/hub.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.broker import Broker, find_mosquitto, free_port
from testing.hub import (
    HubProcess,
    launch_hub,
    stop_hub,
    write_hub_config,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def _have_mosquitto() -> bool:
    try:
        find_mosquitto()
    except FileNotFoundError:
        return False
    return True


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh broker per test, so topics and sessions never leak between tests."""
    if not _have_mosquitto():
        pytest.fail("mosquitto is not installed: run ./scripts/test.sh, which installs it")
    with Broker() as running:
        yield running


@pytest.fixture
def hub_process(broker: Broker, tmp_path: Path) -> Iterator[HubProcess]:
    """``l4mon serve`` against ``broker``, connected and subscribed."""
    hub = launch_hub(broker, write_hub_config(tmp_path), tmp_path / "hub.log", free_port())
    try:
        yield hub
    finally:
        stop_hub(hub)


@pytest.fixture
def mosquitto_pub() -> str:
    path = shutil.which("mosquitto_pub")
    if path is None:
        pytest.fail("mosquitto_pub is not installed: run ./scripts/test.sh, which installs it")
    return path

