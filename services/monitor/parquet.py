"""Rows of an inference table as a Parquet part, and back.

One column per field of CapturedPrediction. Inputs, outputs and probabilities are JSON text: a
model's features change from version to version, and a class may be a string or a number, so no
fixed column type fits them; any Parquet reader (pandas, DuckDB, Spark) reads the text and
parses it with its JSON functions.
"""

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.common.contracts.monitoring import CapturedPrediction

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


def encode(rows: list[CapturedPrediction]) -> bytes:
    table = pa.Table.from_pylist(
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
        schema=SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def decode(data: bytes) -> list[CapturedPrediction]:
    table = pq.read_table(io.BytesIO(data), schema=SCHEMA)
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
        )
        for r in table.to_pylist()
    ]
