"""The metrics' directions, as the registry compares versions by them."""

from fastapi import APIRouter

from services.common.contracts import LOWER_IS_BETTER
from services.gateway.deps import READ
from services.gateway.metrics.models import MetricDirections

router = APIRouter(prefix="/api/metrics", tags=["models"])


@router.get("", response_model=MetricDirections, dependencies=[READ])
async def metric_directions() -> MetricDirections:
    """Which metrics are better lower (errors and losses); every other one is better higher."""
    return MetricDirections(lower_is_better=sorted(LOWER_IS_BETTER))
