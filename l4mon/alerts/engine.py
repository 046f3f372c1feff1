"""The alert engine: rules over facts, with for/clear durations, escalation and inhibition.

All decisions take the time they are given (the hub's clock live, the log's clock in replay).
Every transition is journaled first and only then passed to listeners (the console), so no
operator can be told something the journal does not hold.

Per (rule, subject) there is at most one open alert: while it is open, the rule firing again
only keeps it open. After it resolves automatically, firing again within ``reopen_within_s``
reopens the same alert (counted in ``flaps``) instead of raising a new one: a link hovering on a
threshold shows up as one flapping alert, not as a storm.

In a hub pair (l4mon/leadership.py) the standby's engine runs with ``leading`` False: it
evaluates the same rules on the same state, so its holds (``for_s``, ``clear_for_s``) are timed
as the leader's are, but it decides nothing: no raise, resolve or escalation is made, journaled
or broadcast. What the leader journals is applied to it instead (``mirror``), and the one-off
raises it would have made (events, handovers: they are not a state that still holds later) are
kept for a while (``deferred``). On promotion (``promote``) it raises those the journal shows
the leader did not have, and the next evaluation does the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from l4mon.alerts.actions import OperatorActions
from l4mon.alerts.duty import DutyRoster
from l4mon.alerts.evaluation import Evaluation
from l4mon.alerts.incidents import IncidentBook
from l4mon.alerts.lifecycle import Lifecycle
from l4mon.alerts.rules import Rule, RuleSet, runbooks
from l4mon.alerts.standby import DEFERRED_MAX, Deferred, Standby
from l4mon.alerts.tracks import Causes, Key, Listener, Track
from l4mon.records.alert import (
    Alert,
)
from l4mon.store.journal import Journal
from l4mon.store.keeper import JournalKeeper

if TYPE_CHECKING:
    from l4mon.ingest.mqtt_status import MqttStatus
    from l4mon.site_watch import FeedWatch
    from telemetry.linkmap.outlook import LookAhead


class AlertEngine(Evaluation, Standby, OperatorActions, Lifecycle):
    """One engine made of four parts with one job each (evaluation, standby, operator actions,
    lifecycle), sharing the state set up here. Never called concurrently: the hub's loop owns
    it (ticks, events, API actions)."""


    def __init__(self, *, rules: list[Rule], journal: Journal, duty: DutyRoster,
                 ul_required_kbps: Callable[[str], float | None],
                 planned: Callable[[str, float], bool | None] | None = None,
                 causes: Causes | None = None, lookahead: LookAhead | None = None) -> None:
        self.rules = rules
        self.journal = journal
        self.duty = duty
        self.ul_required_kbps = ul_required_kbps
        #: Whether a vehicle is planned in service at a time (the timetable); None: none.
        self.planned = planned
        #: Told of each alert change after it is journaled. A list of subscribers, not a
        #: collaborator: the console's broadcaster (l4mon/runtime.py) subscribes when the live
        #: runtime is built, after the hub; a replay's hub has none.
        self.listeners: list[Listener] = []
        self._tracks: dict[Key, Track] = {}
        self.open: dict[int, Alert] = {}
        #: Every write goes through the keeper: journaled, or kept in order while the journal
        #: cannot take it (l4mon/store/keeper.py).
        self.keeper = JournalKeeper(journal)
        self.keeper.renumbered.append(self._renumbered)
        self._by_scope: dict[str, list[Rule]] = {}
        for rule in rules:
            self._by_scope.setdefault(rule.scope, []).append(rule)
        #: Rule name -> its runbook (what the operator does next), as the API shows it.
        self.runbooks = runbooks(rules)
        #: Rule name -> whether it is a site rule (its alert's subject is the site).
        self._site_rules = {rule.name: rule.scope == "site" for rule in rules}
        #: The hub's feed watch, once it has run (l4mon/site_watch.py): site rules inhibit with it.
        self.feed: FeedWatch | None = None
        #: Incidents: several vehicles' alerts with one cause (the rules file's groupings).
        self.incidents = IncidentBook(rules.groups if isinstance(rules, RuleSet) else ())
        #: What an alert's vehicle shares with others (its cells, its intersection); the hub
        #: sets it (l4mon/hub.py). None: no grouping.
        self.causes = causes
        #: The link map's look-ahead (telemetry/linkmap/outlook.py) behind the link facts
        #: ``weak_ahead*``; the hub sets it when ``[linkmap] path`` names a map.
        self.lookahead = lookahead
        #: False on the standby of a hub pair: evaluate, but decide nothing (module docstring).
        #: Changed only by the engine itself: ``stand_by``, ``rejoin`` and ``promote``.
        self.leading = True
        #: The broker connection's status (l4mon/ingest/mqtt_status.py) behind the hub facts
        #: ``mqtt_session*`` and the ``sender`` scope; None in replay. Bound late, and only by
        #: build_runtime (l4mon/assembly.py), on purpose: the MQTT source that owns the status
        #: is built after the hub, whose quarantine it writes to.
        self.transport: MqttStatus | None = None
        #: A standby's one-off raises, oldest first, kept ``defer_s`` seconds (and at most
        #: ``DEFERRED_MAX``) for ``promote``.
        self.deferred: deque[Deferred] = deque(maxlen=DEFERRED_MAX)
        self.defer_s = 30.0
        self.restored_seq = 0
        #: A journal outage this hub lived through fenced (since, why): said in the journal
        #: as a ``journal_unavailable`` alert once this hub leads again (``promote``).
        self._outage: tuple[float, str | None] | None = None
        self.restore()

    def restore(self) -> None:
        """Take up the journal's state, as after a restart: open alerts, and the last
        automatically resolved one per subject, so that a flap across the restart still
        reopens it. The journal's newest transition before reading is ``restored_seq``: a
        standby follows the journal from there, so nothing committed meanwhile is missed
        (what it sees twice, it applies twice to the same end)."""
        journal = self.journal
        self.restored_seq = journal.last_seq()
        self.open = {}
        self._tracks = {}
        self.incidents = IncidentBook(self.incidents.groups)
        for alert in journal.last_auto_resolved():
            self._tracks[self.key_of(alert)] = Track(alert=alert)
        for alert in journal.open_alerts():
            self.open[alert.id] = alert
            self._tracks[self.key_of(alert)] = Track(alert=alert)
        self.incidents.restore(self.open.values())

