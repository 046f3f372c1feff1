"""A standby following its leader through the journal (l4mon/leadership.py).

The leader journals every alert transition before anyone is told; the standby reads what was
committed after the newest transition it has applied and applies it to its own engine
(``AlertEngine.mirror``), which tells the standby's consoles. So an operator's
acknowledgement on the leader is on the standby within one poll, and a promotion starts from
the journal's complete state: the lock is granted only once the old leader's connection is
closed, so nothing more can be committed behind the new leader's back.

Transitions are applied in ``seq`` order; with one writer per journal (the leadership lock),
that is commit order, so reading ``seq > last_seq`` skips nothing. Applying one twice (after
the start-up restore) ends the same: a mirror takes the alert as the journal holds it now.
"""

from __future__ import annotations

from typing import Final

from l4mon.alerts.engine import AlertEngine
from l4mon.records.alert import Alert

#: Transitions read at a time: a storm of thousands is applied in a few reads.
PAGE: Final = 1_000


class JournalFollower:
    """Used from the hub's loop only, like the engine it feeds."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine
        #: The newest transition applied (the engine's restore covered everything up to it).
        self.last_seq = engine.restored_seq
        #: Transitions applied since the start.
        self.applied = 0

    def catch_up(self) -> int:
        """Apply every transition committed after ``last_seq``; returns how many.
        Raises JournalError when the journal cannot be read."""
        journal = self.engine.journal
        total = 0
        while True:
            transitions = journal.transitions_since(self.last_seq, limit=PAGE)
            rows: dict[int, Alert | None] = {}
            for transition in transitions:
                if transition.alert_id not in rows:
                    rows[transition.alert_id] = journal.alert(transition.alert_id)
                alert = rows[transition.alert_id]
                if alert is not None:
                    self.engine.mirror(transition, alert)
                self.last_seq = transition.seq
            total += len(transitions)
            if len(transitions) < PAGE:
                break
        self.applied += total
        return total
