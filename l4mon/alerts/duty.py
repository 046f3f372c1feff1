"""Who is on duty, and for which vehicles: the evidence a Level 4 operator keeps for its permit.

An operator goes on duty for a list of vehicles, or for "every vehicle nobody else covers" when
the list is empty. Every change is journaled before it takes effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from l4mon.store.journal import Journal


class DutyRoster:
    def __init__(self, *, journal: Journal) -> None:
        self.journal = journal
        self._on: dict[str, tuple[float, list[str] | None]] = {
            name: (since, vehicles) for name, since, vehicles in journal.on_duty()}

    def reload(self) -> bool:
        """Take who is on duty from the journal again (a standby following its leader's
        operators); True if that changed anything."""
        current = {name: (since, vehicles) for name, since, vehicles in self.journal.on_duty()}
        if current == self._on:
            return False
        self._on = current
        return True

    def go_on(self, operator: str, now: float, vehicles: list[str] | None = None) -> None:
        self.journal.duty_on(operator, now, vehicles)
        self._on[operator] = (now, vehicles)

    def go_off(self, operator: str, now: float) -> None:
        self.journal.duty_off(operator, now)
        self._on.pop(operator, None)

    def operators(self) -> list[str]:
        return sorted(self._on)

    def covering(self, vehicle: str | None) -> list[str]:
        """Operators on duty responsible for ``vehicle`` (assigned, or covering the rest)."""
        assigned = [op for op, (_, vs) in self._on.items() if vs and vehicle in vs]
        if assigned:
            return sorted(assigned)
        return sorted(op for op, (_, vs) in self._on.items() if not vs)

    def view(self, vehicles: Iterable[str]) -> dict[str, Any]:
        """Operators with the vehicles each covers, and the vehicles nobody covers."""
        fleet = sorted(vehicles)
        assigned = {v for _, vs in self._on.values() if vs for v in vs}
        rest = [v for v in fleet if v not in assigned]
        on_duty = []
        for op, (since, vs) in sorted(self._on.items(), key=lambda kv: kv[1][0]):
            on_duty.append({"operator": op, "since": since,
                            "vehicles": sorted(vs) if vs else rest})
        covered = {v for entry in on_duty for v in entry["vehicles"]}
        return {"on_duty": on_duty, "unassigned": [v for v in fleet if v not in covered]}
