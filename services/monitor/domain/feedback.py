"""Ground truth: the actual values callers send back for their predictions, by prediction id.

A feedback item names a prediction (the id its caller got) and what actually happened: a class
or a number, as a JSON scalar. The first actual received for a prediction is the one kept: an
item sent again (a retry, a second body naming it) is a duplicate, written nowhere and counted
once. Pure: the use case (services/monitor/feedback.py) stores and joins.
"""

import math
from collections.abc import Container, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.contracts import MODEL_NAME
from services.common.contracts.monitoring import PREDICTION_ID

ACTUAL_LENGTH = 1000
"""The longest actual sent as a string (a class name)."""
MAX_ITEMS = 100_000
"""The most items the monitor's setting may let one call send (the default is lower)."""


class FeedbackItem(BaseModel):
    """What actually happened for one prediction."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(pattern=PREDICTION_ID, description="the id the prediction's caller got")
    actual: Any = Field(
        description="the true class or number: a string, number or boolean",
        json_schema_extra={"type": ["string", "number", "boolean"]},
    )

    @field_validator("actual", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        # One check, one message: a union of types would answer one error per member.
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("must be a finite number")
            return value
        if isinstance(value, str):
            if not 0 < len(value) <= ACTUAL_LENGTH:
                raise ValueError(f"must be 1 to {ACTUAL_LENGTH} characters")
            return value
        shown = "null" if value is None else type(value).__name__
        raise ValueError(f"must be a string, number or boolean (a JSON scalar), not {shown}")


class FeedbackRow(BaseModel):
    """One row of a model's feedback table: an actual value, as received."""

    prediction_id: str = Field(pattern=PREDICTION_ID)
    model: str = Field(pattern=MODEL_NAME)
    actual: Any
    received_at: datetime
    actor: str = Field("", max_length=200)
    """Who sent it: the key's name (the gateway's x-daprml-actor), else the calling app's id."""


class FeedbackAnswer(BaseModel):
    """Answer of POST /api/models/{name}/feedback. Every item is exactly one of matched,
    pending or duplicate: `received` = matched + pending + duplicates; `accepted` = matched +
    pending are the items kept."""

    model: str
    received: int = Field(ge=0)
    accepted: int = Field(ge=0)
    """Items kept: their prediction had no actual yet."""
    matched: int = Field(ge=0)
    """Accepted items whose captured prediction the monitor holds: they count in live metrics now."""
    pending: int = Field(ge=0)
    """Accepted items with no captured prediction yet (capture lags a few seconds, or the id is
    not this model's): joined when it lands, if within the retention window."""
    duplicates: int = Field(ge=0)
    """Items naming a prediction that has an actual already (earlier in this body, or sent
    before): the first actual stays, these are dropped."""
    received_at: datetime


def first_of_each(items: Sequence[FeedbackItem], known: Container[str]) -> tuple[list[FeedbackItem], int]:
    """The items to keep (the first for each prediction id that `known` does not hold yet, in
    body order) and how many are duplicates."""
    kept: list[FeedbackItem] = []
    fresh: set[str] = set()
    for item in items:
        if item.prediction_id in known or item.prediction_id in fresh:
            continue
        fresh.add(item.prediction_id)
        kept.append(item)
    return kept, len(items) - len(kept)
