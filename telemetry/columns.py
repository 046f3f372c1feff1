"""Arrow columns as Python lists, the same values as ``to_pylist`` at a fraction of its cost.

A replay turns every row of a drive log into Python objects before the hub sees it, so this
conversion is paid once per message. ``to_pylist`` builds an Arrow scalar per element; for a
dictionary-encoded string column (every ``_STR`` column of the log, the recorded ``topic``
among them) that was ~2 µs a row, a quarter of a replay's time. Here a dictionary column
converts its few distinct values once and looks the rest up by index, and a numeric column
without nulls goes through NumPy, whose ``tolist`` gives the same Python ``float``, ``int``
and ``bool``. Anything else keeps ``to_pylist``: the result is always equal to it, element by
element (tests/test_columns.py checks that against ``to_pylist`` on every kind of column).

A bonus of the dictionary path: equal strings are one object, so the hub's dict lookups by
topic hit Python's cached string hash instead of hashing every topic anew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def pylist(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """``column.to_pylist()``, fast for dictionary and null-free numeric columns."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return _chunk(column.chunk(0))
        out: list[Any] = []
        for chunk in column.chunks:
            out += _chunk(chunk)
        return out
    return _chunk(column)


def _chunk(array: pa.Array) -> list[Any]:
    n = len(array)
    if array.null_count == n:
        return [None] * n
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _dictionary(array)
    if array.null_count == 0 and (pa.types.is_floating(kind) or pa.types.is_integer(kind)
                                  or pa.types.is_boolean(kind)):
        return array.to_numpy(zero_copy_only=False).tolist()
    return array.to_pylist()


def _dictionary(array: pa.DictionaryArray) -> list[Any]:
    """Each index looked up in the dictionary's values, converted once; a null index is None
    (the extra last entry of the lookup table)."""
    values = array.dictionary.to_pylist()
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[:len(values)] = values
    indices = array.indices
    if array.null_count:
        indices = pc.fill_null(indices, len(values))
    return lookup[indices.to_numpy()].tolist()
