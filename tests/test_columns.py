"""telemetry/columns.py: the fast column conversion gives exactly what ``to_pylist`` gives."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from telemetry.columns import pylist
from telemetry.drivelog import SCHEMA

_STR = pa.dictionary(pa.int32(), pa.string())


def _same(got: list[Any], want: list[Any]) -> None:
    """Equal element by element, with the same Python types (1 is not 1.0 nor True) and NaN
    where NaN (which ``==`` would call different)."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert type(a) is type(b), (a, b)
        if isinstance(a, float) and math.isnan(a):
            assert math.isnan(b)
        else:
            assert a == b


CASES: dict[str, pa.Array] = {
    "float": pa.array([1.5, -0.0, 1e300, 5e-324, float("nan"), 1_767_225_600.1]),
    "float with nulls": pa.array([1.5, None, 2.25]),
    "int": pa.array([0, -(2**63), 2**63 - 1], pa.int64()),
    "int with nulls": pa.array([1, None, 3], pa.int64()),
    "bool": pa.array([True, False, True]),
    "bool with nulls": pa.array([True, None, False]),
    "binary": pa.array([b"{}", b"\x00\xff", b""]),
    "string with nulls": pa.array(["a", None, "é"]),
    "dictionary": pa.array(["v/1/link/a", "v/2/state", "v/1/link/a", ""]).cast(_STR),
    "dictionary with nulls": pa.array([None, "x", None, "y", "x"]).cast(_STR),
    "all null dictionary": pa.nulls(4, _STR),
    "all null float": pa.nulls(3, pa.float64()),
    "empty": pa.array([], pa.float64()),
    "empty dictionary": pa.array([], _STR),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_kind_of_column_converts_as_to_pylist(name: str) -> None:
    """Every kind of column a drive log has: the same values and types as ``to_pylist``."""
    array = CASES[name]
    _same(pylist(array), array.to_pylist())
    chunked = pa.chunked_array([array, array.slice(1), array.slice(0, 0)], type=array.type)
    _same(pylist(chunked), chunked.to_pylist())


def test_dictionary_chunks_with_different_dictionaries() -> None:
    """Each chunk is looked up in its own dictionary (a file's row groups have their own)."""
    one = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], pa.int32()),
                                         pa.array(["a", "b"]))
    two = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1], pa.int32()),
                                         pa.array(["c", "a"]))
    column = pa.chunked_array([one, two])
    assert pylist(column) == column.to_pylist() == ["a", "b", None, "a", "a", "c", "a"]


def test_a_whole_drive_log_table_converts_as_to_pylist(tmp_path: Path) -> None:
    """Every column of the drive-log schema, read back from Parquet (dictionary pages and
    all), converts to what ``to_pylist`` gives."""
    rows = 300
    data: dict[str, list[Any]] = {}
    for i, field in enumerate(SCHEMA):
        kind = field.type
        if pa.types.is_dictionary(kind):
            data[field.name] = [None if (r + i) % 7 == 0 else f"{field.name}-{r % 5}"
                                for r in range(rows)]
        elif pa.types.is_floating(kind):
            data[field.name] = [None if field.name == "rtt_ms" and r % 3 == 0 else r * 0.1 + i
                                for r in range(rows)]
        elif pa.types.is_integer(kind):
            data[field.name] = [r * 1_000_003 for r in range(rows)]
        elif pa.types.is_boolean(kind):
            data[field.name] = [r % 2 == 0 for r in range(rows)]
        else:
            data[field.name] = [None if r % 4 == 0 else f"{r}".encode()
                                if pa.types.is_binary(kind) else f"{r}" for r in range(rows)]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(data, schema=SCHEMA), path, row_group_size=128)
    table = pq.read_table(path)
    for name in table.column_names:
        _same(pylist(table.column(name)), table.column(name).to_pylist())


def test_equal_strings_of_a_dictionary_are_one_object() -> None:
    """What makes the hub's topic lookups cheap: one string object per distinct value."""
    got = pylist(pa.array(["v/1/link/a"] * 3).cast(_STR))
    assert got[0] is got[1] is got[2]
