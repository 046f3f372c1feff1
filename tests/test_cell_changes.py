"""Cell changes count changes of the serving cell between rows that name one: a row without a
cell is a gap in the reporting, not a handover (issue 24)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from scenarios.importers import count_changes, import_files
from telemetry.drivelog import read_table

EXCERPT = (Path(__file__).resolve().parent / "fixtures" / "cicv5g"
           / "arterial_n78_v50_excerpt.txt")


def test_a_row_without_a_cell_is_no_change() -> None:
    assert count_changes(["a", None, "a", "", "a"]) == 0
    assert count_changes(["a", None, None, "b"]) == 1
    assert count_changes([None, "a", "b", None, "a", None]) == 2
    assert count_changes([None, None]) == 0


def test_import_with_cell_less_rows_in_between(tmp_path: Path) -> None:
    """Cells blanked inside a run of one cell and across a change: the count is that of the
    rows that still name a cell, read back from the log the import wrote."""
    lines = [" ".join(line.split()[:10]) for line in EXCERPT.read_text().splitlines()]
    header, data = lines[0].split(), [line.split() for line in lines[1:]]
    i_cell = header.index("cellid(db)")
    cells = [row[i_cell] for row in data]
    change_at = next(i for i in range(1, len(cells)) if cells[i] != cells[i - 1])
    # a stretch inside one cell, and the rows either side of a change
    blank = {3, 4, 5, 9, change_at - 1, change_at, change_at + 1}
    for i in blank:
        data[i][i_cell] = ""
    path = tmp_path / "arterial_n78_v50_gaps.txt"
    path.write_text(" ".join(header) + "\n" + "\n".join(" ".join(r) for r in data) + "\n")
    report = import_files("cicv5g", [path], tmp_path / "log")
    (f,) = report.files
    links = [r for r in read_table(tmp_path / "log").to_pylist() if r["kind"] == "link"]
    logged = [r["cell_id"] for r in sorted(links, key=lambda r: r["seq"])]
    assert [i for i, c in enumerate(logged) if c is None] == sorted(blank)
    named = [c for c in logged if c is not None]
    truth = sum(1 for a, b in pairwise(named) if a != b)
    every_row = sum(1 for a, b in pairwise(logged) if a != b)
    assert f.cell_changes == truth
    assert truth < every_row  # the gaps would have been counted as changes before
