"""The monitor's internal route for rollouts: the registry reads a model's evidence here through
Dapr service invocation (dapr/access.yaml); the gateway does not forward it."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.common.contracts.models import MODEL_NAME
from services.common.contracts.monitoring import Evidence, IsoTime
from services.monitor.deps import EvidenceDep

internal = APIRouter(prefix="/internal/models", tags=["internal"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]


@internal.get("/{name}/evidence", response_model=Evidence)
async def evidence(
    name: Name,
    evidence: EvidenceDep,
    since: Annotated[
        IsoTime,
        Query(description="the start of the rollout step (ISO 8601, e.g. 2025-01-31T12:00:00Z; without a zone: UTC)"),
    ],
) -> Evidence:
    """What a rollout's gates read, for every version of the model: its serving counters summed
    over the inference replicas (cumulative: subtract a reading taken at the step's start), each
    shadow's agreement and each version's live metrics over what was captured since `since`. A
    model nothing is known of has empty evidence."""
    return await evidence.of(name, since)
