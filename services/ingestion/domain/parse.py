"""Bodies to tables of strings: CSV, a JSON list of records, or NDJSON.

Every value comes out as a string or null (the missing markers), so that validation sees
exactly what the client sent and can say which value in which row is wrong.
"""

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from services.ingestion.domain.errors import BadInput, UnsupportedType
from services.ingestion.domain.schema import ARROW_TYPES, FALSE, MAX_NAME_CHARS, TRUE, Schema

MISSING_MARKERS = ["", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", "None"]
CSV, JSON, NDJSON = "text/csv", "application/json", "application/x-ndjson"
MEDIA_TYPES = (CSV, JSON, NDJSON)
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based number of the data row in the body (the header is not counted)
    reason: str


@dataclass
class Parsed:
    """A body read as strings; rows that could not even be split into fields are problems."""

    table: pa.Table
    row_numbers: list[int] | None = None  # when rows were left out: the number of each kept row
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_columns: int
    max_field_chars: int


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    aliases = {
        "application/csv": CSV,
        "text/plain": CSV,
        "application/jsonl": NDJSON,
        "application/jsonlines": NDJSON,
        "application/ndjson": NDJSON,
    }
    kind = aliases.get(kind, kind)
    if kind not in MEDIA_TYPES:
        raise UnsupportedType(
            f"content type {content_type or '(none)'!r} is not supported; send one of {', '.join(MEDIA_TYPES)}"
        )
    return kind


def _text(body: bytes) -> str:
    if not body.strip():
        raise BadInput("the body is empty; send the data rows (with a header line for CSV)")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise BadInput(
            f"the body is not UTF-8 text: byte 0x{body[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); save the file as UTF-8 and send it again"
        ) from None


def _check_header(names: list[str], limits: Limits) -> None:
    if len(names) > limits.max_columns:
        raise BadInput(f"the data has {len(names)} columns; the limit is {limits.max_columns}")
    blank = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise BadInput(f"column(s) {blank} of the header have no name")
    long = [i + 1 for i, n in enumerate(names) if len(n) > MAX_NAME_CHARS]
    if long:
        raise BadInput(
            f"column(s) {long} of the header have names longer than {MAX_NAME_CHARS} characters; shorten them"
        )
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise BadInput(f"the header names {twice} more than once")


def _variants(words: set[str]) -> list[str]:
    return sorted({v for w in words for v in (w, w.upper(), w.title())})


def _read_typed(body: bytes, names: list[str], schema: Schema) -> pa.Table | None:
    """The fast path: the CSV reader types each column as the schema says. None when any
    value or row does not fit; the string path then finds and names each bad one."""
    types = {n: ARROW_TYPES[c.type] if (c := schema.column(n)) else pa.string() for n in names}
    try:
        return pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _: "error"),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=MISSING_MARKERS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                true_values=_variants(TRUE),
                false_values=_variants(FALSE),
            ),
        )
    except pa.ArrowInvalid:
        return None


def parse_csv(body: bytes, limits: Limits, schema: Schema | None = None) -> Parsed:
    text = _text(body)
    body = body[len(BOM) :] if body.startswith(BOM) else body
    if body.count(b'"') % 2:
        raise BadInput(
            "the CSV has a quote that is never closed; fields holding commas, quotes or "
            "newlines must be quoted, and quotes inside them doubled"
        )
    try:
        header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit (128 KiB)
        raise BadInput(
            f"the CSV header line cannot be read: {exc}; column names may be at most {MAX_NAME_CHARS} characters"
        ) from None
    names = [h.strip() for h in header]
    _check_header(names, limits)
    if schema is not None:
        typed = _read_typed(body, names, schema)
        if typed is not None and typed.num_rows:
            return Parsed(typed)
    malformed = 0

    def count(_row: pacsv.InvalidRow) -> str:
        nonlocal malformed
        malformed += 1
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=count),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=MISSING_MARKERS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise BadInput(f"the CSV is malformed: {exc}") from None
    if malformed:
        # Rare: read again row by row, to name each bad row by its number.
        return _parse_csv_slowly(text.lstrip("\ufeff"), names)
    if table.num_rows == 0:
        raise BadInput("the CSV has a header but no data rows")
    return Parsed(table)


def _parse_csv_slowly(text: str, names: list[str]) -> Parsed:
    rows, numbers, problems = [], [], []
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        next(reader)
        for number, row in enumerate(reader, start=1):
            if len(row) == len(names):
                rows.append([None if v in MISSING_MARKERS else v for v in row])
                numbers.append(number)
            elif row:
                problems.append(RowProblem(number, f"has {len(row)} fields, the header has {len(names)}"))
    except csv.Error as exc:
        raise BadInput(
            f"the CSV is malformed at line {reader.line_num}: {exc}; fields holding commas, "
            f"quotes or newlines must be quoted, and quotes inside them doubled"
        ) from None
    columns: list[Sequence[str | None]] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    table = pa.table({n: pa.array(col, type=pa.string()) for n, col in zip(names, columns, strict=True)})
    return Parsed(table, row_numbers=numbers, problems=problems)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    text = str(value)
    return None if text in MISSING_MARKERS else text


def _records_to_table(records: list[Any], limits: Limits, where: str) -> Parsed:
    names: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadInput(f"{where} {i + 1} is {type(record).__name__}, not an object of column: value")
        names.update(dict.fromkeys(record))
    if not records:
        raise BadInput("the body holds no records")
    _check_header(list(names), limits)
    columns = {n: pa.array([_cell(r.get(n)) for r in records], type=pa.string()) for n in names}
    return Parsed(pa.table(columns))


def _integer(digits: str) -> int:
    # Python refuses to convert integers longer than sys.get_int_max_str_digits() (4300
    # digits) with a ValueError; no column type could hold one anyway.
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        raise BadInput(
            f"a number in the JSON has {len(digits.lstrip('-'))} digits; numbers may have at most "
            f"{limit} digits (send longer ones as strings)"
        )
    return int(digits)


def _loads(text: str) -> Any:
    return json.loads(text, parse_int=_integer)


def parse_json(body: bytes, limits: Limits, schema: Schema | None = None) -> Parsed:
    try:
        records = _loads(_text(body))
    except json.JSONDecodeError as exc:
        raise BadInput(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(records, list):
        raise BadInput('a JSON body must be a list of records, e.g. [{"x": 1, "y": "a"}]')
    return _records_to_table(records, limits, "record")


def parse_ndjson(body: bytes, limits: Limits, schema: Schema | None = None) -> Parsed:
    records = []
    for number, line in enumerate(_text(body).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_loads(line))
        except json.JSONDecodeError as exc:
            raise BadInput(f"line {number} is not valid JSON: {exc.msg} at column {exc.colno}") from None
        except BadInput as exc:
            raise BadInput(f"line {number}: {exc}") from None
    return _records_to_table(records, limits, "line")


PARSERS = {CSV: parse_csv, JSON: parse_json, NDJSON: parse_ndjson}


def parse(body: bytes, content_type: str | None, limits: Limits, schema: Schema | None = None) -> Parsed:
    """The body as a table (nulls where values are missing). Columns are strings, except
    that a CSV whose every value fits the schema comes out typed already."""
    parser = PARSERS[media_type(content_type)]
    try:
        return parser(body, limits, schema)
    except RecursionError:  # reading JSON, or writing a nested value back as text
        raise BadInput(
            "the JSON nests lists or objects too deeply to read; send records as objects of "
            "column: value, with values nested a few levels at most"
        ) from None
