"""The report's tables as CSV and Parquet files (and a zip of both, for the API)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from l4mon.faces.report.model import Report, Table


def _arrow(table: Table) -> pa.Table:
    return pa.Table.from_pylist(table.rows) if table.rows else pa.table(
        {c.key: pa.array([], pa.string()) for c in table.columns})


def _cell(value: object) -> object:
    """None as an empty cell; a flag as ``true``/``false``, as the Parquet copy's boolean
    reads in every other tool (Python's ``True`` is not what a CSV reader expects)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[c.key for c in table.columns], lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def write_csv(report: Report, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in report.tables.items():
        path = folder / f"{name}.csv"
        path.write_text(_csv(table), encoding="utf-8")
        paths.append(path)
    return paths


def write_parquet(report: Report, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in report.tables.items():
        path = folder / f"{name}.parquet"
        pq.write_table(_arrow(table), path)
        paths.append(path)
    return paths


def zip_tables(report: Report, html: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, table in report.tables.items():
            z.writestr(f"csv/{name}.csv", _csv(table))
            sink = pa.BufferOutputStream()
            pq.write_table(_arrow(table), sink)
            z.writestr(f"parquet/{name}.parquet", sink.getvalue().to_pybytes())
        if html is not None:
            z.writestr("report.html", html)
    return buffer.getvalue()
