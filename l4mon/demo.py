"""What the demo's fault controls need of a simulated fleet (``l4mon demo``).

The API layer knows this protocol, not the simulator: ``scenarios`` sits above the hub and
provides it (``scenarios.demo_controls.SimControls``), so the hub never imports its own test
bench.
"""

from __future__ import annotations

from typing import Protocol


class DemoFleet(Protocol):
    @property
    def vehicle_ids(self) -> list[str]: ...

    @property
    def cell_ids(self) -> list[str]: ...

    def inject_fault(self, *, kind: str, vehicle: str, link: str | None, start: float,
                     duration: float, value: float | None) -> None:
        """Something goes wrong for one vehicle from ``start``; ValueError when the simulator
        cannot apply it (e.g. a link for a whole-vehicle fault)."""
        ...

    def cell_outage(self, cell: str, start: float, duration: float) -> None:
        """A cell goes dark from ``start``; ValueError for an unknown cell."""
        ...

    def set_service(self, vehicle: str, *, in_service: bool, reason: str | None) -> None:
        """The vehicle leaves service (says so, then sends nothing) or enters it again."""
        ...
