"""Model monitoring's words, shared by inference (which captures predictions), the monitor
(which keeps them as inference tables, joins ground truth and measures), the registry (whose
model history records who did what) and the gateway (which names the caller).

Pydantic and the standard library only: the CLI imports this module too.
"""

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, Field, FiniteFloat, model_validator

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


def _iso_only(value: Any) -> Any:
    """A time must be written as one: pydantic would read "0.5" as half a second after 1970."""
    if isinstance(value, str | int | float) and re.fullmatch(r"\s*[+-]?[0-9.eE+-]+\s*", str(value)):
        raise ValueError("an ISO 8601 time such as 2025-01-31T12:00:00Z, not a number")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A time in a query or a body: ISO 8601 only (without a zone: UTC)."""


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
    """What served it, as the answer names it: "sklearn" or "onnxruntime"."""
    inputs: dict[str, Any]
    output: Any
    """The prediction: a class or a number."""
    probabilities: dict[str, float] | None = None
    """Each class's probability (classifiers that give them), by the class as a string."""
    warnings: list[str] = Field(default_factory=list)
    """What the answer warned of for this record (unseen category, missing value, ...)."""
    request_id: str = Field("", max_length=200)
    shadow: bool = False
    """A shadow version's answer to a copy of the record (GET .../predictions?shadow=V): its
    prediction id is that of the answer the caller got from the version that served it."""


class PredictionsPage(BaseModel):
    """Answer of GET /api/models/{name}/predictions: captured predictions in time order (by
    time, then call, then place in the call)."""

    model: str
    predictions: list[CapturedPrediction]
    next_since: datetime | None = None
    """Pass as `since` for the next page; None: nothing more was captured yet."""
    next_after: str | None = Field(None, pattern=PREDICTION_ID)
    """Pass as `after` with `next_since`: the page's last prediction, so that the next page starts
    right after it even when further predictions share its time (a call's records all do)."""


# Reference distributions: what training saw of each feature and of the model's output, in a
# small fixed size whatever the data, recorded on the model card (ModelCard.reference). The
# monitor measures drift against them (population stability index, missing and unseen shares).

REFERENCE_BINS = 10
"""Numbers: the quantile bins a reference cuts (at most: equal quantiles make one edge)."""
REFERENCE_CATEGORIES = 50
"""Categories and classes: the most frequent ones a reference names; the rest share `other`."""
REFERENCE_KEY_LENGTH = 200
"""A category longer than this is never named (it counts as `other`, in training and live alike)."""
BOOLEAN_KEYS = ("false", "true")
"""How a reference names a boolean's two values (a model reads them as 0 and 1)."""


def label_key(value: Any) -> str:
    """A category or a class as a reference names it, and as the monitor matches predictions
    with actuals: strings as they are, a float that is an integer as the integer (1.0 and 1 are
    one class: pandas makes floats of integers beside a missing value), anything else as str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shares_sum_to_one(shares: list[float], other: float = 0.0) -> None:
    total = sum(shares) + other
    if shares and abs(total - 1) > 1e-6:
        raise ValueError(f"the shares sum to {total}, not 1")


class NumericReference(BaseModel):
    """A number's distribution in training: the share of its present values in each bin between
    quantile edges. Bin 0 is everything below edges[0], bin i holds edges[i-1] <= x < edges[i],
    the last everything from edges[-1] up: live values beyond training's range still fall in one."""

    kind: Literal["numeric"] = "numeric"
    edges: list[FiniteFloat] = Field(default_factory=list, max_length=REFERENCE_BINS - 1)
    """Ascending and distinct."""
    shares: list[FiniteFloat] = Field(default_factory=list, max_length=REFERENCE_BINS)
    """One per bin (len(edges) + 1), summing to 1; empty when training had no value present."""
    missing_share: float = Field(0, ge=0, le=1)
    """The share of training rows without a value."""

    @model_validator(mode="after")
    def _bins(self) -> Self:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be ascending and distinct")
        if self.shares and len(self.shares) != len(self.edges) + 1:
            raise ValueError(f"{len(self.shares)} shares for {len(self.edges) + 1} bins")
        if any(s < 0 for s in self.shares):
            raise ValueError("a share cannot be negative")
        _shares_sum_to_one(self.shares)
        return self


class CategoricalReference(BaseModel):
    """A category's (or a boolean's, or a class's) distribution in training: the share of its
    present values that each of the most frequent categories had, and that all others had."""

    kind: Literal["categorical"] = "categorical"
    shares: dict[str, float] = Field(default_factory=dict, max_length=REFERENCE_CATEGORIES)
    """By label_key; booleans as BOOLEAN_KEYS."""
    other_share: float = Field(0, ge=0, le=1)
    """The categories training saw beyond those named."""
    missing_share: float = Field(0, ge=0, le=1)

    @model_validator(mode="after")
    def _distribution(self) -> Self:
        if any(not 0 <= s <= 1 for s in self.shares.values()):
            raise ValueError("a share is between 0 and 1")
        if any(len(k) > REFERENCE_KEY_LENGTH for k in self.shares):
            raise ValueError(f"a category named in a reference is at most {REFERENCE_KEY_LENGTH} characters")
        if self.shares or self.other_share:
            _shares_sum_to_one([*self.shares.values(), self.other_share])
        return self


FeatureReference = Annotated[NumericReference | CategoricalReference, Field(discriminator="kind")]


class ReferenceDistributions(BaseModel):
    """What training saw of each feature and of the model's own predictions, computed on the
    training split (a seeded sample of it when it is large): the baseline the monitor measures
    drift against."""

    rows: int = Field(ge=0)
    """The training rows it was computed from."""
    features: dict[str, FeatureReference]
    """Numbers as NumericReference; categories and booleans as CategoricalReference."""
    output: FeatureReference | None = None
    """The model's predictions on those rows: a classifier's class balance (CategoricalReference),
    a regressor's quantile bins (NumericReference)."""
