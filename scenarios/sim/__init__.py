"""The simulated fleet, one concept per module; ``scenarios.simfleet`` is its public face.

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
