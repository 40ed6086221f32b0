"""Records (JSON objects, one per row) as the frame a model reads: each feature coerced as
training's `pipeline.frame` coerces it (numbers as floats, booleans as 0/1, categories as
strings, a missing value as NaN). This duplicates the coercion in
services/training/domain/pipeline.py, per value and with the record named in each refusal.

A feature a record leaves out, or gives as null, is missing (the pipeline imputes it); fields
that are not features (the target, say) are ignored.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from services.inference.domain.card import NUMERIC, Feature
from services.inference.domain.errors import BadRecord


class WrongType(ValueError):
    """A value that cannot be its feature's type; the message says what was expected."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(value: Any, type_: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongType(f"expected a number ({type_}), got {_show(value)}")
    if isinstance(value, float):
        if math.isnan(value):
            return math.nan
        if not math.isfinite(value):
            raise WrongType(f"expected a finite number, got {_show(value)}")
        if type_ == "integer" and not value.is_integer():
            raise WrongType(f"expected an integer, got {_show(value)}")
    return float(value)


def boolean(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    raise WrongType(f"expected true or false, got {_show(value)}")


def category(value: Any) -> Any:
    """As training makes it: 1, 1.0 and "1" are one category."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool | int | float):
        return str(value)
    raise WrongType(f"expected a string, got {_show(value)}")


def coerce(value: Any, type_: str) -> Any:
    """One value of a feature of the given type; None is missing (NaN)."""
    if value is None:
        return np.nan
    if type_ in NUMERIC:
        return number(value, type_)
    if type_ == "boolean":
        return boolean(value)
    return category(value)


def dtype(type_: str) -> str:
    return "float64" if type_ in NUMERIC or type_ == "boolean" else "object"


def frame(records: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for index, record in enumerate(records):
        for feature in features:
            try:
                columns[feature.name].append(coerce(record.get(feature.name), feature.type))
            except WrongType as e:
                raise BadRecord(
                    f"record {index}, field {feature.name!r}: {e}", record=index, field=feature.name
                ) from None
    return pd.DataFrame(
        {f.name: pd.Series(columns[f.name], dtype=dtype(f.type)) for f in features}, index=range(len(records))
    )
