"""Row fingerprints: a stable 64-bit hash per row, to drop exact duplicates within and across
the parts of an upload and to give each version a content hash. Vectorised; stable across
processes and machines (no per-process hash seed)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NULL = np.uint64(0x6E756C6C6E756C6C)  # what a missing value hashes to


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the output."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _column_bits(column: pa.ChunkedArray) -> np.ndarray:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        encoded = column.dictionary_encode()
        words = pd.util.hash_array(np.asarray(encoded.dictionary.to_pylist(), dtype=object))
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        bits = words[indices] if len(words) else np.zeros(len(column), dtype=np.uint64)
    elif pa.types.is_floating(column.type):
        values = column.fill_null(0.0).to_numpy(zero_copy_only=False) + 0.0  # -0.0 == 0.0
        bits = values.astype(np.float64).view(np.uint64)
    else:  # integers and booleans
        bits = pc.cast(column, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    return np.where(nulls, _NULL, bits)


def row_hashes(table: pa.Table) -> np.ndarray:
    hashes = np.full(table.num_rows, 0xCBF29CE484222325, dtype=np.uint64)
    for position, column in enumerate(table.columns):
        with np.errstate(over="ignore"):
            hashes = _mix(hashes ^ _mix(_column_bits(column) + np.uint64(position)))
    return hashes


def first_occurrences(hashes: np.ndarray) -> np.ndarray:
    """Indices of the rows whose fingerprint was not seen earlier, in order."""
    # A hash table (pandas) rather than a sort (np.unique): several times faster.
    return np.flatnonzero(~pd.Series(hashes, copy=False).duplicated(keep="first").to_numpy())
