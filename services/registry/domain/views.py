"""What the registry's routes take and answer, beside the records answered as they are
stored (a promotion policy: model.py), and the functions that make the answers of records."""

from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from services.common.contracts.models import (
    Artifact,
    ConfusionMatrix,
    Lineage,
    ModelCard,
    OnnxModel,
    Promotion,
    RegisterVersion,
    TaskName,
    Traffic,
)
from services.registry.domain import traffic as tables
from services.registry.domain.history import RECENT_MOVES
from services.registry.domain.model import CHAMPION, AliasChange, ModelRecord, PromotionPolicy, VersionRef


class AliasTarget(BaseModel):
    """Body of PUT /api/models/{name}/aliases/{alias}."""

    version: StrictInt


class AliasMoved(BaseModel):
    """Where an alias points after a change, and where it pointed before."""

    model: str
    alias: str
    version: int | None
    previous: int | None


class ModelSummary(BaseModel):
    name: str
    task: TaskName | None
    versions: int
    latest_version: int | None
    aliases: dict[str, int]
    created_at: datetime


class ModelList(BaseModel):
    """One page of the models, by name."""

    models: list[ModelSummary]
    total: int
    offset: int
    limit: int


class VersionSummary(BaseModel):
    version: int
    created_at: datetime
    dataset: str
    dataset_version: int
    estimator: str
    job_id: str
    metrics: dict[str, float]
    artifact_sha256: str
    aliases: list[str]
    promotion: Promotion | None


class ModelInfo(BaseModel):
    name: str
    task: TaskName | None
    created_at: datetime
    policy: PromotionPolicy
    aliases: dict[str, int]
    versions: list[VersionSummary]
    history: list[AliasChange] = Field(
        description=f"the latest {RECENT_MOVES} alias moves, oldest first; the whole history, with who, why and "
        "when of every change: GET /api/models/{name}/history"
    )
    traffic: Traffic = Field(
        default_factory=Traffic,
        description="how the champion's requests are served: canary versions take their percent, shadows get "
        "copies (who changed it and when: GET /api/models/{name}/traffic)",
    )


class TrafficView(BaseModel):
    """Answer of GET, PUT and DELETE /api/models/{name}/traffic."""

    model: str
    champion: int | None = Field(description="the version that serves what the canaries leave (null: no champion)")
    champion_percent: float = Field(description="of the requests for the champion, served by it: 100 - the canaries'")
    traffic: Traffic
    changed_at: datetime | None = Field(description="when the table last changed (null: never)")
    changed_by: str | None = Field(description="who changed it last: an API key's name, or the app id that acted")


class ModelVersion(BaseModel):
    model: str
    version: int
    created_at: datetime
    aliases: list[str]
    lineage: Lineage
    metrics: dict[str, float]
    confusion_matrix: ConfusionMatrix | None
    artifact: Artifact
    card: ModelCard
    promotion: Promotion | None
    onnx: OnnxModel | None = None
    """The compiled model: its ONNX file (GET .../onnx) when the check passed, and the check's
    result; None for versions registered before models were compiled."""


def summary(record: ModelRecord) -> ModelSummary:
    return ModelSummary(
        name=record.name,
        task=record.task,
        versions=len(record.versions),
        latest_version=record.versions[-1].version if record.versions else None,
        aliases=record.aliases,
        created_at=record.created_at,
    )


def _version_summary(record: ModelRecord, ref: VersionRef) -> VersionSummary:
    return VersionSummary(**ref.model_dump(exclude={"details_key"}), aliases=record.aliases_of(ref.version))


def info(record: ModelRecord) -> ModelInfo:
    return ModelInfo(
        name=record.name,
        task=record.task,
        created_at=record.created_at,
        policy=record.policy,
        aliases=record.aliases,
        versions=[_version_summary(record, v) for v in record.versions],
        history=record.recent,
        traffic=record.traffic,
    )


def traffic(record: ModelRecord) -> TrafficView:
    return TrafficView(
        model=record.name,
        champion=record.aliases.get(CHAMPION),
        champion_percent=tables.champion_percent(record.traffic),
        traffic=record.traffic,
        changed_at=record.traffic_at,
        changed_by=record.traffic_by,
    )


def version(record: ModelRecord, ref: VersionRef, details: RegisterVersion) -> ModelVersion:
    return ModelVersion(
        model=record.name,
        version=ref.version,
        created_at=ref.created_at,
        aliases=record.aliases_of(ref.version),
        lineage=details.lineage,
        metrics=details.metrics,
        confusion_matrix=details.confusion_matrix,
        artifact=details.artifact,
        card=details.card,
        promotion=ref.promotion,
        onnx=details.onnx,
    )
