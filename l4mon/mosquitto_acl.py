"""Mosquitto's ACL file written from the site register (telemetry/register.py): roles on the
wire, enforced by the broker.

Mosquitto 2.0's ``pattern`` lines substitute the client's name but know nothing of its kind,
so ``pattern write l4mon/v1/+/rsu/%u/#`` lets any vehicle publish RSU status under its own
name. An explicit ``user`` block per name, each with only its own kind's topics on its own
site, is what Mosquitto can enforce; this writes those blocks, so the file is never edited by
hand and cannot drift from the register the hub checks. There is deliberately no ``pattern``
line: a certificate whose name the register lacks may connect but publish nothing.

Commands (docs/protocol.md, "Commands") flow the other way: only a hub's command identity
(``<hub>-commands``, l4mon/commands/connection.py) may write a vehicle's ``command`` topic
(the hub's telemetry identity reads only), and a vehicle may only read its own and answer on
its own ``command_ack``. So a vehicle's write access is spelt out per stream rather than
``vehicle/{id}/#``, which would let it write commands to itself as if from the hub.
"""

from __future__ import annotations

from l4mon.commands.connection import command_client_id
from telemetry.commands import ANSWER, COMMAND
from telemetry.register import Register
from telemetry.topics import PREFIX

#: What a vehicle publishes under its own topic: its telemetry streams and command answers.
VEHICLE_STREAMS = ("state", "event", "service", "link/+", ANSWER)


def acl_text(register: Register) -> str:
    """The ACL file for ``register``."""
    file = register.file
    lines = [
        "# l4mon topic ACL (Mosquitto acl_file). The username is the client certificate's CN.",
        "# Written by `l4mon acl REGISTER` from the site register: edit the register, not this",
        "# file (deploy/mosquitto/README.md). No pattern lines: a name the register lacks may",
        "# connect but publish nothing, and no name can publish as another kind or site.",
        "",
        "# Hubs read every vehicle and RSU stream (also as $share/GROUP/...) and publish",
        "# nothing. Each hub's command connection (HUB-commands, a certificate of its own:",
        "# the broker makes the name the client id) is the only writer of commands to",
        "# vehicles, and reads only their answers.",
    ]
    for hub in file.hubs:
        lines += [f"user {hub}", f"topic read {PREFIX}/#", "",
                  f"user {command_client_id(hub)}",
                  f"topic write {PREFIX}/+/vehicle/+/{COMMAND}",
                  f"topic read {PREFIX}/+/vehicle/+/{ANSWER}", ""]
    lines.append("# The bridge between the two brokers of a hub pair relays l4mon's topics.")
    for bridge in file.bridges:
        lines += [f"user {bridge}", f"topic readwrite {PREFIX}/#", ""]
    lines.append("# Vehicles: each under its own id on its own site, as a vehicle only; each reads")
    lines.append("# its own commands and answers them, and can write no command.")
    for site, vehicle in register.vehicles():
        own = f"{PREFIX}/{site}/vehicle/{vehicle}"
        lines += [f"user {vehicle}", *(f"topic write {own}/{stream}" for stream in VEHICLE_STREAMS),
                  f"topic read {own}/{COMMAND}", ""]
    lines.append("# Roadside units: each under its own id on its own site, as an RSU only.")
    for site, rsu in register.rsus():
        lines += [f"user {rsu}", f"topic write {PREFIX}/{site}/rsu/{rsu}/#", ""]
    return "\n".join(lines)
