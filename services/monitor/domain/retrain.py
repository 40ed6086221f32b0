"""Retraining by policy: what a retrain is asked to do (its order), which captured predictions it
adds to the model's training data (those with an actual), and how the rows travel to ingestion
(NDJSON parts). Pure.

A retrain may run more than once (the monitor dies half way, two replicas relay one outbox): it
must then give ingestion the same rows in the same order, so that the second commit is the
first's version again (ingestion answers `unchanged`) and its training job the same job (job ids
are derived from the dataset version, model, estimator and parameters). Hence `until`: the
captures and actuals a retrain reads are those of before its order was made.
"""

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from services.common.contracts import MODEL_NAME
from services.common.contracts.monitoring import CapturedPrediction
from services.monitor.domain.ledger import Truth
from services.monitor.domain.rows import row_key, utc

RETRAIN: Final = "retrain"
"""The action of a check that ordered a retrain (ActionTaken.action)."""
RETRAINED: Final = "retrained"
"""A retrain done: its dataset version committed and its training job started."""
RETRAIN_SKIPPED: Final = "retrain-skipped"
"""A retrain the policy asked for that did not start: too soon after the last, too few actuals,
nothing new to train on."""
RETRAIN_FAILED: Final = "retrain-failed"
"""A retrain ingestion, training or the registry refused (a 4xx: trying again would not help)."""


class RetrainOrder(BaseModel):
    """A retrain a check owes: made with the check, in the same write, and carried out by the
    outbox's relay (at least once)."""

    id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    """Also the new dataset version's `origin.retrain_id`: how a retrain run again knows its own version."""
    model: str = Field(pattern=MODEL_NAME)
    version: int = Field(ge=1)
    """The version that drifted or lost accuracy (the champion): its lineage is trained again."""
    check_id: str
    until: datetime
    """Captures and actuals up to this time are added: a retrain run again adds the same rows."""
    min_rows: int = Field(ge=1)
    """Captured predictions with an actual the retrain needs (the policy's retrain_min_rows)."""
    reason: str = Field(max_length=2000)
    actor: str | None = None


class Outcome(BaseModel):
    """What a retrain came to: its action (RETRAINED, RETRAIN_SKIPPED or RETRAIN_FAILED), why, and
    the history entry's details (dataset, versions, rows, job)."""

    action: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


def labeled_records(
    captured: Iterable[CapturedPrediction], truths: Mapping[str, Truth], target: str, until: datetime
) -> list[dict[str, Any]]:
    """One record per captured prediction with an actual received by `until`: its inputs with
    the actual as `target` (an input named like the target is replaced: the actual is the truth).
    In capture order, each prediction once."""
    end = utc(until)
    records: dict[str, dict[str, Any]] = {}
    for row in sorted(captured, key=row_key):
        truth = truths.get(row.prediction_id)
        if truth is None or utc(truth.received_at) > end or utc(row.at) > end or row.prediction_id in records:
            continue
        records[row.prediction_id] = {**row.inputs, target: truth.actual}
    return list(records.values())


def ndjson_parts(records: Iterable[Mapping[str, Any]], max_bytes: int) -> Iterator[bytes]:
    """The records as NDJSON bodies of at most `max_bytes` each (a record larger than that is a
    part of its own: ingestion then refuses it with its reason). NaN and infinities are written
    as null (JSON has no such numbers; ingestion reads null as missing)."""
    part: list[bytes] = []
    size = 0
    for record in records:
        line = json.dumps({k: _json_value(v) for k, v in record.items()}, default=str, allow_nan=False).encode() + b"\n"
        if part and size + len(line) > max_bytes:
            yield b"".join(part)
            part, size = [], 0
        part.append(line)
        size += len(line)
    if part:
        yield b"".join(part)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
