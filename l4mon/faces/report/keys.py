"""Dense integer ids for the strings of dictionary columns, stable across batches and files.

Each Parquet batch brings its own dictionary for ``source`` or ``link``; mapping them once per
batch onto ids that never change lets per-stream state live in plain arrays and dicts keyed by
small ints, and keeps the per-row work in numpy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class Keys:
    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def id(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            found = self.ids[name] = len(self.names)
            self.names.append(name)
        return found

    def codes(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Global ids for every row (-1 for null)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        words = column.dictionary.to_pylist()
        lookup = np.array([self.id(w) for w in words] + [-1], dtype=np.int64)
        indices = column.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)
        return lookup[indices]
