"""Rule conditions: a small, safe expression language compiled once, before anything runs.

A condition reads like Python (``rtt_p95_ms > 150 and state != 'down'``) but only a whitelist of
syntax is accepted: names of known facts, literals, comparisons (``== != < <= > >= in not in``),
``and``/``or``/``not``, and ``+ - * /`` on numbers. Anything else (calls, attributes,
subscripts, unknown names) is rejected at load time with the offending text, so a typo in a rule
can never surface at 3 a.m. as an exception or a silently false condition.

A comparison involving a missing fact (``None``) is false: "no RTT measured" never satisfies
"RTT over budget".
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Collection
from typing import Any

Facts = Any  # an object exposing the facts as attributes
Condition = Callable[[Facts], bool]
_Value = Callable[[Facts], Any]


class ExpressionError(ValueError):
    """A condition that does not parse or names something that is not a fact."""


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


#: Longer conditions are refused: a rule is a line or two, and the limit bounds the parser.
MAX_LENGTH = 2_000
#: Errors a condition may run into on odd facts; each means "not satisfied", never a crash.
_UNSATISFIED = (TypeError, ZeroDivisionError, OverflowError, ValueError, ArithmeticError)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_condition(text: str, facts: Collection[str]) -> Condition:
    """Compile ``text`` into a function of a facts object; raises ``ExpressionError``."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"condition longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
        compiled = _Compiler(text, frozenset(facts)).node(tree.body)
    except SyntaxError as error:
        raise ExpressionError(f"cannot parse {text!r}: {error.msg}") from None
    except RecursionError:
        raise ExpressionError(f"condition nested too deeply: {text[:80]!r}...") from None
    except (ValueError, UnicodeError) as error:  # e.g. a lone surrogate in a literal
        if isinstance(error, ExpressionError):
            raise
        raise ExpressionError(f"cannot parse {text[:80]!r}: {error}") from None

    def condition(f: Facts) -> bool:
        try:
            return compiled(f) is True
        except _UNSATISFIED:  # None in arithmetic, x / 0, overflow: not satisfied
            return False

    return condition


class _Compiler:
    def __init__(self, text: str, facts: frozenset[str]) -> None:
        self.text = text
        self.facts = facts

    def fail(self, node: ast.AST, why: str) -> ExpressionError:
        snippet = ast.get_source_segment(self.text.strip(), node) or ast.dump(node)
        return ExpressionError(f"in {self.text!r}: {why}: {snippet}")

    def node(self, node: ast.AST) -> _Value:
        if isinstance(node, ast.BoolOp):
            parts = [self.node(v) for v in node.values]
            if len(parts) == 2:  # the usual case, without a generator (rules run every tick)
                first, second = parts
                if isinstance(node.op, ast.And):
                    return lambda f: first(f) is True and second(f) is True
                return lambda f: first(f) is True or second(f) is True
            if isinstance(node.op, ast.And):
                return lambda f: all(p(f) is True for p in parts)
            return lambda f: any(p(f) is True for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.node(node.operand)
            return lambda f: inner(f) is not True
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.node(node.operand)
            return lambda f: -inner(f)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            op = _ARITH[type(node.op)]
            left, right = self.node(node.left), self.node(node.right)

            def arithmetic(f: Facts) -> Any:
                a, b = left(f), right(f)
                if not (_is_number(a) and _is_number(b)):
                    raise TypeError("arithmetic is for numbers only")  # 'ab' * 3 is not a fact
                return op(a, b)

            return arithmetic
        if isinstance(node, ast.Name):
            if node.id in ("true", "false", "none"):
                raise self.fail(node, "write True, False or None")
            if node.id not in self.facts:
                known = ", ".join(sorted(self.facts))
                raise self.fail(node, f"unknown fact (known: {known})")
            return operator.attrgetter(node.id)
        if (isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool))) \
                or (isinstance(node, ast.Constant) and node.value is None):
            value = node.value
            return lambda f: value
        if isinstance(node, (ast.Tuple, ast.List)):
            if not all(isinstance(e, ast.Constant) for e in node.elts):
                raise self.fail(node, "a list may only hold literals")
            values = frozenset(e.value for e in node.elts)  # type: ignore[attr-defined]
            return lambda f: values
        raise self.fail(node, "not allowed in a condition")

    def compare(self, node: ast.Compare) -> _Value:
        terms = [self.node(node.left), *(self.node(c) for c in node.comparators)]
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise self.fail(node, "comparison not allowed")
            ops.append(_COMPARE[type(op)])

        if len(ops) == 1:  # a single comparison, the usual case: no loop
            return _single(ops[0], terms[0], terms[1])

        def evaluate(f: Facts) -> bool:
            left = terms[0](f)
            for op, term in zip(ops, terms[1:], strict=True):
                right = term(f)
                if (left is None or right is None) and op not in (operator.eq, operator.ne):
                    return False
                if not op(left, right):
                    return False
                left = right
            return True

        return evaluate


def _single(op: Callable[[Any, Any], bool], left: _Value, right: _Value) -> _Value:
    """``left op right`` as ``compare``'s loop decides it for one comparison: with None on
    either side only ``==`` and ``!=`` can hold. (``True if x else False`` rather than
    ``bool(x)``: no call, for every rule of every vehicle at every tick.)"""
    if op in (operator.eq, operator.ne):
        return lambda f: True if op(left(f), right(f)) else False  # noqa: SIM210

    def evaluate(f: Facts) -> bool:
        a, b = left(f), right(f)
        if a is None or b is None:
            return False
        return True if op(a, b) else False  # noqa: SIM210

    return evaluate

