"""Shared fixtures: a real Mosquitto on a free loopback port, a real ``l4mon serve``, and a
real PostgreSQL server for the journal (the parts themselves: testing/broker.py,
testing/hub.py, testing/postgres.py). A missing part fails the test under CI and skips it
elsewhere, by the one rule of tests/parts.py, whose hooks are exported here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.broker import Broker, free_port
from testing.hub import (
    HubProcess,
    launch_hub,
    stop_hub,
    write_hub_config,
)
from testing.postgres import PostgresServer
from tests.parts import pytest_configure, pytest_runtest_setup, require_part

# pytest finds hooks by name in a conftest: these two are tests/parts.py's
__all__ = ["pytest_configure", "pytest_runtest_setup"]


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh broker per test, so topics and sessions never leak between tests."""
    require_part("mosquitto")
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
    require_part("mosquitto_pub")
    path = shutil.which("mosquitto_pub")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (initdb + pg_ctl in a temp dir, ~1 s to start);
    each test gets its own schema from ``pg_url``."""
    require_part("postgresql")
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A URL whose tables are a new, empty schema's, so tests never see each other's
    journals."""
    url = postgres.new_schema()
    yield url
    postgres.drop_schema(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a journal test keeps its journal: an SQLite file, then PostgreSQL (a schema of its
    own): the same test runs on both."""
    if request.param == "sqlite":
        return str(tmp_path / "j.sqlite")
    return str(request.getfixturevalue("pg_url"))
