"""Rows on their way out as CSV."""

import pyarrow as pa
import pyarrow.compute as pc

# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_START = r"^([=+\-@\t\r])"


def spreadsheet_safe(table: pa.Table) -> pa.Table:
    """Text that a spreadsheet opening the CSV would run as a formula gets a leading single
    quote, which makes it plain text there. String columns only: a number keeps its sign.
    Parquet and JSON readers get the values as they are: they run no formulas."""
    columns = [
        pc.replace_substring_regex(column, FORMULA_START, r"'\1") if pa.types.is_string(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, schema=table.schema)
