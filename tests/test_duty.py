"""The duty roster: who is on duty for which vehicles, journaled and restored after a restart."""

from __future__ import annotations

import pytest

from l4mon.alerts.duty import DutyRoster
from l4mon.store.journal import Journal, JournalError, open_journal

T0 = 1_700_000_000.0


@pytest.fixture
def journal(journal_location: str) -> Journal:
    """The roster's journal, on SQLite and on PostgreSQL."""
    return open_journal(journal_location)


def test_nobody_on_duty_at_first(journal: Journal) -> None:
    """A fresh roster has nobody on duty and covers no vehicle."""
    roster = DutyRoster(journal=journal)
    assert roster.operators() == []
    assert roster.covering("v1") == []
    assert roster.covering(None) == []
    assert journal.duty_log() == []


def test_go_on_and_off_are_journaled(journal: Journal) -> None:
    """go_on writes a row with the time and vehicles; go_off closes it with the time."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0, ["v1", "v2"])
    roster.go_on("bob", T0 + 1)
    (bob, alice) = journal.duty_log()  # newest first
    assert (alice["operator"], alice["on_at"], alice["off_at"]) == ("alice", T0, None)
    assert alice["vehicles"] == '["v1", "v2"]'
    assert (bob["operator"], bob["on_at"], bob["off_at"], bob["vehicles"]) == \
        ("bob", T0 + 1, None, None)
    roster.go_off("alice", T0 + 60)
    rows = {r["operator"]: r for r in journal.duty_log()}
    assert rows["alice"]["off_at"] == T0 + 60
    assert rows["bob"]["off_at"] is None
    assert roster.operators() == ["bob"]
    assert [op for op, _, _ in journal.on_duty()] == ["bob"]


def test_going_on_again_closes_the_previous_shift(journal: Journal) -> None:
    """An operator going on duty again (new vehicles) ends the old row and starts a new one."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0, ["v1"])
    roster.go_on("alice", T0 + 30, ["v2"])
    newer, older = journal.duty_log()
    assert (older["off_at"], newer["on_at"], newer["off_at"]) == (T0 + 30, T0 + 30, None)
    assert journal.on_duty() == [("alice", T0 + 30, ["v2"])]
    assert roster.covering("v1") == [] and roster.covering("v2") == ["alice"]


def test_go_off_when_not_on_duty_is_harmless(journal: Journal) -> None:
    """Going off duty without being on it changes nothing."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0)
    roster.go_off("bob", T0 + 1)
    assert roster.operators() == ["alice"]
    assert [r["off_at"] for r in journal.duty_log()] == [None]


def test_covering_assigned_operator(journal: Journal) -> None:
    """An operator assigned to vehicles covers exactly those."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0, ["v1", "v2"])
    assert roster.covering("v1") == ["alice"]
    assert roster.covering("v2") == ["alice"]
    assert roster.covering("v3") == []
    assert roster.covering(None) == []


def test_covering_all_operator_covers_the_rest(journal: Journal) -> None:
    """An operator with no list (or an empty one) covers every vehicle nobody is assigned."""
    roster = DutyRoster(journal=journal)
    roster.go_on("carol", T0)
    roster.go_on("dave", T0, [])
    assert roster.covering("v9") == ["carol", "dave"]
    assert roster.covering(None) == ["carol", "dave"]


def test_assignment_takes_precedence_over_covering_all(journal: Journal) -> None:
    """A vehicle with an assigned operator is covered by them, not by the covering-all ones."""
    roster = DutyRoster(journal=journal)
    roster.go_on("carol", T0)
    roster.go_on("bob", T0, ["v1"])
    roster.go_on("alice", T0, ["v1", "v2"])
    assert roster.covering("v1") == ["alice", "bob"]
    assert roster.covering("v2") == ["alice"]
    assert roster.covering("v3") == ["carol"]
    roster.go_off("alice", T0 + 1)
    assert roster.covering("v2") == ["carol"]  # back to the covering-all operator


def test_view_lists_each_operators_vehicles_and_the_unassigned(journal: Journal) -> None:
    """view() gives each operator's vehicles (covering-all: the rest) and nobody's vehicles."""
    roster = DutyRoster(journal=journal)
    fleet = ["v4", "v1", "v3", "v2"]
    assert roster.view(fleet) == {"on_duty": [], "unassigned": ["v1", "v2", "v3", "v4"]}
    roster.go_on("alice", T0, ["v2", "v1"])
    assert roster.view(fleet) == {
        "on_duty": [{"operator": "alice", "since": T0, "vehicles": ["v1", "v2"]}],
        "unassigned": ["v3", "v4"],
    }
    roster.go_on("carol", T0 + 5)
    assert roster.view(fleet) == {
        "on_duty": [{"operator": "alice", "since": T0, "vehicles": ["v1", "v2"]},
                    {"operator": "carol", "since": T0 + 5, "vehicles": ["v3", "v4"]}],
        "unassigned": [],
    }


def test_view_orders_operators_by_time_on_duty(journal: Journal) -> None:
    """Operators are listed in the order they went on duty."""
    roster = DutyRoster(journal=journal)
    roster.go_on("zoe", T0, ["v1"])
    roster.go_on("adam", T0 + 1, ["v2"])
    assert [e["operator"] for e in roster.view(["v1", "v2"])["on_duty"]] == ["zoe", "adam"]


def test_view_keeps_assignments_outside_the_fleet(journal: Journal) -> None:
    """An operator assigned to a vehicle not (yet) in the fleet still shows it."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0, ["v9"])
    assert roster.view(["v1"]) == {
        "on_duty": [{"operator": "alice", "since": T0, "vehicles": ["v9"]}],
        "unassigned": ["v1"],
    }


def test_new_roster_on_same_journal_restores_who_is_on_duty(journal_location: str) -> None:
    """After a restart, a roster over the same journal knows who is on duty, for what."""
    first = open_journal(journal_location)
    roster = DutyRoster(journal=first)
    roster.go_on("alice", T0, ["v1"])
    roster.go_on("bob", T0 + 1)
    roster.go_on("carol", T0 + 2, ["v2"])
    roster.go_off("carol", T0 + 3)
    first.close()

    restored = DutyRoster(journal=open_journal(journal_location))
    assert restored.operators() == ["alice", "bob"]
    assert restored.covering("v1") == ["alice"]
    assert restored.covering("v2") == ["bob"]
    assert restored.view(["v1", "v2"]) == roster.view(["v1", "v2"])


def test_restored_empty_list_still_covers_all(journal_location: str) -> None:
    """An operator who went on duty with an empty list still covers every vehicle after restart."""
    first = open_journal(journal_location)
    DutyRoster(journal=first).go_on("dave", T0, [])
    first.close()
    assert DutyRoster(journal=open_journal(journal_location)).covering("v5") == ["dave"]


def test_go_on_is_journaled_before_it_takes_effect(journal: Journal) -> None:
    """When the journal cannot be written, go_on/go_off fail and the roster is unchanged."""
    roster = DutyRoster(journal=journal)
    roster.go_on("alice", T0)
    journal.close()
    with pytest.raises(JournalError):
        roster.go_on("bob", T0 + 1)
    with pytest.raises(JournalError):
        roster.go_off("alice", T0 + 2)
    assert roster.operators() == ["alice"]
    assert roster.covering("v1") == ["alice"]
