"""A request's rows as a model reads them: one 1-D numpy array per feature, in the card's order.
Numbers and booleans are float64 (NaN when missing), categories and text are objects (strings,
NaN when missing), by the coercion rules training's frames follow
(services/common/contracts/coercion.py).

The protocol decoders make them, the model contract checks them, batching joins them and the
runtime reads them: no pandas on the way. Only the scikit-learn runtime makes a frame of them.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from services.common.contracts import NUMERIC, ColumnType, Feature
from services.common.contracts.coercion import FLOAT, WrongType, coerce, dtype

Columns: TypeAlias = dict[str, np.ndarray]


class Refused(ValueError):
    """A value its feature cannot take; `index` is its row."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def column(values: Sequence[Any], feature: Feature) -> np.ndarray:
    """A feature's values, each coerced to what the model reads."""
    if feature.type in NUMERIC:
        numbers = _numbers(values, feature.type)
        if numbers is not None:
            return numbers
    kind = dtype(feature.type)
    out = np.empty(len(values), dtype=np.float64 if kind == FLOAT else object)
    for index, value in enumerate(values):
        try:
            out[index] = coerce(value, feature.type)
        except WrongType as e:
            raise Refused(str(e), index) from None
    return out


def _numbers(values: Sequence[Any], type_: str) -> np.ndarray | None:
    """Numbers at numpy's speed, when every value is a plain int, float or None that the rule
    accepts as is; None otherwise, and the value-by-value path says what is wrong."""
    if not set(map(type, values)) <= _PLAIN_NUMBERS:
        return None  # strings, booleans, objects: for `coerce` to refuse, or take
    try:
        out = np.array(values, dtype=np.float64)  # None becomes NaN, a missing value
    except OverflowError:  # an integer beyond float64
        return None
    if np.isinf(out).any():
        return None
    if type_ == ColumnType.INTEGER and (np.mod(out[~np.isnan(out)], 1) != 0).any():
        return None
    return out


_PLAIN_NUMBERS = frozenset({int, float, type(None)})


def count(rows: Mapping[str, np.ndarray]) -> int:
    """How many rows (the length of any column; 0 for no column)."""
    return len(next(iter(rows.values()))) if rows else 0


def concat(parts: Sequence[Columns]) -> Columns:
    """The rows of several requests, one after another (each has the same features)."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def head(rows: Mapping[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    """The first n rows as records (feature -> value), numpy's scalars as Python's."""
    names = list(rows)
    firsts = [rows[name][:n].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*firsts, strict=True)]


def missing(values: np.ndarray) -> np.ndarray:
    """Which values are missing: NaN among floats; None or NaN among objects."""
    if values.dtype.kind == "f":
        nan: np.ndarray = np.isnan(values)
        return nan
    flags: np.ndarray = np.fromiter((v is None or (isinstance(v, float) and v != v) for v in values), bool, len(values))
    return flags
