"""A deterministic simulated fleet: shuttles driving a site's loop, as protocol v1 messages.

The public face of ``scenarios.sim``, where each concept has its own module: driving
(``motion``), the radio model and where its numbers come from (``radio``), faults and cell
outages (``faults``), RSUs and V2I (``roadside``), and ``SimFleet`` that runs them (``fleet``).
Import from here.
"""

from __future__ import annotations

from scenarios.sim.faults import FAULT_DEFAULTS, Fault, FaultKind
from scenarios.sim.fleet import SimFleet
from scenarios.sim.links import LINKS, LinkName
from scenarios.sim.roadside import V2I_RANGE_M, V2I_RATE_HZ

__all__ = [
    "FAULT_DEFAULTS",
    "LINKS",
    "V2I_RANGE_M",
    "V2I_RATE_HZ",
    "Fault",
    "FaultKind",
    "LinkName",
    "SimFleet",
]
