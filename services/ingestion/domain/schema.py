"""Dataset schemas: column types, missing-value policies, and inference from data."""

import hashlib
import json
import math
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field, model_validator

# The shared words (services/common/contracts): ingestion's modules import them from here too.
from services.common.contracts import DATASET_NAME, ColumnType, MissingPolicy, Task

NAME = DATASET_NAME
MAX_NAME_CHARS = 200  # longest column name


ARROW_TYPES = {
    ColumnType.NUMBER: pa.float64(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.CATEGORY: pa.string(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.TEXT: pa.string(),
}


class Column(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    type: ColumnType
    missing: MissingPolicy = MissingPolicy.KEEP
    fill_value: str | float | int | bool | None = None

    @model_validator(mode="after")
    def _fill_value_fits(self) -> "Column":
        if self.missing == MissingPolicy.FILL and self.fill_value is None:
            raise ValueError(f"column {self.name!r}: missing policy 'fill' needs a fill_value")
        if self.fill_value is not None:
            self.fill()  # refused now rather than at every upload
        return self

    def fill(self) -> pa.Scalar:
        """The fill_value as a value of the column's type; ValueError when it is none."""
        value = self.fill_value
        if self.type == ColumnType.BOOLEAN and isinstance(value, str):
            word = value.strip().lower()
            value = True if word in TRUE else False if word in FALSE else value
        try:
            scalar = pa.scalar(value).cast(ARROW_TYPES[self.type])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise ValueError(f"column {self.name!r}: fill_value {value!r} is not {self.type.with_article}") from None
        if self.type == ColumnType.NUMBER and not math.isfinite(scalar.as_py()):
            raise ValueError(f"column {self.name!r}: fill_value {value!r} is not a finite number")
        return scalar


class Schema(BaseModel):
    task: Task
    target: str
    columns: list[Column]

    @model_validator(mode="after")
    def _consistent(self) -> "Schema":
        counts = Counter(c.name for c in self.columns)
        duplicates = sorted(n for n, k in counts.items() if k > 1)
        if duplicates:
            raise ValueError(f"columns named more than once: {duplicates}")
        target = self.column(self.target)
        if target is None:
            raise ValueError(f"target {self.target!r} is not one of the columns {list(counts)}")
        if self.task == Task.REGRESSION and target.type not in (ColumnType.NUMBER, ColumnType.INTEGER):
            raise ValueError(
                f"a regression target must be a number or integer column, {self.target!r} is {target.type}"
            )
        return self

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in self.columns])

    def hash(self) -> str:
        """Stable across processes: what two versions must share to be comparable."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# What a string must look like to be read as a given type (after trimming whitespace).
INTEGER_RE = r"^[+-]?\d+(\.0*)?$"
NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}

# A column with at most this many distinct values (and few per row) reads as a category.
CATEGORY_MAX_DISTINCT = 50


def _all_read_as(values: pa.ChunkedArray, type_: pa.DataType) -> bool:
    try:
        pc.cast(values, type_)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def infer_type(values: pa.ChunkedArray) -> ColumnType:
    """The narrowest type every present value of a string column fits."""
    present = pc.drop_null(pc.utf8_trim_whitespace(values))
    if len(present) == 0:
        return ColumnType.TEXT
    lowered = pc.utf8_lower(present)
    if (
        pc.all(pc.is_in(lowered, value_set=pa.array(sorted(TRUE | FALSE)))).as_py()
        and not pc.all(pc.is_in(present, value_set=pa.array(["0", "1"]))).as_py()
    ):
        return ColumnType.BOOLEAN
    if _all_read_as(present, pa.int64()):  # "3.0" reads into an integer column, but says "number"
        return ColumnType.INTEGER
    # "inf" and "1e309" read as floats: a column holding them is still numbers, and validation
    # rejects those rows ("not a finite number") rather than the whole column turning to text.
    # A column without one finite value is no numbers, though.
    if _all_read_as(present, pa.float64()) and pc.any(pc.is_finite(pc.cast(present, pa.float64()))).as_py():
        return ColumnType.NUMBER
    distinct = len(pc.unique(present))
    if distinct <= CATEGORY_MAX_DISTINCT and distinct <= max(2, len(present) // 2):
        return ColumnType.CATEGORY
    return ColumnType.TEXT


def infer_task(target_type: ColumnType, distinct: int) -> Task:
    if target_type == ColumnType.NUMBER or (target_type == ColumnType.INTEGER and distinct > 20):
        return Task.REGRESSION
    return Task.CLASSIFICATION


def infer_schema(table: pa.Table, target: str, task: Task | None = None) -> Schema:
    """A schema for a table of strings: each column's type from its values; the target is a
    category for classification and a number for regression."""
    if target not in table.column_names:
        raise ValueError(f"target {target!r} is not a column of the data; columns are {table.column_names}")
    columns = [Column(name=name, type=infer_type(table[name])) for name in table.column_names]
    target_col = next(c for c in columns if c.name == target)
    if task is None:
        task = infer_task(target_col.type, len(pc.unique(pc.drop_null(table[target]))))
    if task == Task.CLASSIFICATION:
        target_col.type = ColumnType.CATEGORY
    elif target_col.type not in (ColumnType.NUMBER, ColumnType.INTEGER):
        raise ValueError(f"task regression needs a numeric target; {target!r} holds {target_col.type} values")
    return Schema(task=task, target=target, columns=columns)


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME, name) is not None
