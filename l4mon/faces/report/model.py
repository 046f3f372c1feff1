"""What a report is, independent of how it is shown: named tables, budget checks, charts.

The HTML page, the CSV files, the Parquet files and the API's zip are all renderings of the
same ``Report``, so a number a reviewer reads on the page is the number in the table export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "int", "num", "pct", "ratio", "bool"]
#: How a figure without measurements is shown: not 0, not a dash that reads as "none".
NOT_MEASURED = "N/A"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: Kind = "num"
    unit: str = ""
    digits: int = 1
    #: "lower" / "higher" is better: the page highlights how each condition differs
    better: Literal["lower", "higher"] | None = None
    #: What an empty value is shown as, where a column can say why ("not measured").
    missing: str = NOT_MEASURED

    def show(self, value: Any) -> str:
        """The value as a reader sees it (not escaped): 12.3 %, 1,234, 56.7; N/A for a
        figure with nothing measured behind it (never 0)."""
        if value is None or value == "":
            return self.missing
        if self.kind == "text":
            return str(value)
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "int":
            return f"{int(value):,}"
        if self.kind == "pct":
            return f"{100 * float(value):.{self.digits}f} %"
        return f"{float(value):,.{self.digits}f}"


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


@dataclass
class LinkMapSection:
    """The link map section's pictures and words; its tables (``linkmap_conditions``,
    ``linkmap_worst``) are in ``Report.tables``, so they are exported like every other."""

    path: str
    #: What the map holds and how its stretches are judged: the section's first paragraph.
    about: str
    links: list[str]
    #: Column order of the side-by-side views: the report's condition order.
    conditions: list[str]
    #: The condition other columns are marked worse / better against (None: no marks).
    baseline: str | None
    #: link → one inline SVG map per condition, in ``conditions`` order, same extent and scale
    maps: dict[str, list[str]]
    legend: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    site: str
    generated_at: float
    period: tuple[float | None, float | None]
    verdict: Literal["pass", "fail", "not graded"]
    verdict_detail: list[str]
    conditions: list[str]
    baseline: str | None
    tables: dict[str, Table]
    charts: dict[str, str]  # name → inline SVG
    notes: list[str]
    #: (table, row index, column) → "worse" / "better" than the baseline condition
    marks: dict[tuple[str, int, str], str] = field(default_factory=dict)
    #: What the data covers: first and last receive time, the drives' own hours, drives.
    data_start: float | None = None
    data_end: float | None = None
    hours: float = 0.0
    sessions: int = 0
    #: Only with ``--linkmap``: a report without it is unchanged.
    linkmap: LinkMapSection | None = None
