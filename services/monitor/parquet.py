"""Rows of an inference table (and of a feedback table) as a Parquet part, and back.

One column per field of CapturedPrediction. Inputs, outputs and probabilities are JSON text: a
model's features change from version to version, and a class may be a string or a number, so no
fixed column type fits them; any Parquet reader (pandas, DuckDB, Spark) reads the text and
parses it with its JSON functions.
"""

import io
import json
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.common.contracts.monitoring import CapturedPrediction
from services.monitor.domain.feedback import FeedbackRow
from services.monitor.domain.ledger import Prediction

SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("runtime", pa.string()),
        ("request_id", pa.string()),
        ("inputs", pa.string()),  # JSON object: feature -> value
        ("output", pa.string()),  # JSON: the class or number predicted
        ("probabilities", pa.string()),  # JSON object: class -> probability; null when none
        ("warnings", pa.list_(pa.string())),
    ]
)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parquet(records: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    """One part's bytes: the records as a table of the schema, zstd-compressed."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), sink, compression="zstd")
    return sink.getvalue()


def encode(rows: list[CapturedPrediction]) -> bytes:
    return _parquet(
        [
            {
                "prediction_id": r.prediction_id,
                "at": r.at,
                "model": r.model,
                "version": r.version,
                "runtime": r.runtime,
                "request_id": r.request_id,
                "inputs": _json(r.inputs),
                "output": _json(r.output),
                "probabilities": None if r.probabilities is None else _json(r.probabilities),
                "warnings": r.warnings,
            }
            for r in rows
        ],
        SCHEMA,
    )


def _read(data: bytes, schema: pa.Schema, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """One part's rows (of `columns`: None, all), as the schema types them."""
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data), columns=columns, schema=schema).to_pylist()
    return rows


def decode(data: bytes, shadow: bool = False) -> list[CapturedPrediction]:
    """A part's rows; `shadow`: a part of the shadows table (its rows are shadows' answers)."""
    return [
        CapturedPrediction(
            prediction_id=r["prediction_id"],
            at=r["at"],
            model=r["model"],
            version=r["version"],
            runtime=r["runtime"],
            request_id=r["request_id"],
            inputs=json.loads(r["inputs"]),
            output=json.loads(r["output"]),
            probabilities=None if r["probabilities"] is None else json.loads(r["probabilities"]),
            warnings=r["warnings"] or [],
            shadow=shadow,
        )
        for r in _read(data, SCHEMA)
    ]


# What live metrics read of a captured prediction: not its inputs, the widest columns.
LIVE_COLUMNS = ["prediction_id", "at", "version", "output", "probabilities"]


def decode_for_live(data: bytes) -> list[tuple[str, Prediction]]:
    """A part of an inference table as live metrics hold it: each prediction's id, time,
    version, output and probabilities (the other columns are not read)."""
    return [
        (
            r["prediction_id"],
            Prediction(
                at=r["at"],
                version=r["version"],
                output=_interned(json.loads(r["output"])),
                probabilities=None
                if r["probabilities"] is None
                else {sys.intern(k): p for k, p in json.loads(r["probabilities"]).items()},
            ),
        )
        for r in _read(data, SCHEMA, LIVE_COLUMNS)
    ]


def _interned(value: Any) -> Any:
    # A class name held once, however many predictions name it (held rows are most of the
    # monitor's memory).
    return sys.intern(value) if isinstance(value, str) else value


# The feedback table: one row per actual value received (domain/feedback.py, FeedbackRow).
FEEDBACK_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("model", pa.string()),
        ("actual", pa.string()),  # JSON: the class or number that actually happened
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),  # the key's name that sent it
    ]
)


def encode_feedback(rows: list[FeedbackRow]) -> bytes:
    return _parquet(
        [
            {
                "prediction_id": r.prediction_id,
                "model": r.model,
                "actual": _json(r.actual),
                "received_at": r.received_at,
                "actor": r.actor,
            }
            for r in rows
        ],
        FEEDBACK_SCHEMA,
    )


def decode_feedback(data: bytes) -> list[FeedbackRow]:
    return [
        FeedbackRow(
            prediction_id=r["prediction_id"],
            model=r["model"],
            actual=json.loads(r["actual"]),
            received_at=r["received_at"],
            actor=r["actor"] or "",
        )
        for r in _read(data, FEEDBACK_SCHEMA)
    ]
