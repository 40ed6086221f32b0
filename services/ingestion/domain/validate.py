"""Validation and preprocessing of one part: type coercion per schema, missing values per
policy, rejected rows with reasons, exact duplicates dropped. Vectorised with pyarrow: the
per-row Python work is only for the few rejected rows listed in the answer."""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.common.contracts import ColumnType, MissingPolicy
from services.ingestion.domain.errors import NoValidRows
from services.ingestion.domain.model import PartReport, RejectedRow
from services.ingestion.domain.parse import Parsed, RowProblem
from services.ingestion.domain.rows import first_occurrences, row_hashes
from services.ingestion.domain.schema import (
    ARROW_TYPES,
    FALSE,
    INTEGER_RE,
    NUMBER_RE,
    TRUE,
    Column,
    Schema,
)


@dataclass
class Validated:
    table: pa.Table  # accepted rows, typed, in schema column order, duplicates dropped
    hashes: np.ndarray  # one fingerprint per accepted row
    received: int  # rows in the body
    rejected: int
    duplicates: int  # exact duplicates of an earlier row of the same body, dropped
    problems: list[RowProblem] = field(default_factory=list)  # the first rejected rows, with reasons
    unknown_columns: list[str] = field(default_factory=list)  # in the data, not in the schema: ignored
    absent_columns: list[str] = field(default_factory=list)  # in the schema, not in the data: missing

    @property
    def accepted(self) -> int:
        return int(self.table.num_rows)

    def report(self) -> PartReport:
        return PartReport(
            rows_received=self.received,
            rows_accepted=self.accepted,
            rows_rejected=self.rejected,
            duplicates_dropped=self.duplicates,
            rejected_rows=[RejectedRow(row=p.row, reason=p.reason) for p in self.problems],
            unknown_columns=self.unknown_columns,
            absent_columns=self.absent_columns,
        )


@dataclass
class _Check:
    """Rows failing one rule, and how to say why for one of them."""

    mask: np.ndarray
    reason: Callable[[int], str]


def _numpy(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _none(n: int) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(np.zeros(n, dtype=bool))])


def _show(value: str | None, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _infinite_or_nan(value: str | float | None) -> bool:
    if value is None:
        return False
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def _coerce(raw: pa.ChunkedArray, column: Column, max_chars: int) -> tuple[pa.ChunkedArray, np.ndarray]:
    """(typed values, mask of present values that could not be read as the column's type).
    Columns the CSV reader already typed (see parse) only need the checks types cannot carry."""
    kind = column.type
    if kind == ColumnType.TEXT:
        return raw, _numpy(pc.greater(pc.utf8_length(raw), max_chars))
    if kind == ColumnType.CATEGORY:
        trimmed = pc.utf8_trim_whitespace(raw)
        return trimmed, _numpy(pc.greater(pc.utf8_length(trimmed), max_chars))
    if raw.type == ARROW_TYPES[kind]:
        values, invalid = raw, _none(len(raw))
    elif kind == ColumnType.BOOLEAN:
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
        is_true, is_false = pc.is_in(lowered, pa.array(sorted(TRUE))), pc.is_in(lowered, pa.array(sorted(FALSE)))
        values = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        invalid = pc.and_kleene(pc.is_valid(raw), pc.invert(pc.or_kleene(is_true, is_false)))
    else:
        values, invalid = _read_numbers(pc.utf8_trim_whitespace(raw), kind)
    if kind == ColumnType.NUMBER:
        # "inf" and "nan" parse as floats but are no numbers a model can learn from.
        invalid = pc.or_kleene(invalid, pc.and_kleene(pc.is_valid(values), pc.invert(pc.is_finite(values))))
        values = pc.if_else(invalid, pa.scalar(None, pa.float64()), values)
    return values, _numpy(invalid)


def _read_numbers(trimmed: pa.ChunkedArray, kind: ColumnType) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    try:
        values = pc.cast(trimmed, ARROW_TYPES[kind])  # every value reads
        return values, _none(len(values))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    pattern = NUMBER_RE if kind == ColumnType.NUMBER else INTEGER_RE
    invalid = pc.fill_null(pc.invert(pc.match_substring_regex(trimmed, pattern)), False)
    readable = pc.if_else(invalid, pa.scalar(None, pa.string()), trimmed)
    if kind == ColumnType.INTEGER:
        readable = pc.replace_substring_regex(readable, r"\.0*$", "")
    try:
        return pc.cast(readable, ARROW_TYPES[kind]), invalid
    except pa.ArrowInvalid:  # e.g. an integer beyond 64 bits: per value, the slow way
        values, flags = _coerce_slowly(readable, kind)
        return values, pc.or_kleene(invalid, flags)


def _coerce_slowly(readable: pa.ChunkedArray, kind: ColumnType) -> tuple[pa.Array, pa.Array]:
    """Value by value, for what the vectorised cast refused (an integer beyond 64 bits)."""
    values, flags = [], []
    for text in readable.to_pylist():
        value = None
        if text is not None:
            try:
                value = int(text) if kind == ColumnType.INTEGER else float(text)
            except ValueError:
                pass
            if kind == ColumnType.INTEGER and value is not None and not -(2**63) <= value < 2**63:
                value = None
        values.append(value)
        flags.append(text is not None and value is None)
    return pa.array(values, type=ARROW_TYPES[kind]), pa.array(flags)


def _why_bad(raw: pa.ChunkedArray, column: Column, max_chars: int) -> Callable[[int], str]:
    """Why the value of row i of a column is bad."""

    def why(i: int) -> str:
        value = raw[i].as_py()
        if column.type in (ColumnType.TEXT, ColumnType.CATEGORY):
            return f"column {column.name!r}: the value is longer than {max_chars} characters"
        if column.type == ColumnType.NUMBER and _infinite_or_nan(value):
            return f"column {column.name!r}: {_show(str(value))} is not a finite number"
        return f"column {column.name!r}: {_show(value)} is not {column.type.with_article}"

    return why


def _always(reason: str) -> Callable[[int], str]:
    return lambda _: reason


def validate(parsed: Parsed, schema: Schema, max_field_chars: int, max_listed: int) -> Validated:
    """Accepts or rejects every row of a parsed body; raises NoValidRows when none is left."""
    table = parsed.table
    n = table.num_rows
    present = set(table.column_names)
    unknown = [c for c in table.column_names if schema.column(c) is None]
    absent = [c.name for c in schema.columns if c.name not in present]
    if schema.target in absent:
        raise NoValidRows(
            f"the target column {schema.target!r} is not in the data; its columns are {table.column_names}"
        )

    checks: list[_Check] = []
    columns = {}
    for column in schema.columns:
        raw = table[column.name] if column.name in present else pa.chunked_array([pa.nulls(n, pa.string())])
        values, bad = _coerce(raw, column, max_field_chars)
        if bad.any():
            checks.append(_Check(bad, _why_bad(raw, column, max_field_chars)))
        missing = _numpy(pc.is_null(values)) & ~bad
        if column.name == schema.target:
            checks.append(_Check(missing, _always(f"the target {column.name!r} is missing")))
        elif column.missing == MissingPolicy.REJECT:
            checks.append(_Check(missing, _always(f"column {column.name!r} is missing")))
        elif column.missing == MissingPolicy.FILL:
            values = pc.fill_null(values, column.fill())
        columns[column.name] = values

    typed = pa.table(columns, schema=schema.arrow())
    rejected_mask = np.zeros(n, dtype=bool)
    for check in checks:
        rejected_mask |= check.mask
    numbers = np.asarray(parsed.row_numbers) if parsed.row_numbers is not None else np.arange(1, n + 1)

    problems = list(parsed.problems)
    for i in np.flatnonzero(rejected_mask)[:max_listed]:
        reason = next(c.reason(int(i)) for c in checks if c.mask[i])
        problems.append(RowProblem(int(numbers[i]), reason))
    problems.sort(key=lambda p: p.row)
    rejected = int(rejected_mask.sum()) + len(parsed.problems)

    kept = typed.filter(pa.array(~rejected_mask)) if rejected_mask.any() else typed
    hashes = row_hashes(kept)
    first = first_occurrences(hashes)
    duplicates = kept.num_rows - len(first)
    if duplicates:
        kept, hashes = kept.take(pa.array(first)), hashes[first]
    result = Validated(
        kept, hashes, n + len(parsed.problems), rejected, duplicates, problems[:max_listed], unknown, absent
    )
    if result.accepted == 0 and rejected:
        raise NoValidRows(
            f"all {result.received} rows were rejected; the first: "
            + "; ".join(f"row {p.row}: {p.reason}" for p in result.problems[:3]),
            **result.report().model_dump(),
        )
    return result
