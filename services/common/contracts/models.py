"""The registry's internal API, as both ends of the call see it. Training registers each model
version it trains, then asks for its promotion, through Dapr service invocation on the
registry's app id:

    POST /internal/models/{name}/versions                       RegisterVersion -> Registered
         201 a new version; 200 the version this job registered before (same job_id)
    POST /internal/models/{name}/versions/{version}/promotion   PromotionRequest -> Promotion
         200; a repeated call answers the decision already taken and moves nothing

The model card is what every reader of a version reads: inference gets it with the version's
artifact in what the registry answers (GET api/models/{name}/versions/{ref}, VersionInfo).

Services never import each other, so the contract lives here: pydantic models, no I/O.
"""

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, FiniteFloat, model_validator

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


class VersionInfo(BaseModel):
    """A model version as the registry describes it (GET api/models/{name}/versions/{ref}, ref a
    number or an alias), holding what its callers read; fields they do not know are ignored."""

    model: str
    version: int
    artifact: Artifact
    card: ModelCard
    onnx: OnnxModel | None = None
