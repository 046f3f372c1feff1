"""Tokens revoked and expired: ``l4mon token revoke`` ends a token on a running hub at once
(its next request 401, its console sessions closed), ``--expires`` gives it an end, and the
store follows the journal the CLI writes without a restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from l4mon.auth import TokenStore, hash_token, parse_expiry
from l4mon.clock import ManualClock
from l4mon.store.journal import SqliteJournal
from testing.broker import Broker, free_port
from testing.hub import ROOT, launch_hub, stop_hub, write_hub_config

NOW = 1_700_000_000.0


def _l4mon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *args], check=False,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_revocation_by_another_process_holds_at_the_next_verify(tmp_path: Path) -> None:
    """The CLI writes the journal from its own connection; the hub's store refuses the token
    at its very next check, and a token issued meanwhile works within a second."""
    path = tmp_path / "j.sqlite"
    hub_side, cli_side = SqliteJournal(path), SqliteJournal(path)
    try:
        cli_side.add_token("alice", "operator", hash_token("alice-token"), NOW)
        store = TokenStore([("cfg", "viewer", hash_token("cfg-token"))], journal=hub_side)
        assert store.verify("alice-token", NOW).name == "alice"  # type: ignore[union-attr]
        assert cli_side.revoke_token("alice", NOW + 1)
        assert store.verify("alice-token", NOW + 1) is None
        assert not cli_side.revoke_token("alice", NOW + 1)  # nothing in force to revoke
        cli_side.add_token("bob", "viewer", hash_token("bob-token"), NOW + 1)
        assert store.verify("bob-token", NOW + 1.5) is None  # looked 0.5 s ago: not yet
        assert store.verify("bob-token", NOW + 2.0).name == "bob"  # type: ignore[union-attr]
        assert store.verify("cfg-token", NOW + 4).name == "cfg"  # type: ignore[union-attr]
        cli_side.add_token("alice", "viewer", hash_token("alice-again"), NOW + 5)
        assert store.verify("alice-again", NOW + 6).role == "viewer"  # type: ignore[union-attr]
        assert store.verify("alice-token", NOW + 6) is None  # the old one stays dead
        rows = {r["name"]: r for r in cli_side.tokens()}
        assert rows["alice"]["revoked_at"] is None and rows["alice"]["created_at"] == NOW + 5
    finally:
        hub_side.close()
        cli_side.close()


def test_a_journal_that_does_not_answer_keeps_the_tokens_as_last_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """It cannot have recorded a revocation either: the operators stay logged in, and the
    outage is logged once, not once per request."""
    journal = SqliteJournal(tmp_path / "j.sqlite")
    journal.add_token("alice", "operator", hash_token("alice-token"), NOW)
    store = TokenStore(journal=journal)
    journal.close()  # every read now fails
    for n in range(5):
        assert store.verify("alice-token", NOW + n) is not None
    assert sum("cannot re-read the journal" in r.message for r in caplog.records) == 1


def test_an_expired_token_is_refused_by_the_clock_given(tmp_path: Path) -> None:
    """Expiry is judged on the hub's clock (a manual one here), to the second."""
    clock = ManualClock(NOW)
    journal = SqliteJournal(tmp_path / "j.sqlite")
    try:
        journal.add_token("temp", "viewer", hash_token("temp-token"), NOW, expires_at=NOW + 60)
        store = TokenStore(journal=journal)
        assert store.verify("temp-token", clock.now()) is not None
        who = store.verify("temp-token", clock.advance(59.9))
        assert who is not None and store.holds(who, clock.now())
        assert store.verify("temp-token", clock.advance(0.1)) is None
        assert not store.holds(who, clock.now())  # an open session on it is closed too
    finally:
        journal.close()


def test_expiry_is_a_duration_or_a_time_in_the_future() -> None:
    assert parse_expiry("90m", NOW) == NOW + 5_400
    assert parse_expiry("2w", NOW) == NOW + 14 * 86_400
    assert parse_expiry("2030-01-01", NOW) == 1_893_456_000.0
    assert parse_expiry("2030-01-01T01:00+01:00", NOW) == 1_893_456_000.0
    for bad in ("0d", "soon", "-5m", "2020-01-01", "²d"):
        with pytest.raises(ValueError, match="--expires"):
            parse_expiry(bad, NOW)


def test_a_presented_token_is_bounded_before_it_is_hashed() -> None:
    store = TokenStore([("a", "admin", hash_token("x" * 300))])
    assert store.verify("x" * 300, NOW) is None  # longer than any token we issue


@pytest.mark.mqtt
def test_token_revoke_ends_a_running_hub_session_at_once(broker: Broker,
                                                         tmp_path: Path) -> None:
    """``token create`` then ``token revoke`` on the journal of a running ``serve``: the
    request after the revocation is 401 and the open console socket is closed (1008)."""
    journal = tmp_path / "journal.sqlite"
    made = _l4mon("token", "create", "alice", "--role", "operator", "--expires", "30d",
                  "--journal", str(journal))
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()
    assert "until" in made.stdout
    listed = _l4mon("token", "list", "--journal", str(journal)).stdout
    assert "alice\toperator\t(journal, in force until" in listed
    again = _l4mon("token", "create", "--name", "alice", "--journal", str(journal))
    assert again.returncode == 2 and "exists already" in again.stderr

    hub = launch_hub(broker, write_hub_config(tmp_path, journal=journal), tmp_path / "hub.log",
                     free_port(), token=token)
    try:
        assert hub.json("/api/me") == {"name": "alice", "role": "operator"}

        async def session() -> tuple[float, int | None]:
            url = f"ws://127.0.0.1:{hub.port}/ws?token={token}"
            async with websockets.connect(url) as ws:
                await asyncio.wait_for(ws.recv(), timeout=10)  # the snapshot: it is live
                revoked = await asyncio.to_thread(
                    _l4mon, "token", "revoke", "alice", "--journal", str(journal))
                assert revoked.returncode == 0, revoked.stderr
                after = time.monotonic()
                assert hub.get("/api/me").status_code == 401  # the very next request
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), timeout=5)
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd is not None else None
                    return time.monotonic() - after, code

        closed_after, code = asyncio.run(session())
        assert code == 1008 and closed_after < 1.5, (code, closed_after)
        listed = _l4mon("token", "list", "--journal", str(journal)).stdout
        assert "alice\toperator\t(journal, revoked" in listed
        assert _l4mon("token", "create", "alice", "--role", "viewer", "--journal",
                      str(journal)).returncode == 0  # a revoked name can be issued again
        assert httpx.get(f"http://127.0.0.1:{hub.port}/api/me",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        stop_hub(hub)


def test_a_config_token_is_not_revoked_by_the_cli(tmp_path: Path) -> None:
    """A config file's token lives in the config: the CLI says where to remove it."""
    config = write_hub_config(tmp_path, name="ops")
    refused = _l4mon("token", "revoke", "ops", "--config", str(config))
    assert refused.returncode == 2 and "[[auth.tokens]]" in refused.stderr
    unknown = _l4mon("token", "revoke", "nobody", "--config", str(config))
    assert unknown.returncode == 2 and "no token in force named 'nobody'" in unknown.stderr
