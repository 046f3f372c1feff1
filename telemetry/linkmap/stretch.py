"""Stretches of road: the weak cells of a link map that touch one another, as one place.

Why: a vehicle's ``weak_link_ahead`` warning names the nearest weak cell ahead of it, and two
vehicles on one bad stretch name different cells of it (one is still before it, the other
inside). For the operator they are one place with several vehicles on it, so the warnings
are gathered per stretch (the ``[[group]] by = "stretch"`` of the rules file). A stretch is
the cells weak for any of the map's links under one condition, joined where they touch
(sides or corners: a diagonal road runs through corners), named by its smallest cell.

Bounded: a stretch is walked once per (cell, condition) and at most ``MAX_CELLS`` cells far;
the map does not change while a hub runs, so each answer is kept (up to ``KEPT`` cells).
"""

from __future__ import annotations

from typing import Final

from telemetry.linkmap.ahead import WeakAhead
from telemetry.linkmap.grid import CellIndex

#: Cells walked from one weak cell at most (2.5 km of road at 25 m cells): every cell walked
#: is given the walk's name at once, so a longer stretch is cut in pieces, each named alike
#: for every vehicle; a real map's stretches are a few cells long.
MAX_CELLS: Final = 100
#: (cell, weather, light) -> its stretch's name, kept.
KEPT: Final = 100_000

_NEIGHBOURS: Final = tuple((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)


class Stretches:
    """The stretch each weak cell belongs to, per condition. Never called concurrently."""

    def __init__(self, rule: WeakAhead) -> None:
        self.rule = rule
        self._links = tuple(rule.linkmap.links())
        self._names: dict[tuple[CellIndex, str, str], CellIndex] = {}

    def weak(self, cell: CellIndex, weather: str, light: str) -> bool:
        """Weak for any link of the map, as the warning judges a cell."""
        for link in self._links:
            share = self.rule.judge(cell, link, weather, light)[2]
            if share is not None and share >= self.rule.threshold:
                return True
        return False

    def name(self, cell: CellIndex, weather: str, light: str) -> CellIndex:
        """The smallest cell of the stretch ``cell`` lies in (the cell itself when it stands
        alone, or is not weak at all)."""
        key = (cell, weather, light)
        found = self._names.get(key)
        if found is not None:
            return found
        seen = {cell}
        todo = [cell]
        while todo and len(seen) < MAX_CELLS:
            x, y = todo.pop()
            for dx, dy in _NEIGHBOURS:
                near = (x + dx, y + dy)
                if near not in seen and self.weak(near, weather, light):
                    seen.add(near)
                    todo.append(near)
        found = min(seen)
        if len(self._names) + len(seen) > KEPT:
            self._names.clear()
        for member in seen:  # every cell walked is named alike: one walk per stretch
            self._names[(member, weather, light)] = found
        return found
