"""How each condition differs from the baseline (daylight when there is one).

The issue's reviewers ask "what does snow do to the links?": every figure a table marks as
better-lower or better-higher is compared, row by row, with the baseline condition's row for
the same link (and intersection, RSU, rule). A change of at least 10 % (and, for shares, at
least 0.1 percentage point) is flagged worse or better; the page colours those cells.
"""

from __future__ import annotations

from typing import Any

from l4mon.faces.report.model import Column, Table

RELATIVE = 0.10
ABSOLUTE_SHARE = 0.001

Marks = dict[tuple[str, int, str], str]


def _key(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c.key) for c in table.columns
                 if c.kind == "text" and c.key not in ("condition", "source"))


def _flag(col: Column, base: float, value: float) -> tuple[float | None, str]:
    change = (value - base) / abs(base) if base else None
    big = abs(value - base) >= ABSOLUTE_SHARE if col.kind == "pct" else True
    rel = (change is None and value != base) or (change is not None
                                                and abs(change) >= RELATIVE)
    if not (big and rel):
        return change, ""
    worse = value > base if col.better == "lower" else value < base
    return change, "worse" if worse else "better"


def compare(tables: list[Table], baseline: str | None) -> tuple[Table, Marks]:
    out = Table("differences", f"Differences from {baseline or 'the baseline'}", [
        Column("condition", "Condition", "text"), Column("table", "Table", "text"),
        Column("what", "Row", "text"), Column("figure", "Figure", "text"),
        Column("baseline", "Baseline", digits=4), Column("value", "Value", digits=4),
        # as the source table shows them (the page); the numbers above are for the exports
        Column("baseline_shown", "Baseline", "text"), Column("value_shown", "Value", "text"),
        Column("change", "Change", "pct", digits=1), Column("flag", "", "text"),
    ], note=f"Changes of ≥ {RELATIVE:.0%} (shares also ≥ {ABSOLUTE_SHARE:.1%} absolute) "
            f"against the {baseline} row of the same link / intersection / RSU / rule.")
    marks: Marks = {}
    if baseline is None:
        return out, marks
    for table in tables:
        base = {_key(table, r): r for r in table.rows if r.get("condition") == baseline}
        for i, row in enumerate(table.rows):
            if row.get("condition") == baseline:
                continue
            ref = base.get(_key(table, row))
            if ref is None:
                continue
            for col in table.columns:
                b, v = ref.get(col.key), row.get(col.key)
                if col.better is None or not isinstance(b, int | float) \
                        or not isinstance(v, int | float):
                    continue
                change, flag = _flag(col, float(b), float(v))
                if not flag:
                    continue
                marks[(table.name, i, col.key)] = flag
                out.rows.append({"condition": row["condition"], "table": table.title,
                                 "what": " / ".join(str(k) for k in _key(table, row)),
                                 "figure": col.title + (f" ({col.unit})" if col.unit else ""),
                                 "baseline": float(b), "value": float(v),
                                 "baseline_shown": col.show(b), "value_shown": col.show(v),
                                 "change": change, "flag": flag})
    return out, marks
