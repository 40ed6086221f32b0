"""How a feature's values become what a model reads: numbers as floats, booleans as 0/1 floats,
categories as strings, a missing value as NaN. Training makes its frames so (pipeline.frame),
and the pipeline it fits holds nothing of ours, so inference must make the rows it predicts on
the same way (records.frame): one rule, here, for both.

Per value and in plain Python (this module is a contract: no numpy, no pandas): each service
applies it to its own containers.
"""

import math
from typing import Any, Final, Literal

from services.common.contracts.datasets import NUMERIC, ColumnType

MISSING = math.nan
MISSING_CATEGORY: Final = "__missing__"
"""A missing category as the models trained since compiling began read it (their card says so):
ONNX has no NaN among strings, so the imputer looks for this marker instead."""
# The dtypes of a model's input columns.
FLOAT: Final = "float64"
OBJECT: Final = "object"


class WrongType(ValueError):
    """A value that cannot be its feature's type; the message says what was expected."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dtype(type_: str) -> Literal["float64", "object"]:
    """The dtype of a column of this type in a model's input: numbers and booleans are floats,
    the rest strings (as objects)."""
    return FLOAT if type_ in NUMERIC or type_ == ColumnType.BOOLEAN else OBJECT


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Any, type_: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongType(f"expected a number ({type_}), got {_show(value)}")
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if not math.isfinite(value):
            raise WrongType(f"expected a finite number, got {_show(value)}")
        if type_ == ColumnType.INTEGER and not value.is_integer():
            raise WrongType(f"expected an integer, got {_show(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer no float holds
        raise WrongType(f"expected a finite number, got {_show(value)}") from None


def boolean(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    raise WrongType(f"expected true or false, got {_show(value)}")


def category(value: Any) -> Any:
    """A category as a string, NaN when missing: 1, 1.0 and "1" are one category (pandas makes
    floats of integers next to a missing value)."""
    if isinstance(value, str):
        return value
    if is_missing(value):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool | int | float):
        return str(value)
    raise WrongType(f"expected a string, got {_show(value)}")


def coerce(value: Any, type_: str) -> Any:
    """One value of a feature of the given type; None is missing (NaN)."""
    if value is None:
        return MISSING
    if type_ in NUMERIC:
        return number(value, type_)
    if type_ == ColumnType.BOOLEAN:
        return boolean(value)
    return category(value)
