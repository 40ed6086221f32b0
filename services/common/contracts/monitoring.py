"""Model monitoring's words, shared by inference (which captures predictions), the monitor
(which keeps them as inference tables, joins ground truth and measures), the registry (whose
model history records who did what) and the gateway (which names the caller).

Pydantic and the standard library only: the CLI imports this module too.
"""

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.common.contracts.datasets import DATASET_NAME

CALL_ID = r"^[0-9a-f]{32}$"
"""One prediction call's id: a random 128-bit number in hex."""
PREDICTION_ID = r"^[0-9a-f]{32}-[0-9]{1,7}$"
"""One prediction: its call's id, '-', and the record's place in the call (0 first)."""
_PREDICTION_ID = re.compile(PREDICTION_ID)

ACTOR_HEADER = "x-daprml-actor"
"""Who asked, by the name of the key they called the gateway with. The gateway sets it on every
call it forwards (replacing any a client sent); a service trusts it only on calls whose Dapr
caller app id is the gateway's, and records anything else as that caller app id."""


def new_call_id() -> str:
    return uuid.uuid4().hex


def prediction_ids(call_id: str, records: int) -> list[str]:
    """The ids of a call's predictions, one per record in record order."""
    return [f"{call_id}-{i}" for i in range(records)]


def is_prediction_id(value: str) -> bool:
    return bool(_PREDICTION_ID.fullmatch(value))


class CapturedPrediction(BaseModel):
    """One row of an inference table: one record a model was asked about, and its answer."""

    prediction_id: str = Field(pattern=PREDICTION_ID)
    at: datetime
    model: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)
    runtime: str = Field(max_length=64)
    """What served it: "sklearn" or "onnx"."""
    inputs: dict[str, Any]
    output: Any
    """The prediction: a class or a number."""
    probabilities: dict[str, float] | None = None
    """Each class's probability (classifiers that give them), by the class as a string."""
    warnings: list[str] = Field(default_factory=list)
    """What the answer warned of for this record (unseen category, missing value, ...)."""
    request_id: str = Field("", max_length=200)


class PredictionsPage(BaseModel):
    """Answer of GET /api/models/{name}/predictions: captured predictions in time order."""

    model: str
    predictions: list[CapturedPrediction]
    next_since: datetime | None = None
    """Pass as `since` for the next page; None: nothing more was captured yet."""
