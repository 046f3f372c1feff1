"""The journal keeper: what the journal cannot take is kept, in order, and written once it
can; an operator's action is refused rather than kept (l4mon/store/keeper.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from l4mon.records.alert import Alert
from l4mon.store.journal import JournalError, open_journal
from l4mon.store.keeper import JournalKeeper, JournalUnavailable

T0 = 1_700_000_000.0


def alert(vehicle: str) -> Alert:
    return Alert(id=0, rule="takeover_requested", title="Takeover", severity="takeover",
                 site="s", vehicle=vehicle, link=None, rsu=None, state="raised", raised_at=T0)


def test_kept_writes_go_in_in_order_with_their_journal_ids(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    journal = open_journal(str(tmp_path / "j.sqlite"))
    keeper = JournalKeeper(journal)
    renumbered: list[tuple[int, int]] = []
    keeper.renumbered.append(lambda old, a: renumbered.append((old, a.id)))
    first = alert("v1")
    keeper.write(first, kind="raised", at=T0, actor=None, detail="", on_duty=[], new=True)
    assert first.id == 1 and keeper.ok

    def refused(*args: object, **kwargs: object) -> None:
        raise JournalError("disk full")

    with monkeypatch.context() as broken:
        broken.setattr(type(journal), "new_alert", refused)
        second = alert("v2")
        told = keeper.write(second, kind="raised", at=T0 + 1, actor=None, detail="d",
                            on_duty=[], new=True)
        assert (told.seq, second.id, told.detail) == (0, -1, "NOT JOURNALED YET: d")
        # behind a kept write, even one the journal could take waits its turn
        keeper.service(vehicle="v3", site="s", status="out_of_service", at=T0 + 2, reason=None)
        second.state = "resolved"
        keeper.write(second, kind="resolved", at=T0 + 3, actor=None, detail="", on_duty=[])
        assert (keeper.ok, keeper.queued, keeper.unsettled) == (False, 3, 3)
        with pytest.raises(JournalUnavailable, match="disk full"):
            keeper.write_now(first, kind="acknowledged", at=T0 + 4, actor="alice", detail="",
                             on_duty=[])
        assert keeper.flush(T0 + 5) == 0 and not keeper.ok  # still refused
    assert keeper.flush(T0 + 6) == 3 and keeper.ok
    assert renumbered == [(-1, 2)] and second.id == 2
    assert [t.kind for t in journal.history(2)] == ["raised", "resolved"]
    assert journal.alert(2).state == "resolved"  # type: ignore[union-attr]
    assert [s["status"] for s in journal.service_log(vehicle="v3")] == ["out_of_service"]
    assert [t.kind for t in journal.history(1)] == ["raised"]  # the refused ack left no trace


def test_a_vehicles_answer_to_a_command_is_kept_while_the_journal_is_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command's steps nobody waits on (answers, deadlines) go through the keeper: refused by
    the journal they are kept and counted as unsettled (so the answer's QoS 1 acknowledgement
    is held, l4mon/runtime.py), then written in order, each as it was at its step."""
    from l4mon.records.command import CommandRecord

    journal = open_journal(str(tmp_path / "j.sqlite"))
    keeper = JournalKeeper(journal)
    command = CommandRecord(id="c1", vehicle="v1", site="s", kind="stop", issued_by="alice",
                            issued_at=T0, state="issued", received_by=T0 + 2, done_by=T0 + 60)
    journal.new_command(command, actor="alice", detail="stop")

    def refused(*args: object, **kwargs: object) -> None:
        raise JournalError("connection lost")

    with monkeypatch.context() as broken:
        broken.setattr(type(journal), "command_moved", refused)
        for at, state in ((T0 + 0.1, "sent"), (T0 + 0.2, "received"), (T0 + 3, "done")):
            command.state, command.updated_at = state, at
            keeper.command_step(command, at=at, actor="vehicle", detail=state)
        assert (keeper.ok, keeper.queued, keeper.unsettled) == (False, 3, 3)
        assert journal.command("c1").state == "issued"  # type: ignore[union-attr]
    assert keeper.flush(T0 + 5) == 3 and keeper.ok
    assert [s.state for s in journal.command_log("c1")] == ["issued", "sent", "received", "done"]
    assert journal.command("c1").state == "done"  # type: ignore[union-attr]
