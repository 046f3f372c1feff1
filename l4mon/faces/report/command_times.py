"""Command round trips in the report: how long a vehicle took to say it received an operator's
command, and to say it was done, per condition and per the links it could be reached on.

Why: the operator's trust in "stop" rests on the vehicle's answer coming back fast, and a link
or a condition where it does not is what the report must show. Figures come from the replayed
recording's ``commands`` (l4mon/commands/trail.py: the recording hub's own send and receive
times), with the sample size beside every percentile; a command never answered counts in
``sent`` and not in the times (its absence is a figure of its own, ``unanswered``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from l4mon.faces.report.model import Column, Table
from l4mon.faces.report.pipeline import StateRun
from telemetry.window import percentile


def table(runs: list[StateRun]) -> Table:
    t = Table("command_times", "Command round trips (sent → received, sent → done)", [
        Column("condition", "Condition", "text"),
        Column("links", "Links usable when sent", "text"),
        Column("sent", "Sent", "int"),
        Column("received", "Received (n)", "int"),
        Column("received_p50_ms", "To received p50", unit="ms", digits=0, better="lower"),
        Column("received_p99_ms", "To received p99", unit="ms", digits=0, better="lower"),
        Column("done", "Done (n)", "int"),
        Column("done_p50_ms", "To done p50", unit="ms", digits=0, better="lower"),
        Column("done_p99_ms", "To done p99", unit="ms", digits=0, better="lower"),
        Column("refused", "Refused", "int"),
        Column("unanswered", "No answer", "int", better="lower"),
    ], note="Commands a recording kept (serve --record) and the vehicles' answers, carried "
            "through the replay and never sent again. Times are the recording hub's: from the "
            "broker's acknowledgement of the command to the answer's arrival. Links: the "
            "vehicle's links that were ok or degraded when it was sent.")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for command in run.doc.get("commands") or []:
            groups[(run.condition, str(command.get("links") or "none"))].append(command)
    for (condition, links), commands in sorted(groups.items()):
        received = sorted(c["received_ms"] for c in commands if c.get("received_ms") is not None)
        done = sorted(c["done_ms"] for c in commands if c.get("done_ms") is not None)
        t.rows.append({
            "condition": condition, "links": links, "sent": len(commands),
            "received": len(received),
            "received_p50_ms": percentile(received, 50),
            "received_p99_ms": percentile(received, 99),
            "done": len(done),
            "done_p50_ms": percentile(done, 50), "done_p99_ms": percentile(done, 99),
            "refused": sum(1 for c in commands if c.get("refused") is not None
                           or "refused" in (c.get("answers") or {})),
            "unanswered": sum(1 for c in commands if not c.get("answers")),
        })
    return t
