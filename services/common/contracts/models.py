"""The registry's internal API, as both ends of the call see it. Training registers each model
version it trains, then asks for its promotion, through Dapr service invocation on the
registry's app id:

    POST /internal/models/{name}/versions                       RegisterVersion -> Registered
         201 a new version; 200 the version this job registered before (same job_id)
    POST /internal/models/{name}/versions/{version}/promotion   PromotionRequest -> Promotion
         200; a repeated call answers the decision already taken and moves nothing
    POST /internal/models/{name}/history                        Note -> HistoryEntry
         201; the monitor records what it did (a `monitoring.*` action) in the model's history

The model card is what every reader of a version reads: inference gets it with the version's
artifact in what the registry answers (GET api/models/{name}/versions/{ref}, VersionInfo).

Services never import each other, so the contract lives here: pydantic models, no I/O.
"""

import json
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictFloat, StrictInt, field_validator, model_validator

from services.common.contracts.coercion import FLOAT, dtype
from services.common.contracts.datasets import DATASET_NAME, Feature, Task
from services.common.contracts.monitoring import ReferenceDistributions

MODEL_NAME = DATASET_NAME  # lower-case letters, digits, '-' and '_'; safe in keys and paths
ALIAS_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # champion, challenger, ...; never a number alone
SHA256 = r"^[0-9a-f]{64}$"
# Plain segments joined by '/': nothing that could climb out of the blob store's root.
ARTIFACT_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"

# The task as a payload states it: validated into a Task, described in JSON schemas as the
# plain strings it is on the wire (as the registry's internal API has always described it).
TaskName = Literal[Task.CLASSIFICATION, Task.REGRESSION]

# Error metrics and losses: the lower, the better. Every other metric: the higher, the better.
# The registry promotes by this rule; the console draws its charts by it (GET /api/metrics).
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "log_loss"})


class Lineage(BaseModel):
    """Where a model version comes from: enough to train it again."""

    dataset: str = Field(pattern=DATASET_NAME)
    dataset_version: int = Field(ge=1)
    schema_hash: str = Field(min_length=1, max_length=128)
    estimator: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    params: dict[str, Any] = Field(default_factory=dict)
    job_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    """The training job (workflow instance): one job registers one version, however often it asks."""
    feedback_rows: int = Field(0, ge=0)
    """Rows of its dataset version whose target came from feedback (a monitoring retrain made
    the version): the registry's promotion policy keeps such a version challenger by default."""


class Artifact(BaseModel):
    """A model file (skops, or ONNX), as stored through the blob binding."""

    key: str = Field(max_length=512, pattern=ARTIFACT_KEY)
    sha256: str = Field(pattern=SHA256)


class OnnxCheck(BaseModel):
    """How the ONNX model answered against the scikit-learn pipeline on the holdout and on edge
    rows (missing values, unseen categories, extreme numbers), before it was registered."""

    passed: bool
    rows: int = Field(0, ge=0)
    """Rows both answered."""
    max_difference: float | None = None
    """Largest difference: of class probabilities (classifiers, absolute), or of predictions
    (regressors, relative to the prediction's size when it is above 1)."""
    tolerance: float | None = None
    """The most `max_difference` may be for the check to pass (class labels must be identical)."""
    ties: int = Field(0, ge=0)
    """Rows whose two most probable classes are within the tolerance of each other: either label
    is right, so they are not held against the check."""
    reason: str | None = Field(None, max_length=2000)
    """Why there is no ONNX model to serve, when there is none."""


class OnnxModel(BaseModel):
    """The version's compiled model: its ONNX file, when the pipeline converted and the file
    passed the check, and the check's result either way."""

    artifact: Artifact | None = None
    check: OnnxCheck
    versions: dict[str, str] = Field(default_factory=dict)
    """skl2onnx, onnx and the opsets the file was written with."""


class ModelCard(BaseModel):
    """What a user of the model needs to know to call it."""

    task: TaskName
    target: str = Field(min_length=1, max_length=200)
    features: list[Feature] = Field(min_length=1)
    classes: list[str | int | float | bool] = Field(default_factory=list)  # classification only
    training_rows: int | None = Field(None, ge=0)
    holdout_rows: int | None = Field(None, ge=0)
    seed: int | None = None
    missing_category: str | None = Field(None, max_length=64)
    """The string the model reads for a missing category; None: NaN (versions trained before
    models were compiled)."""
    reference: ReferenceDistributions | None = Field(None, exclude_if=lambda value: value is None)
    """What training saw of each feature and of the model's predictions, for drift checks; None
    (and left out when written, so an older card reads as it was): trained before they were
    recorded."""

    @property
    def all_numeric(self) -> bool:
        """Every feature reads as a float: the features can be the columns of one 2-D numeric tensor."""
        return all(dtype(f.type) == FLOAT for f in self.features)


class ConfusionMatrix(BaseModel):
    labels: list[str | int | float | bool]
    counts: list[list[int]]  # rows: true label, columns: predicted, in the order of `labels`


class RegisterVersion(BaseModel):
    """Body of POST /internal/models/{name}/versions."""

    lineage: Lineage
    metrics: dict[str, FiniteFloat] = Field(min_length=1)  # on the holdout: accuracy, f1_macro, r2, rmse, ...
    confusion_matrix: ConfusionMatrix | None = None
    artifact: Artifact
    card: ModelCard
    onnx: OnnxModel | None = None
    """None: the trainer made no attempt (versions registered before models were compiled)."""


class Registered(BaseModel):
    """Answer to a registration."""

    model: str
    version: int
    new: bool  # False: this job had registered the version before


class PromotionRequest(BaseModel):
    """Body of POST /internal/models/{name}/versions/{version}/promotion: the new version's
    scores on its holdout and, when the model has a champion, the champion's scores on the
    same holdout. Send every metric; the registry compares on the model's primary metric."""

    candidate: dict[str, FiniteFloat] = Field(min_length=1)
    champion_version: int | None = Field(None, ge=1)
    """The champion that was scored (GET /api/models/{name}, aliases.champion); None if none."""
    champion: dict[str, FiniteFloat] | None = None

    @model_validator(mode="after")
    def _champion_with_its_scores(self) -> Self:
        if (self.champion_version is None) != (self.champion is None):
            raise ValueError("champion_version and champion go together: both, or neither when there is no champion")
        return self


class Promotion(BaseModel):
    """What the registry decided for a new version, once and for all."""

    model: str
    version: int
    alias: Literal["champion", "challenger"]
    policy: Literal["auto", "manual"]
    metric: str
    candidate: float | None
    champion: float | None
    champion_version: int | None
    decided_at: datetime


class CanaryWeight(BaseModel):
    """A version that serves a share of the champion's traffic."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(ge=1)
    percent: StrictFloat = Field(gt=0, lt=100, description="of the requests for the champion, served by this version")


class ShadowShare(BaseModel):
    """A version that gets a copy of a share of the champion's requests, off the request path:
    its answers are compared with the champion's and never returned."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(ge=1)
    percent: StrictFloat = Field(gt=0, le=100, description="of the requests for the champion, copied to this version")


MAX_CANARIES = 5
MAX_SHADOWS = 3


class Traffic(BaseModel):
    """How a model's champion traffic is served (PUT /api/models/{name}/traffic): canary
    versions take their percent of it, the champion the rest; shadows get copies. A request that
    names a version or an alias is served by it, bypassing the split. The empty table (the
    default) sends everything to the champion."""

    model_config = ConfigDict(extra="forbid")

    canary: list[CanaryWeight] = Field(default_factory=list, max_length=MAX_CANARIES)
    shadows: list[ShadowShare] = Field(default_factory=list, max_length=MAX_SHADOWS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        versions = [c.version for c in self.canary] + [s.version for s in self.shadows]
        if len(set(versions)) != len(versions):
            raise ValueError(f"a version is named more than once (canary and shadows: {versions})")
        if sum(c.percent for c in self.canary) >= 100:
            raise ValueError("the canary percents add up to 100 or more: the champion would serve nothing")
        return self

    @property
    def versions(self) -> set[int]:
        return {c.version for c in self.canary} | {s.version for s in self.shadows}


ROUTING_KEY_HEADER = "x-daprml-routing-key"
"""The request header a caller names itself by on the predict routes (JSON and OIP), for a sticky
canary split: the same key lands on the same version while the table stays as it is. The gateway
passes it to inference, and no other header of the caller's."""
MAX_ROUTING_KEY = 200
ROUTING_KEY = rf"^[\x20-\x7e]{{1,{MAX_ROUTING_KEY}}}$"
"""A routing key: 1 to MAX_ROUTING_KEY printable ASCII characters."""


class VersionInfo(BaseModel):
    """A model version as the registry describes it (GET api/models/{name}/versions/{ref}, ref a
    number or an alias), holding what its callers read; fields they do not know are ignored."""

    model: str
    version: int
    artifact: Artifact
    card: ModelCard
    onnx: OnnxModel | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    """Its scores on its holdout (accuracy, f1_macro, rmse, ...): what live metrics compare with."""
    lineage: Lineage | None = None
    """Where it comes from (what a retrain trains again); None only in answers that leave it out."""


# The model's history (GET /api/models/{name}/history, registry): entries the registry records
# itself, and those the monitor asks it to record (Note).

HISTORY_ACTION = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_DETAILS_BYTES = 4096
"""Largest `details` of one entry, as JSON: a page stays well under a state store's value limit."""


class HistoryEntry(BaseModel):
    """One thing done to a model."""

    seq: int = Field(ge=1, description="the entry's place in the model's history, 1 first, without gaps")
    at: datetime
    actor: str = Field(max_length=200, description="the name of the API key that asked, or the app id that acted")
    action: str = Field(
        pattern=HISTORY_ACTION, description="alias.moved, policy.changed, traffic.changed or monitoring.*"
    )
    reason: str = Field("", max_length=2000, description="why, as the actor said or the rule decided")
    details: dict[str, Any] = Field(default_factory=dict)


class Note(BaseModel):
    """Body of POST /internal/models/{name}/history: an entry another service records (the
    monitor). The registry gives it its seq and time; its actor is the caller's (services.common.actor)
    unless `actor` names the person the caller acts for."""

    action: str = Field(pattern=r"^monitoring\.[a-z0-9_.-]{1,52}$", description="monitoring.<what>")
    reason: str = Field("", max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = Field(None, min_length=1, max_length=200, description="whom the caller acts for")

    @field_validator("details")
    @classmethod
    def _small(cls, details: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(details, default=str))
        if size > MAX_DETAILS_BYTES:
            raise ValueError(f"details take {size} bytes as JSON; at most {MAX_DETAILS_BYTES} are kept")
        return details
