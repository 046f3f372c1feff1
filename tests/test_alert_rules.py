"""Alert rules files: the shipped set, [defaults] inheritance, and every way a file is refused."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from l4mon.alerts.facts import VEHICLE_FACTS
from l4mon.alerts.rules import (
    DEFAULT_RULES_PATH,
    Rule,
    RulesError,
    RulesFile,
    compile_rules,
    load_rules,
)

RULE = """
[[rule]]
name = "{name}"
title = "A rule"
scope = "vehicle"
when = "mode == 'mrm'"
severity = "warning"
"""


def compiled(text: str) -> list[Rule]:
    return compile_rules(msgspec.convert(tomllib.loads(text), RulesFile))


def loaded(tmp_path: Path, text: str) -> list[Rule]:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def refused(tmp_path: Path, text: str) -> str:
    """The RulesError message ``load_rules`` gives for ``text``; also checks it names the file."""
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    return message


def vehicle_facts(**values: object) -> SimpleNamespace:
    return SimpleNamespace(**{**dict.fromkeys(VEHICLE_FACTS), **values})


# -- the shipped set -------------------------------------------------------------------------------

EXPECTED_DEFAULTS = {
    # name: (scope, severity, for_s, clear_for_s, escalate_after_s, inhibited_by)
    "takeover_requested": ("event", "takeover", 0.0, 2.0, 20.0, ()),
    "mrm_active": ("vehicle", "takeover", 0.0, 2.0, 20.0, ()),
    "command_not_confirmed": ("event", "takeover", 0.0, 2.0, 15.0, ()),
    "hub_feed_lost": ("site", "takeover", 0.0, 0.0, 15.0, ()),
    "journal_unavailable": ("hub", "warning", 0.0, 0.0, None, ()),
    "hub_session_taken_over": ("hub", "takeover", 0.0, 0.0, 15.0, ()),
    "sender_refused": ("sender", "warning", 0.0, 0.0, None, ()),
    "both_links_down": ("vehicle", "takeover", 0.0, 3.0, 15.0, ("hub_feed_lost",)),
    "link_down_other_degraded": ("vehicle", "warning", 1.0, 5.0, None,
                                 ("both_links_down", "hub_feed_lost")),
    "telemetry_stale": ("vehicle", "takeover", 0.0, 2.0, 15.0,
                        ("both_links_down", "hub_feed_lost")),
    "not_running_as_planned": ("vehicle", "warning", 300.0, 0.0, None, ("hub_feed_lost",)),
    "rtt_over_budget": ("link", "warning", 5.0, 10.0, None, ("hub_feed_lost",)),
    "uplink_below_requirement": ("vehicle", "warning", 5.0, 10.0, None,
                                 ("both_links_down", "hub_feed_lost")),
    "weak_link_ahead": ("link", "warning", 0.0, 2.0, None, ("hub_feed_lost",)),
    "clock_offset": ("link", "info", 10.0, 30.0, None, ()),
    "handover_failure_in_intersection": ("handover", "takeover", 0.0, 2.0, 20.0, ()),
    "ping_pong_hotspot": ("intersection", "warning", 0.0, 60.0, None, ()),
}


def test_default_rules_load_with_the_documented_names() -> None:
    """load_rules() with no path loads the shipped set, exactly the documented rules in order."""
    rules = load_rules()
    assert [r.name for r in rules] == list(EXPECTED_DEFAULTS)
    assert [r.name for r in load_rules(DEFAULT_RULES_PATH)] == list(EXPECTED_DEFAULTS)


@pytest.mark.parametrize("name", list(EXPECTED_DEFAULTS))
def test_default_rule_settings(name: str) -> None:
    """Each shipped rule has its documented scope, severity, durations and inhibitions."""
    rule = {r.name: r for r in load_rules()}[name]
    scope, severity, for_s, clear_for_s, escalate, inhibited = EXPECTED_DEFAULTS[name]
    assert (rule.scope, rule.severity, rule.for_s, rule.clear_for_s, rule.escalate_after_s,
            rule.inhibited_by) == (scope, severity, for_s, clear_for_s, escalate, inhibited)
    assert rule.reopen_within_s == 60.0
    assert rule.title


def test_default_takeover_rules_all_escalate() -> None:
    """Every takeover rule of the shipped set has an escalation time."""
    for rule in load_rules():
        if rule.severity == "takeover":
            assert rule.escalate_after_s is not None, rule.name


def test_takeover_requested_is_operator_resolved_only() -> None:
    """The takeover request event rule has no clear condition: only an operator resolves it."""
    rule = {r.name: r for r in load_rules()}["takeover_requested"]
    assert rule.clear is None
    assert rule.when(SimpleNamespace(kind="takeover_request", detail=None)) is True
    assert rule.when(SimpleNamespace(kind="door_open", detail=None)) is False


def test_both_links_down_conditions() -> None:
    """both_links_down fires on all_links_down and clears on any usable connectivity."""
    rule = {r.name: r for r in load_rules()}["both_links_down"]
    assert rule.when(vehicle_facts(connectivity="all_links_down")) is True
    assert rule.when(vehicle_facts(connectivity="one_link_down")) is False
    assert rule.clear is not None
    for usable in ("ok", "degraded", "one_link_down"):
        assert rule.clear(vehicle_facts(connectivity=usable)) is True
    assert rule.clear(vehicle_facts(connectivity="unknown")) is False


def test_telemetry_stale_hysteresis() -> None:
    """telemetry_stale fires once the state stream is stale at its own pace and over 3 s old,
    and clears only once it is fresh again (a stale stream 2 s old keeps it open)."""
    rule = {r.name: r for r in load_rules()}["telemetry_stale"]
    assert rule.clear is not None
    assert rule.when(vehicle_facts(telemetry="stale", telemetry_age_s=3.5)) is True
    assert rule.when(vehicle_facts(telemetry="stale", telemetry_age_s=2.0)) is False
    # a vehicle reporting every 3 s: 3.5 s of silence is within its pace, fresh
    assert rule.when(vehicle_facts(telemetry="fresh", telemetry_age_s=3.5)) is False
    assert rule.clear(vehicle_facts(telemetry="stale", telemetry_age_s=2.0)) is False
    assert rule.clear(vehicle_facts(telemetry="fresh", telemetry_age_s=0.5)) is True
    assert rule.when(vehicle_facts(telemetry="unknown", telemetry_age_s=None)) is False


def test_rule_keeps_its_texts_and_description() -> None:
    """A compiled rule keeps the condition texts and description for display."""
    rule = {r.name: r for r in load_rules()}["rtt_over_budget"]
    assert rule.when_text == "rtt_p95_ms > 150 and state != 'stale'"
    assert rule.clear_text == "rtt_p95_ms < 120 or state == 'stale'"
    assert "150 ms" in rule.description


def test_empty_rules_file_has_no_rules(tmp_path: Path) -> None:
    """A file with no [[rule]] tables is valid and yields no rules."""
    assert loaded(tmp_path, "") == []
    assert loaded(tmp_path, "[defaults]\nfor_s = 1.0\n") == []


# -- defaults inheritance --------------------------------------------------------------------------

DEFAULTS_TEXT = """
[defaults]
for_s = 4.0
clear_for_s = 7.0
escalate_after_s = 9.0
reopen_within_s = 30.0

[[rule]]
name = "inherits"
title = "Inherits everything"
scope = "vehicle"
when = "mode == 'mrm'"
severity = "takeover"

[[rule]]
name = "overrides"
title = "Overrides everything"
scope = "vehicle"
when = "mode == 'mrm'"
severity = "takeover"
for_s = 1.0
clear_for_s = 0.5
escalate_after_s = 3.0
reopen_within_s = 5.0

[[rule]]
name = "zeroes"
title = "Overrides with zero"
scope = "vehicle"
when = "mode == 'mrm'"
severity = "takeover"
for_s = 0.0
clear_for_s = 0.0
escalate_after_s = 0.0
reopen_within_s = 0.0
"""


def test_defaults_apply_when_a_rule_omits_them() -> None:
    """A rule without for_s/clear_for_s/escalate_after_s/reopen_within_s takes [defaults]."""
    rule = {r.name: r for r in compiled(DEFAULTS_TEXT)}["inherits"]
    assert (rule.for_s, rule.clear_for_s, rule.escalate_after_s, rule.reopen_within_s) == \
        (4.0, 7.0, 9.0, 30.0)


def test_rule_values_override_defaults() -> None:
    """A rule's own durations win over [defaults]."""
    rule = {r.name: r for r in compiled(DEFAULTS_TEXT)}["overrides"]
    assert (rule.for_s, rule.clear_for_s, rule.escalate_after_s, rule.reopen_within_s) == \
        (1.0, 0.5, 3.0, 5.0)


def test_zero_overrides_defaults() -> None:
    """An explicit 0 is a value, not "unset": it overrides a non-zero default."""
    rule = {r.name: r for r in compiled(DEFAULTS_TEXT)}["zeroes"]
    assert (rule.for_s, rule.clear_for_s, rule.escalate_after_s, rule.reopen_within_s) == \
        (0.0, 0.0, 0.0, 0.0)


def test_builtin_defaults_without_defaults_table() -> None:
    """With no [defaults] table: for 0 s, clear 2 s, no escalation, reopen within 60 s."""
    (rule,) = compiled(RULE.format(name="plain"))
    assert (rule.for_s, rule.clear_for_s, rule.escalate_after_s, rule.reopen_within_s) == \
        (0.0, 2.0, None, 60.0)
    assert rule.inhibited_by == ()
    assert rule.clear is None and rule.clear_text is None


def test_partial_defaults_keep_builtin_values(tmp_path: Path) -> None:
    """A [defaults] table setting one key keeps the built-in values for the others."""
    (rule,) = loaded(tmp_path, "[defaults]\nclear_for_s = 9.0\n" + RULE.format(name="r"))
    assert (rule.for_s, rule.clear_for_s, rule.reopen_within_s) == (0.0, 9.0, 60.0)


# -- refused files ---------------------------------------------------------------------------------

def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    """Two rules with one name are refused, naming it."""
    message = refused(tmp_path, RULE.format(name="twice") + RULE.format(name="once")
                      + RULE.format(name="twice"))
    assert "unique" in message and "twice" in message and "once" not in message


def test_duplicate_names_refused_by_compile_rules() -> None:
    """compile_rules itself refuses duplicates (not only load_rules)."""
    with pytest.raises(RulesError, match="twice"):
        compiled(RULE.format(name="twice") * 2)


@pytest.mark.parametrize(("field", "text"), [
    ("when", "rtt_p95_ms > 150"),  # a link fact in a vehicle rule
    ("when", "mode == 'mrm' and bogus > 1"),
    ("clear_when", "modee != 'mrm'"),
])
def test_unknown_fact_is_refused_naming_rule_and_text(tmp_path: Path, field: str,
                                                      text: str) -> None:
    """An unknown fact in when/clear_when is refused, naming the rule and the condition."""
    body = RULE.format(name="bad_fact")
    if field == "when":
        body = body.replace("when = \"mode == 'mrm'\"", f'when = "{text}"')
    else:
        body += f'clear_when = "{text}"\n'
    message = refused(tmp_path, body)
    assert "rule bad_fact" in message
    assert text in message
    assert "unknown fact" in message


EVENT_RULE = """
[[rule]]
name = "takeover"
title = "Takeover"
scope = "event"
when = "kind == 'takeover_request'"
severity = "takeover"
clear_when = "{clear}"
"""


def test_event_rule_clear_when_uses_vehicle_facts() -> None:
    """An event rule's clear_when is over the vehicle's facts: mode is fine."""
    (rule,) = compiled(EVENT_RULE.format(clear="mode == 'remote'"))
    assert rule.clear is not None
    assert rule.clear(vehicle_facts(mode="remote")) is True


def test_event_rule_clear_when_refuses_event_facts(tmp_path: Path) -> None:
    """An event rule's clear_when may not name event facts (kind): it is judged per vehicle."""
    message = refused(tmp_path, EVENT_RULE.format(clear="kind == 'resume'"))
    assert "rule takeover" in message and "unknown fact" in message and "kind" in message


def test_event_rule_when_refuses_vehicle_facts(tmp_path: Path) -> None:
    """An event rule's when is over the event: a vehicle fact there is unknown."""
    text = EVENT_RULE.format(clear="mode == 'remote'").replace(
        "when = \"kind == 'takeover_request'\"", "when = \"mode == 'mrm'\"")
    message = refused(tmp_path, text)
    assert "rule takeover" in message and "unknown fact" in message


def test_unknown_inhibited_by_is_refused(tmp_path: Path) -> None:
    """inhibited_by naming a rule that does not exist is refused, naming both."""
    message = refused(tmp_path, RULE.format(name="child") + 'inhibited_by = ["parnet"]\n'
                      + RULE.format(name="parent"))
    assert "rule child" in message and "inhibited_by" in message and "parnet" in message


def test_inhibited_by_a_later_rule_is_accepted() -> None:
    """inhibited_by may name a rule defined further down the file."""
    rules = compiled(RULE.format(name="child") + 'inhibited_by = ["parent"]\n'
                     + RULE.format(name="parent"))
    assert rules[0].inhibited_by == ("parent",)


def test_self_inhibition_is_refused(tmp_path: Path) -> None:
    """A rule inhibited by itself is refused, naming it."""
    message = refused(tmp_path, RULE.format(name="selfish") + 'inhibited_by = ["selfish"]\n')
    assert "rule selfish" in message and "inhibited_by" in message


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("severity", '"critical"', "severity"),
    ("scope", '"fleet"', "scope"),
    ("for_s", "-1.0", "for_s"),
    ("clear_for_s", "-0.5", "clear_for_s"),
    ("escalate_after_s", "-3", "escalate_after_s"),
    ("reopen_within_s", "100000.0", "reopen_within_s"),  # over a day
    ("for_s", '"5s"', "for_s"),
    ("for_s_", "1.0", "for_s_"),  # a typo: unknown key
    ("inhibit_by", '["x"]', "inhibit_by"),
    ("title", '""', "title"),
])
def test_invalid_field_is_refused_naming_it(tmp_path: Path, key: str, value: str,
                                            expected: str) -> None:
    """A bad value or an unknown key in a rule is a RulesError naming the field and rule index."""
    body = RULE.format(name="r").replace(f"\n{key} = ", "\n#") + f"{key} = {value}\n"
    message = refused(tmp_path, body)
    assert expected in message
    assert "rule[0]" in message


def test_unknown_key_in_defaults_is_refused(tmp_path: Path) -> None:
    """A typo in [defaults] is refused rather than ignored."""
    message = refused(tmp_path, "[defaults]\nfor_secs = 3.0\n" + RULE.format(name="r"))
    assert "for_secs" in message and "defaults" in message


def test_negative_default_is_refused(tmp_path: Path) -> None:
    """A negative duration in [defaults] is refused, naming the field."""
    message = refused(tmp_path, "[defaults]\nclear_for_s = -1.0\n")
    assert "clear_for_s" in message


def test_unknown_top_level_table_is_refused(tmp_path: Path) -> None:
    """A misspelt [[rules]] (for [[rule]]) is refused rather than loading nothing."""
    message = refused(tmp_path, RULE.format(name="r").replace("[[rule]]", "[[rules]]"))
    assert "rules" in message


@pytest.mark.parametrize("name", ["Bad", "1st", "with-dash", "x" * 65, ""])
def test_bad_rule_name_is_refused(tmp_path: Path, name: str) -> None:
    """Rule names are lower-case identifiers of at most 64 characters."""
    message = refused(tmp_path, RULE.format(name=name))
    assert "name" in message


@pytest.mark.parametrize("missing", ["title", "scope", "when", "severity"])
def test_missing_required_field_is_refused(tmp_path: Path, missing: str) -> None:
    """A rule lacking a required field is refused, naming the field."""
    body = "\n".join(line for line in RULE.format(name="r").splitlines()
                     if not line.startswith(f"{missing} ="))
    message = refused(tmp_path, body)
    assert missing in message


def test_not_toml_is_refused(tmp_path: Path) -> None:
    """A file that is not TOML is a RulesError saying so."""
    message = refused(tmp_path, "[[rule]\nname = 'x'\n")
    assert "not valid TOML" in message


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A missing rules file is a RulesError naming the path."""
    path = tmp_path / "nowhere.toml"
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert "cannot read rules" in str(info.value)
    assert str(path) in str(info.value)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as the rules file is a RulesError, not an OSError."""
    with pytest.raises(RulesError, match="cannot read rules"):
        load_rules(tmp_path)


def test_error_in_second_rule_names_that_rule(tmp_path: Path) -> None:
    """The error names the faulty rule, not the first one."""
    message = refused(tmp_path, RULE.format(name="fine")
                      + RULE.format(name="broken").replace("mode ==", "mood =="))
    assert "rule broken" in message and "rule fine" not in message


def test_rules_error_is_a_value_error() -> None:
    """RulesError is a ValueError, which build_runtime documents it raises on bad rules."""
    assert issubclass(RulesError, ValueError)


def test_titles_name_facts_of_their_scope_only() -> None:
    """A title's {fields} are filled from the facts; one naming no fact of its scope, or a
    vehicle-only setting on another scope, stops the rules from loading."""
    from l4mon.alerts.rules import RulesError, parse_rules

    good = parse_rules('[[rule]]\nname = "x"\ntitle = "{links_down_phrase} down"\n'
                       'scope = "vehicle"\nwhen = "links_down > 0"\nseverity = "info"\n')
    assert good[0].title_for(vehicle_facts(links_down_phrase="all 3 links")) == \
        "All 3 links down"
    with pytest.raises(RulesError, match=r"title names \{rtt_p95_ms\}, not a fact of scope "
                                         "vehicle"):
        parse_rules('[[rule]]\nname = "x"\ntitle = "RTT {rtt_p95_ms}"\nscope = "vehicle"\n'
                    'when = "links_down > 0"\nseverity = "info"\n')
    with pytest.raises(RulesError, match="out_of_service applies to vehicle rules only"):
        parse_rules('[[rule]]\nname = "x"\ntitle = "t"\nscope = "link"\nwhen = "age_s > 1"\n'
                    'severity = "info"\nout_of_service = true\n')
