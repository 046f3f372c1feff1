"""The simulated fleet, one concept per module: import from here,
not from its modules.

* ``links``    — the two modems every shuttle carries, and the order per-link lists follow
* ``motion``   — driving a route loop: speed limits before junctions, following distance
* ``radio``    — cells, path loss, shadowing, handover, SINR/RSRQ, throughput and RTT per link
* ``faults``   — what can go wrong for a vehicle (``Fault``) and for a cell (outages)
* ``roadside`` — roadside units: their status reports and the V2I messages vehicles receive
* ``fleet``    — ``SimFleet``: builds all of the above from a site and runs their ticks in order

Everything that draws a random number does so in a fixed order per tick: that order is part
of the output, so a refactoring that reorders draws changes the bytes (tests/test_simfleet.py
pins them).
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
