"""Model monitoring's words, shared by inference (which captures predictions), the monitor
(which keeps them as inference tables, joins ground truth and measures), the registry (whose
model history records who did what) and the gateway (which names the caller).

Pydantic and the standard library only: the CLI imports this module too.
"""

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, Field, FiniteFloat, model_validator

from services.common.contracts.datasets import DATASET_NAME, Task

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


# Live metrics and shadow agreement: the monitor computes them (GET .../monitoring/live,
# GET .../monitoring) and the registry's rollouts read them (Evidence, below).


class LiveMetric(BaseModel):
    value: float
    count: int = Field(ge=0)
    """The pairs it is based on."""


class LiveMetrics(BaseModel):
    """The metrics of a set of outcomes, by training's names: accuracy, f1_macro, log_loss
    (classifiers), rmse, mae (regressors). A metric these outcomes cannot give is absent."""

    count: int = Field(ge=0)
    """The outcomes given (those without a usable actual or prediction count in no metric)."""
    first: datetime | None = None
    last: datetime | None = None
    metrics: dict[str, LiveMetric] = Field(default_factory=dict)


class ShadowAgreement(BaseModel):
    """A shadow version's answers against those the callers got, over a window."""

    version: int
    answers: int = Field(description="the shadow's captured answers in the window")
    pairs: int = Field(description="of those, joined with the answer the caller got (by prediction id)")
    agreement: float | None = Field(description="share of pairs with the same output (classes); None: no pairs")
    mean_abs_difference: float | None = Field(
        None, description="mean |shadow - served| over the pairs whose outputs are numbers (regressors)"
    )
    served_by: dict[str, int] = Field(description="the versions that served the pairs, with their counts")


# Serving stats: every inference replica counts, per model version, the requests it answered
# and failed and their latency, and sends its counters (cumulative since it started) on the
# `serving-stats` topic; the monitor sums them over the replicas (Evidence.serving).

LATENCY_BOUNDS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000)
"""The latency histogram's bucket bounds (ms), as Prometheus' `le`: count i is the requests that
took at most LATENCY_BOUNDS_MS[i]; one more count, the last, is every request (+Inf)."""
MAX_LATENCY_BUCKETS = 64
"""Most bounds a latency histogram may have (replicas of another build may have other bounds)."""
MAX_SERVING_VERSIONS = 200
"""Most (model, version) entries one serving-stats event carries; a replica leaves out the ones
it served least recently (and logs it)."""


class ServingCounters(BaseModel):
    """One model version's serving counters, cumulative: they only grow (a replica that restarts
    is a new instance, starting from zero)."""

    requests: int = Field(0, ge=0, description="requests the version answered")
    failures: int = Field(0, ge=0, description="requests the version (or the server) failed: 5xx")
    refused: int = Field(0, ge=0, description="requests refused for the caller's fault (4xx): not failures")
    shadow_requests: int = Field(0, ge=0, description="copies of requests it answered as a shadow")
    shadow_failures: int = Field(0, ge=0, description="copies it failed as a shadow (raised or timed out)")
    latency_counts: list[int] = Field(
        default_factory=list,
        max_length=MAX_LATENCY_BUCKETS + 1,
        description="the answered requests' latency: cumulative counts per bound of the latency bounds, then "
        "every request (+Inf); empty when none was answered",
    )

    @model_validator(mode="after")
    def _cumulative(self) -> Self:
        counts = self.latency_counts
        if counts and (any(b < a for a, b in zip(counts, counts[1:], strict=False)) or counts[0] < 0):
            raise ValueError("latency counts are cumulative: never negative, never decreasing")
        return self

    def plus(self, other: "ServingCounters") -> "ServingCounters":
        """The two counters summed (latency counts of equal length, or either side's when the other has none)."""
        a, b = self.latency_counts, other.latency_counts
        if a and b and len(a) != len(b):
            raise ValueError(f"latency counts of {len(a)} and {len(b)} buckets cannot be summed")
        return ServingCounters(
            requests=self.requests + other.requests,
            failures=self.failures + other.failures,
            refused=self.refused + other.refused,
            shadow_requests=self.shadow_requests + other.shadow_requests,
            shadow_failures=self.shadow_failures + other.shadow_failures,
            latency_counts=[x + y for x, y in zip(a, b, strict=True)] if a and b else list(a or b),
        )


class VersionServing(ServingCounters):
    """A model version's serving counters (one replica's in an event, every replica's summed in Evidence)."""

    model: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)


def quantile_ms(
    bounds: Sequence[float], counts_before: Sequence[int], counts_now: Sequence[int], q: float
) -> float | None:
    """The q-quantile latency (ms) of the requests between two readings of one cumulative
    histogram (`counts_before` empty: since zero), as Prometheus' histogram_quantile estimates
    it: linear within the bucket it falls in (from 0 for the first); in the +Inf bucket, the
    highest bound. None when no request came between the readings."""
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is between 0 and 1, not {q}")
    before = list(counts_before) or [0] * len(counts_now)
    if not counts_now:
        return None
    if not len(before) == len(counts_now) == len(bounds) + 1:
        raise ValueError(f"{len(bounds)} bounds need {len(bounds) + 1} counts: {len(before)} and {len(counts_now)}")
    counts = [now - then for now, then in zip(counts_now, before, strict=True)]
    if any(c < 0 for c in counts) or any(b < a for a, b in zip(counts, counts[1:], strict=False)):
        raise ValueError("the counts went down: not two readings of one cumulative histogram, oldest first")
    total = counts[-1]
    if total == 0:
        return None
    rank = q * total
    for i, cumulative in enumerate(counts):
        if cumulative >= rank and cumulative > 0:
            if i == len(bounds):
                return float(bounds[-1])  # past the highest bound: all that can be said
            lower, below = (float(bounds[i - 1]), counts[i - 1]) if i > 0 else (0.0, 0)
            in_bucket = cumulative - below
            return lower + (float(bounds[i]) - lower) * (rank - below) / in_bucket if in_bucket else lower
    return float(bounds[-1])


class ServingDelta(BaseModel):
    """What one version served between two readings of Evidence (a rollout step's start and now)."""

    requests: int
    failures: int
    refused: int
    shadow_requests: int
    shadow_failures: int
    latency_bounds_ms: list[float]
    latency_counts: list[int]
    """Cumulative, of the requests between the readings; empty when unknown (none, or the bounds changed)."""

    @property
    def error_rate(self) -> float | None:
        """Failed over answered and failed (refusals, the callers' fault, left out); None: neither."""
        total = self.requests + self.failures
        return self.failures / total if total else None

    def latency_ms(self, q: float) -> float | None:
        """The q-quantile latency of the answered requests (0.99: p99); None when there were none."""
        return quantile_ms(self.latency_bounds_ms, [], self.latency_counts, q)


class LiveOfVersion(LiveMetrics):
    """A version's live metrics over its predictions made since the evidence's `since`."""

    version: int


class LiveEvidence(BaseModel):
    """Live metrics per version from feedback: captured predictions made since `since` joined
    with the actual values sent for them (as GET .../monitoring/live joins them)."""

    task: Task | None = Field(description="read from the captured answers; None: none captured")
    primary: str | None = Field(description="the metric to watch: accuracy (classifiers) or rmse (regressors)")
    versions: list[LiveOfVersion] = Field(
        description="each version with pairs (a prediction and its actual) since `since`, by version"
    )
    truncated: bool = Field(
        description="the monitor no longer holds every prediction since `since` (its per-model bound, or "
        "retention): the metrics are over the newer ones"
    )


class Evidence(BaseModel):
    """Answer of GET /internal/models/{name}/evidence?since=: what a rollout's gates read, in one call.

    `serving` counters are cumulative over every replica the monitor heard (a restarted replica
    is a new instance; a forgotten one's counters are kept in the sums): they only grow, so the
    caller reads the evidence at its step's start and subtracts it (`delta`). `shadows` and
    `live` are over what was captured since `since`."""

    model: str
    since: datetime
    at: datetime = Field(description="when it was read")
    latency_bounds_ms: list[float] = Field(description="the bucket bounds of every `latency_counts`")
    serving: list[VersionServing] = Field(description="per version, summed over the replicas, by version")
    shadows: list[ShadowAgreement] = Field(description="each shadow version's agreement over answers since `since`")
    live: LiveEvidence

    def served(self, version: int) -> VersionServing:
        """The version's counters (zero when no replica served it)."""
        found = next((s for s in self.serving if s.version == version), None)
        return found or VersionServing(model=self.model, version=version)

    def shadow(self, version: int) -> ShadowAgreement | None:
        return next((s for s in self.shadows if s.version == version), None)

    def live_of(self, version: int) -> LiveOfVersion | None:
        return next((v for v in self.live.versions if v.version == version), None)

    def delta(self, version: int, before: "Evidence | None") -> ServingDelta:
        """What the version served since `before` (None: since the counters began)."""
        now = self.served(version)
        then = before.served(version) if before is not None else VersionServing(model=self.model, version=version)
        same_bounds = before is None or before.latency_bounds_ms == self.latency_bounds_ms
        latency: list[int] = []
        base = then.latency_counts or [0] * len(now.latency_counts)
        if same_bounds and now.latency_counts and len(base) == len(now.latency_counts):
            latency = [a - b for a, b in zip(now.latency_counts, base, strict=True)]
            if any(c < 0 for c in latency) or any(b < a for a, b in zip(latency, latency[1:], strict=False)):
                latency = []  # not two readings of one history (the caller mixed models?): unknown
        return ServingDelta(
            requests=max(0, now.requests - then.requests),
            failures=max(0, now.failures - then.failures),
            refused=max(0, now.refused - then.refused),
            shadow_requests=max(0, now.shadow_requests - then.shadow_requests),
            shadow_failures=max(0, now.shadow_failures - then.shadow_failures),
            latency_bounds_ms=list(self.latency_bounds_ms),
            latency_counts=latency if latency and latency[-1] else [],
        )
