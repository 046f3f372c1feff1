"""Alert rules: TOML validated into plain models, then compiled; nothing runs unvalidated.

A rules file has an optional ``[defaults]`` table (inherited by every rule, Alertmanager-style),
a list of ``[[rule]]`` tables and a list of ``[[group]]`` tables (which alerts of several
vehicles, or of one vehicle with one cause, are one incident: l4mon/alerts/incidents.py).
Each rule and group may carry its runbook (``[rule.runbook]``: what to do, whom to call),
validated like the rest. See ``default_rules.toml`` for the shipped set and docs/alerts.md
for the reference.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Annotated, Any, Final, Literal

import msgspec

from l4mon.alerts.expr import Condition, ExpressionError, compile_condition
from l4mon.alerts.facts import LINK_FACTS, SCOPE_FACTS, VEHICLE_FACTS

DEFAULT_RULES_PATH: Final = Path(__file__).with_name("default_rules.toml")

Scope = Literal["vehicle", "link", "rsu", "event", "handover", "intersection", "site", "hub",
                "sender"]
Severity = Literal["info", "warning", "takeover"]
RuleName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)]


class RulesError(ValueError):
    """A rules file that is unreadable or says something invalid; names the rule and field."""


Step = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=r"\S")]


class Runbook(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The next step on an alert, as the card shows it: an alert says what happened, the
    runbook what the operator does about it and whom they call, so nobody has to remember
    the procedure at 3 a.m. with a shuttle stopped on a rural road."""

    #: What to do, in order (the console numbers them).
    steps: Annotated[list[Step], msgspec.Meta(min_length=1, max_length=12)]
    #: Whom to call (a role and where its number is, not a number that goes stale here).
    call: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "call": self.call}


class Defaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    for_s: Seconds = 0.0
    clear_for_s: Seconds = 2.0
    escalate_after_s: Seconds | None = None
    #: A rule firing again this soon after it cleared reopens the same alert (flap damping).
    reopen_within_s: Seconds = 60.0


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: RuleName
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    scope: Scope
    when: str
    severity: Severity
    #: Resolve when this holds for ``clear_for_s``; default "not when". Event rules evaluate it
    #: over the vehicle's facts; without it they are resolved by an operator only.
    clear_when: str | None = None
    for_s: Seconds | None = None
    clear_for_s: Seconds | None = None
    escalate_after_s: Seconds | None = None
    reopen_within_s: Seconds | None = None
    #: Names of rules whose open alert on the same vehicle suppresses this one (a ``site``
    #: rule: on the vehicle's site; ``hub_feed_lost`` also while the site's feed is suspect).
    inhibited_by: list[RuleName] = []
    description: str = ""
    #: Vehicle rules only: evaluated also while the vehicle is out of service (every other
    #: rule is not, and a vehicle leaving service closes their alerts); its alerts stay open.
    out_of_service: bool = False
    #: What the operator does about it and whom they call (``[rule.runbook]``).
    runbook: Runbook | None = None


#: Scopes whose alerts may be grouped across vehicles (by cell or intersection): a vehicle's
#: or a link's condition. A vehicle's own request (event rules) is not another vehicle's
#: cause; site, RSU and intersection alerts are one already.
GROUPABLE_SCOPES: Final = ("vehicle", "link", "handover")
#: Scopes whose alerts may be grouped on their own vehicle (``by = "vehicle"``): its request
#: too, so that a takeover request and the MRM it triggers are one card.
VEHICLE_GROUPABLE_SCOPES: Final = ("event", "vehicle", "link", "handover")
#: Scopes whose alerts may be grouped by the stretch of road ahead (``by = "stretch"``): a
#: link's, whose weak spot ahead the link map names.
STRETCH_GROUPABLE_SCOPES: Final = ("link",)


class GroupSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alerts of ``rules`` raised on several vehicles within ``window_s`` of each other and
    sharing a cause (the serving cell they lost or degrade on, or the intersection zone they
    are in) are one incident; with ``by = "vehicle"``, alerts of several of ``rules`` on one
    vehicle within ``window_s`` are (``min_members`` then counts rules, not vehicles); with
    ``by = "stretch"``, link warnings of one weak stretch of road the link map names
    (``min_members`` then counts warned links, vehicle by vehicle)."""

    name: RuleName
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    by: Literal["cell", "intersection", "vehicle", "stretch"]
    rules: Annotated[list[RuleName], msgspec.Meta(min_length=1)]
    window_s: Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)] = 30.0
    min_members: Annotated[int, msgspec.Meta(ge=2, le=10_000)] = 2
    description: str = ""
    #: The incident's next step; without it the card shows its members' rules' runbooks.
    runbook: Runbook | None = None


class RulesFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    defaults: Defaults = Defaults()
    rule: list[RuleSpec] = []
    group: list[GroupSpec] = []


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated, compiled rule with its defaults applied."""

    name: str
    title: str
    scope: str
    severity: str
    when: Condition
    clear: Condition | None  # None: "not when" (or operator-only for event rules)
    for_s: float
    clear_for_s: float
    escalate_after_s: float | None
    reopen_within_s: float
    inhibited_by: tuple[str, ...]
    when_text: str
    clear_text: str | None
    description: str
    out_of_service: bool = False
    runbook: Runbook | None = None
    #: The facts the title names (``{links_down_phrase} down``); empty: a fixed title.
    title_facts: tuple[str, ...] = ()

    def title_for(self, facts: Any) -> str:
        """The title with the facts it names filled in (the first letter capitalised), so a
        vehicle with one link is told "Its only link down", not "Both links down"."""
        if not self.title_facts or facts is None:
            return self.title
        values = {name: getattr(facts, name, None) for name in self.title_facts}
        text = self.title.format_map(values)
        return text[:1].upper() + text[1:]


def _title_facts(spec: RuleSpec) -> tuple[str, ...]:
    """The fact names a title's ``{...}`` fields name, checked against the rule's scope."""
    try:
        fields = [name for _, name, _, _ in Formatter().parse(spec.title) if name is not None]
    except ValueError as error:
        raise RulesError(f"rule {spec.name}: title: {error}") from None
    allowed = SCOPE_FACTS[spec.scope]
    for name in fields:
        if name not in allowed:
            raise RulesError(f"rule {spec.name}: title names {{{name}}}, not a fact of scope "
                             f"{spec.scope} (one of: {', '.join(sorted(allowed))})")
    return tuple(dict.fromkeys(fields))


@dataclass(frozen=True, slots=True)
class Group:
    """A validated grouping: see ``GroupSpec``."""

    name: str
    title: str
    by: str
    rules: frozenset[str]
    window_s: float
    min_members: int
    description: str
    runbook: Runbook | None = None


class RuleSet(list[Rule]):
    """The compiled rules, in file order, with the file's groupings (tried in file order)."""

    def __init__(self, rules: list[Rule], groups: tuple[Group, ...] = ()) -> None:
        super().__init__(rules)
        self.groups = groups


def runbooks(rules: list[Rule]) -> dict[str, dict[str, Any]]:
    """Rule name -> its runbook, for the rules that have one (the console's snapshot)."""
    return {r.name: r.runbook.to_dict() for r in rules if r.runbook is not None}


def _compile_groups(spec: RulesFile) -> tuple[Group, ...]:
    scopes = {r.name: r.scope for r in spec.rule}
    names = [g.name for g in spec.group]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RulesError(f"group names must be unique: {', '.join(duplicates)}")
    groups = []
    for g in spec.group:
        allowed = VEHICLE_GROUPABLE_SCOPES if g.by == "vehicle" else \
            STRETCH_GROUPABLE_SCOPES if g.by == "stretch" else GROUPABLE_SCOPES
        for rule in g.rules:
            if rule not in scopes:
                raise RulesError(f"group {g.name}: rules names unknown rule {rule!r}")
            if scopes[rule] not in allowed:
                raise RulesError(
                    f"group {g.name}: rule {rule} has scope {scopes[rule]!r}; only "
                    f"{', '.join(allowed)} rules can be grouped by {g.by}" +
                    (" (a vehicle's own request stays its own alert)"
                     if scopes[rule] == "event" else ""))
        if g.by == "vehicle" and len(set(g.rules)) < g.min_members:
            raise RulesError(f"group {g.name}: by vehicle, min_members counts rules: "
                             f"{g.min_members} is more than the {len(set(g.rules))} it names")
        groups.append(Group(name=g.name, title=g.title, by=g.by, rules=frozenset(g.rules),
                            window_s=g.window_s, min_members=g.min_members,
                            description=g.description, runbook=g.runbook))
    return tuple(groups)


def compile_rules(spec: RulesFile) -> RuleSet:
    names = [r.name for r in spec.rule]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RulesError(f"rule names must be unique: {', '.join(duplicates)}")
    rules = []
    d = spec.defaults
    for r in spec.rule:
        if r.out_of_service and r.scope != "vehicle":
            raise RulesError(f"rule {r.name}: out_of_service applies to vehicle rules only")
        for other in r.inhibited_by:
            if other == r.name:
                raise RulesError(f"rule {r.name}: inhibited_by names the rule itself")
            if other not in names:
                raise RulesError(f"rule {r.name}: inhibited_by names unknown rule {other!r}")
        # Event and handover rules raise on arrival; they clear (if at all) on the state of the
        # vehicle, or of the link the handover happened on.
        clear_scope = VEHICLE_FACTS if r.scope == "event" \
            else LINK_FACTS if r.scope == "handover" else SCOPE_FACTS[r.scope]
        try:
            when = compile_condition(r.when, SCOPE_FACTS[r.scope])
            clear = None if r.clear_when is None else compile_condition(r.clear_when, clear_scope)
        except ExpressionError as error:
            raise RulesError(f"rule {r.name}: {error}") from None
        rules.append(Rule(
            name=r.name, title=r.title, scope=r.scope, severity=r.severity, when=when,
            clear=clear, for_s=d.for_s if r.for_s is None else r.for_s,
            clear_for_s=d.clear_for_s if r.clear_for_s is None else r.clear_for_s,
            escalate_after_s=r.escalate_after_s if r.escalate_after_s is not None
            else d.escalate_after_s,
            reopen_within_s=d.reopen_within_s if r.reopen_within_s is None else r.reopen_within_s,
            inhibited_by=tuple(r.inhibited_by), when_text=r.when, clear_text=r.clear_when,
            description=r.description, out_of_service=r.out_of_service, runbook=r.runbook,
            title_facts=_title_facts(r),
        ))
    return RuleSet(rules, _compile_groups(spec))


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules at ``path``, or the shipped default set."""
    path = DEFAULT_RULES_PATH if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError(f"cannot read rules {path}: {error.strerror}") from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "rules") -> RuleSet:
    """Rules from TOML text (a recording keeps the text its hub ran with)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"{source}: not valid TOML: {error}") from None
    try:
        return compile_rules(msgspec.convert(data, RulesFile))
    except msgspec.ValidationError as error:
        raise RulesError(f"{source}: {error}") from None
    except RulesError as error:
        raise RulesError(f"{source}: {error}") from None
