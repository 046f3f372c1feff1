"""Shared fixtures: a real Mosquitto on a free loopback port, a real ``l4mon serve``, and a
real PostgreSQL server for the journal (the parts themselves: testing/broker.py,
testing/hub.py, testing/postgres.py)."""

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
from testing.postgres import PostgresServer

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



@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (initdb + pg_ctl in a temp dir, ~1 s to start);
    each test gets its own schema from ``pg_url``."""
    try:
        server = PostgresServer()
    except FileNotFoundError as error:  # no binaries, or root without a 'postgres' user
        pytest.skip(f"{error} (./scripts/test.sh installs it)")
    with server:
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
