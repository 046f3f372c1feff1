"""The simulated fleet as the demo's fault controls see it (``l4mon.demo.DemoFleet``)."""

from __future__ import annotations

from l4mon.ingest.publisher import NotSent
from scenarios.sim import Fault, SimFleet
from telemetry.commands import parse_command_topic


class SimControls:
    """Faults and cell outages injected into a running ``SimFleet`` from the console."""

    def __init__(self, sim: SimFleet) -> None:
        self.sim = sim

    @property
    def vehicle_ids(self) -> list[str]:
        return self.sim.vehicle_ids

    @property
    def cell_ids(self) -> list[str]:
        return self.sim.cell_ids

    def inject_fault(self, *, kind: str, vehicle: str, link: str | None, start: float,
                     duration: float, value: float | None) -> None:
        self.sim.inject(Fault(kind=kind, vehicle=vehicle, link=link,  # type: ignore[arg-type]
                              start=start, duration=duration, value=value))

    def cell_outage(self, cell: str, start: float, duration: float) -> None:
        self.sim.cell_outage(cell, start, duration)

    def set_service(self, vehicle: str, *, in_service: bool, reason: str | None) -> None:
        if in_service:
            self.sim.start_service(vehicle, reason)
        else:
            self.sim.end_service(vehicle, reason)


class SimPublisher:
    """The demo's way to a vehicle: no broker, so a command goes straight to the simulated
    shuttle, which answers through the feed like everything else it sends (l4mon demo)."""

    def __init__(self, sim: SimFleet) -> None:
        self.sim = sim

    async def publish(self, topic: str, payload: bytes) -> str:
        route = parse_command_topic(topic)
        if route is None or route.vehicle not in self.sim.vehicle_ids:
            raise NotSent(f"no simulated vehicle on {topic}")
        self.sim.command(route.vehicle, payload)
        return ""
