"""Rows on their way out, as CSV or Parquet, a part at a time: a download never holds a
whole version in memory."""

from collections.abc import AsyncIterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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


class _Chunks:
    """A write-only file for pyarrow that hands out what was written so far."""

    def __init__(self) -> None:
        self.buffer, self.position, self.closed = bytearray(), 0, False

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out, self.buffer = bytes(self.buffer), bytearray()
        return out


async def csv(tables: AsyncIterator[pa.Table]) -> AsyncIterator[bytes]:
    """The tables as one CSV file: the header once, then each table's rows as it comes."""
    first = True
    async for table in tables:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(spreadsheet_safe(table), sink, pacsv.WriteOptions(include_header=first, quoting_style="needed"))
        first = False
        yield sink.getvalue().to_pybytes()


async def parquet(tables: AsyncIterator[pa.Table], schema: pa.Schema) -> AsyncIterator[bytes]:
    """The tables as one Parquet file, handed out as each table is written (a row group)."""
    chunks = _Chunks()
    with pq.ParquetWriter(pa.PythonFile(chunks, mode="w"), schema) as writer:
        async for table in tables:
            writer.write_table(table)
            yield chunks.take()
    yield chunks.take()
