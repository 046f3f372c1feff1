"""The alert condition language: what it means, what it refuses, and that it never raises."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l4mon.alerts.expr import ExpressionError, compile_condition
from l4mon.alerts.facts import EVENT_FACTS, LINK_FACTS, RSU_FACTS, VEHICLE_FACTS

FACTS = VEHICLE_FACTS | LINK_FACTS | RSU_FACTS | EVENT_FACTS


def facts(**values: Any) -> SimpleNamespace:
    """A facts object: every known fact None unless given."""
    return SimpleNamespace(**{**dict.fromkeys(FACTS), **values})


def holds(text: str, **values: Any) -> bool:
    return compile_condition(text, FACTS)(facts(**values))


# -- meaning ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "values", "expected"), [
    ("rtt_p95_ms > 150", {"rtt_p95_ms": 151.0}, True),
    ("rtt_p95_ms > 150", {"rtt_p95_ms": 150.0}, False),
    ("rtt_p95_ms >= 150", {"rtt_p95_ms": 150.0}, True),
    ("rtt_p95_ms < 150", {"rtt_p95_ms": 150.0}, False),
    ("rtt_p95_ms <= 150", {"rtt_p95_ms": 150.0}, True),
    ("state == 'down'", {"state": "down"}, True),
    ("state == 'down'", {"state": "ok"}, False),
    ("state != 'down'", {"state": "ok"}, True),
    ("state != 'down'", {"state": "down"}, False),
    ("links_total == 2", {"links_total": 2}, True),
    ("clock_suspect", {"clock_suspect": True}, True),
    ("clock_suspect", {"clock_suspect": False}, False),
])
def test_comparisons(text: str, values: dict[str, Any], expected: bool) -> None:
    """Each comparison operator means what it means in Python, boundaries included."""
    assert holds(text, **values) is expected


def test_truthy_non_bool_fact_alone_is_not_satisfied() -> None:
    """A bare fact is satisfied only by True itself, not by any truthy value."""
    assert holds("clock_suspect", clock_suspect=1) is False
    assert holds("clock_suspect", clock_suspect="yes") is False


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("rtt_p95_ms > 150 and state != 'stale'", {"rtt_p95_ms": 200.0, "state": "ok"}, True),
    ("rtt_p95_ms > 150 and state != 'stale'", {"rtt_p95_ms": 200.0, "state": "stale"}, False),
    ("rtt_p95_ms > 150 and state != 'stale'", {"rtt_p95_ms": 100.0, "state": "ok"}, False),
    ("rtt_p95_ms < 120 or state == 'stale'", {"rtt_p95_ms": 130.0, "state": "stale"}, True),
    ("rtt_p95_ms < 120 or state == 'stale'", {"rtt_p95_ms": 110.0, "state": "ok"}, True),
    ("rtt_p95_ms < 120 or state == 'stale'", {"rtt_p95_ms": 130.0, "state": "ok"}, False),
    ("not state == 'ok'", {"state": "down"}, True),
    ("not state == 'ok'", {"state": "ok"}, False),
    ("not (links_ok >= 1 or links_degraded >= 1)", {"links_ok": 0, "links_degraded": 0}, True),
    ("not (links_ok >= 1 or links_degraded >= 1)", {"links_ok": 0, "links_degraded": 1}, False),
    ("links_down >= 1 and links_degraded >= 1 and links_ok == 0",
     {"links_down": 1, "links_degraded": 1, "links_ok": 0}, True),
    ("links_down >= 1 and links_degraded >= 1 and links_ok == 0",
     {"links_down": 1, "links_degraded": 1, "links_ok": 1}, False),
])
def test_and_or_not(text: str, values: dict[str, Any], expected: bool) -> None:
    """and/or/not combine conditions with the usual precedence."""
    assert holds(text, **values) is expected


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("connectivity in ('ok', 'degraded', 'one_link_down')", "degraded", True),
    ("connectivity in ('ok', 'degraded', 'one_link_down')", "all_links_down", False),
    ("connectivity not in ('ok', 'degraded')", "all_links_down", True),
    ("connectivity not in ('ok', 'degraded')", "ok", False),
    ("connectivity in ['ok', 'degraded']", "ok", True),
    ("connectivity in ('ok',)", "ok", True),
    ("connectivity in ()", "ok", False),
])
def test_in_with_tuples(text: str, value: str, expected: bool) -> None:
    """`in` / `not in` test membership in a tuple (or list) of literals."""
    assert holds(text, connectivity=value) is expected


def test_in_tuple_of_numbers() -> None:
    """Membership works for numbers, with Python's 1 == 1.0."""
    assert holds("links_total in (1, 2)", links_total=2) is True
    assert holds("links_total in (1, 2)", links_total=2.0) is True
    assert holds("links_total in (1, 2)", links_total=3) is False


@pytest.mark.parametrize(("usable", "expected"), [(8_000.0, True), (8_800.0, False),
                                                  (8_799.0, True), (9_000.0, False)])
def test_arithmetic(usable: float, expected: bool) -> None:
    """Arithmetic on facts: the uplink margin of 10 % over the requirement."""
    text = "ul_kbps_usable < ul_required_kbps * 1.1"
    assert holds(text, ul_kbps_usable=usable, ul_required_kbps=8_000.0) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("ul_kbps + dl_kbps == 30", True),
    ("ul_kbps - dl_kbps == -10", True),
    ("dl_kbps / ul_kbps == 2", True),
    ("ul_kbps * 2 == dl_kbps", True),
    ("-ul_kbps == -10", True),
    ("1 + 2 * 3 == 7", True),
    ("(1 + 2) * 3 == 9", True),
])
def test_arithmetic_operators_and_precedence(text: str, expected: bool) -> None:
    """+ - * / and unary minus, with the usual precedence."""
    assert holds(text, ul_kbps=10, dl_kbps=20) is expected


@pytest.mark.parametrize("text", [
    "rtt_p95_ms > 150", "rtt_p95_ms < 150", "rtt_p95_ms >= 0", "rtt_p95_ms <= 1e9",
    "150 < rtt_p95_ms", "rtt_p95_ms in (None, 1)", "rtt_p95_ms not in (1, 2)",
    "rtt_p95_ms + 1 > 0", "rtt_p95_ms * 2 < 10", "-rtt_p95_ms < 0", "rtt_p95_ms / 2 >= 0",
])
def test_none_fact_makes_ordering_and_arithmetic_false(text: str) -> None:
    """A missing fact (None) never satisfies an ordering, membership or arithmetic condition."""
    assert holds(text, rtt_p95_ms=None) is False


def test_none_fact_equality_works() -> None:
    """`== None` / `!= None` do test for a missing fact."""
    assert holds("rtt_p95_ms == None", rtt_p95_ms=None) is True
    assert holds("rtt_p95_ms == None", rtt_p95_ms=12.0) is False
    assert holds("rtt_p95_ms != None", rtt_p95_ms=12.0) is True
    assert holds("rtt_p95_ms != None", rtt_p95_ms=None) is False
    assert holds("rtt_p95_ms == None or rtt_p95_ms > 150", rtt_p95_ms=None) is True


def test_not_of_none_comparison_is_true() -> None:
    """`not` turns the false of a None comparison into true (as documented: it is false)."""
    assert holds("not rtt_p95_ms > 150", rtt_p95_ms=None) is True


@pytest.mark.parametrize(("value", "expected"), [
    (50.0, True), (10.0, True), (100.0, True), (9.9, False), (100.1, False), (None, False),
])
def test_chained_comparison(value: float | None, expected: bool) -> None:
    """`a <= x <= b` holds only when both comparisons do, and never for None."""
    assert holds("10 <= rtt_p95_ms <= 100", rtt_p95_ms=value) is expected


def test_chained_comparison_evaluates_pairwise() -> None:
    """Chains compare neighbours (1 < 3 > 2 holds although 1 > 2 does not)."""
    assert holds("links_ok < links_total > links_down", links_ok=1, links_total=3,
                 links_down=2) is True
    assert holds("links_ok < links_total > links_down", links_ok=1, links_total=3,
                 links_down=3) is False


@pytest.mark.parametrize("text", [
    "ul_kbps / links_total > 0", "ul_kbps / links_total < 0", "ul_kbps / links_total == 0",
    "ul_kbps / 0 > 1", "ul_kbps / 0.0 != 1",
])
def test_division_by_zero_is_false(text: str) -> None:
    """Dividing by zero makes the condition false instead of raising."""
    assert holds(text, ul_kbps=100.0, links_total=0) is False


def test_type_mismatch_is_false() -> None:
    """Comparing a string with a number is not satisfied (and does not raise)."""
    assert holds("state > 1", state="ok") is False
    assert holds("state + 1 == 2", state="ok") is False


def test_literals_true_false_none() -> None:
    """Capitalised True/False/None are literals."""
    assert holds("clock_suspect == True", clock_suspect=True) is True
    assert holds("clock_suspect == False", clock_suspect=False) is True
    assert holds("cell_id == None") is True


def test_condition_is_reusable_across_facts() -> None:
    """One compiled condition evaluates each facts object on its own."""
    condition = compile_condition("rtt_p95_ms > 150", FACTS)
    assert [condition(facts(rtt_p95_ms=v)) for v in (200.0, 100.0, None, 151.0)] == \
        [True, False, False, True]


# -- refused at compile time -----------------------------------------------------------------------

def test_unknown_fact_names_text_and_lists_known_facts() -> None:
    """A name that is not a fact of the scope is refused, listing the known facts."""
    with pytest.raises(ExpressionError) as info:
        compile_condition("rtt_p59_ms > 150", LINK_FACTS)
    message = str(info.value)
    assert "'rtt_p59_ms > 150'" in message
    assert "unknown fact" in message
    assert "rtt_p59_ms" in message
    for known in sorted(LINK_FACTS):
        assert known in message


def test_fact_of_another_scope_is_unknown() -> None:
    """A vehicle fact is not a link fact: scopes are checked separately."""
    compile_condition("telemetry_age_s > 3", VEHICLE_FACTS)
    with pytest.raises(ExpressionError, match="unknown fact"):
        compile_condition("telemetry_age_s > 3", LINK_FACTS)


def test_unknown_fact_inside_tuple_or_deep_expression_is_refused() -> None:
    """Unknown names are found anywhere in the expression, not only at the top."""
    with pytest.raises(ExpressionError, match="bogus"):
        compile_condition("state == 'ok' and not (1 + bogus * 2 > 3)", LINK_FACTS)


@pytest.mark.parametrize(("text", "snippet"), [
    ("len(state) > 2", "len(state)"),                       # call
    ("state.upper() == 'OK'", "state.upper"),               # attribute / call
    ("state.real == 1", "state.real"),                      # attribute
    ("cell_id[0] == 'a'", "cell_id[0]"),                    # subscript
    ("(lambda: 1)() == 1", "lambda"),                       # lambda
    ("(lambda: True)", "lambda"),
    ("[x for x in (1, 2)] == 1", "for x in"),               # comprehension
    ("any(x for x in (1, 2))", "any"),
    ("{x: 1 for x in (1,)} == 1", "for x in"),
    ("(rtt_p95_ms := 1) > 0", ":="),                        # walrus
    ("f'{state}' == 'ok'", "f'"),                           # f-string
    ("state == f'ok'", "f'ok'"),
    ("rtt_p95_ms ** 2 > 1", "**"),                          # operators outside the whitelist
    ("rtt_p95_ms // 2 > 1", "//"),
    ("rtt_p95_ms % 2 > 1", "%"),
    ("ul_kbps & 1", "&"),
    ("state is None", "is None"),
    ("1 if state else 2", "if"),
    ("{'a': 1} == 1", "{'a': 1}"),
    ("{1, 2} == 1", "{1, 2}"),
    ("state in ('a', state)", "('a', state)"),              # tuple holding a non-literal
    ("b'x' == state", "b'x'"),
    ("__import__('os')", "__import__"),
])
def test_forbidden_syntax_is_refused_naming_the_text(text: str, snippet: str) -> None:
    """Calls, attributes, subscripts, lambdas, comprehensions, walrus, f-strings are refused."""
    with pytest.raises(ExpressionError) as info:
        compile_condition(text, FACTS)
    message = str(info.value)
    assert repr(text) in message
    assert snippet in message


@pytest.mark.parametrize("word", ["true", "false", "none"])
def test_lowercase_literals_are_refused_with_a_hint(word: str) -> None:
    """true/false/none are refused with the spelling to use, even if no fact has that name."""
    text = f"clock_suspect == {word}"
    with pytest.raises(ExpressionError) as info:
        compile_condition(text, FACTS)
    assert "write True, False or None" in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["", "   ", "rtt_p95_ms >", "state == 'ok' and", "(1",
                                  "a b", "1;2", "import os", "x = 1", "state\x00"])
def test_unparsable_text_is_refused_naming_it(text: str) -> None:
    """Text that does not parse is an ExpressionError naming the text."""
    with pytest.raises(ExpressionError) as info:
        compile_condition(text, FACTS)
    assert "cannot parse" in str(info.value)
    assert repr(text) in str(info.value)


def test_deeply_nested_condition_is_an_expression_error() -> None:
    """A condition nested too deeply to compile is refused as ExpressionError."""
    with pytest.raises(ExpressionError):
        compile_condition("not " * 2000 + "clock_suspect", FACTS)


def test_lone_surrogate_is_an_expression_error() -> None:
    """Text that cannot even be encoded is refused as ExpressionError."""
    with pytest.raises(ExpressionError):
        compile_condition("state == '\ud800'", FACTS)


# -- never raises at run time ----------------------------------------------------------------------

def test_huge_int_fact_in_float_arithmetic_does_not_raise() -> None:
    """An int fact too large for a float makes the condition false, it does not raise."""
    assert holds("speed_mps * 1.5 > 1", speed_mps=10**400) is False


def test_string_times_huge_literal_does_not_raise() -> None:
    """Repeating a string fact by an enormous number is not satisfied, it does not raise."""
    assert holds("site * 99999999999999999999 == site", site="a") is False


@pytest.mark.parametrize("text", ["site + 'x' == 'ax'", "site * 2 == 'aa'",
                                  "2 * site != 'nothing'"])
def test_arithmetic_on_strings_is_false(text: str) -> None:
    """Arithmetic on a string fact is not satisfied, as documented."""
    assert holds(text, site="a") is False


_TOKENS = st.sampled_from([
    "rtt_p95_ms", "state", "links_total", "mode", "kind", "unknown_fact", "true", "None", "True",
    "1", "0", "-", "+", "*", "/", "**", "%", "(", ")", "[", "]", "{", "}", ",", ":", ".",
    "==", "!=", "<", "<=", ">", ">=", "in", "not", "and", "or", "is", "if", "else", "lambda",
    "for", ":=", "'ok'", "f'{state}'", "b'x'", "len", "\\", "#", "1e999", "0x10", "...",
    "yield", "await", "x", "=", ";", "\n",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_TOKENS, max_size=14).map(" ".join)))
def test_any_text_compiles_or_raises_expression_error(text: str) -> None:
    """Whatever the text, compiling it either works or raises ExpressionError, nothing else."""
    try:
        condition = compile_condition(text, LINK_FACTS)
    except ExpressionError:
        return
    assert callable(condition)


_FACT_NAMES = sorted(VEHICLE_FACTS)
_LITERALS = st.one_of(
    st.integers(0, 9).map(str), st.sampled_from(["1.5", "0.0", "1e308", "None", "True", "False",
                                                "'mrm'", "''", "('ok', 'degraded')", "(1, 2.5)",
                                                "()"]))
_ATOMS = st.one_of(st.sampled_from(_FACT_NAMES), _LITERALS)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "==", "!=", "<", "<=", ">",
                                               ">=", "in", "not in", "and", "or"]), inner)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"(-{e})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} < {t[1]} <= {t[2]})"),
    )


_CONDITIONS = st.recursive(_ATOMS, _extend, max_leaves=8)
#: Small ints keep string repetition (a str fact times an int) bounded in memory.
_VALUES = st.one_of(st.none(), st.text(max_size=3), st.integers(-9, 9),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONDITIONS, st.fixed_dictionaries({name: _VALUES for name in _FACT_NAMES}))
def test_compiled_conditions_never_raise_on_random_facts(text: str,
                                                         values: dict[str, Any]) -> None:
    """A compiled condition returns a bool for any facts (None, str, int, float), never raises."""
    condition = compile_condition(text, VEHICLE_FACTS)
    result = condition(SimpleNamespace(**values))
    assert isinstance(result, bool)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-10**6, 10**6)))
def test_default_style_conditions_never_raise(value: float | None) -> None:
    """The shipped rules' shapes of condition return bools for any numeric or None fact."""
    for text in ("rtt_p95_ms > 150 and state != 'stale'", "rtt_p95_ms < 120 or state == 'stale'",
                 "rtt_p95_ms / loss_ratio > 1", "rtt_p95_ms * 1.1 >= loss_ratio"):
        result = compile_condition(text, LINK_FACTS)(facts(rtt_p95_ms=value, loss_ratio=value,
                                                           state="ok"))
        assert isinstance(result, bool)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert result is False
