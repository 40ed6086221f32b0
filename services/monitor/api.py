"""The monitor's HTTP routes: translate HTTP to service calls and back, nothing more.

`public` is what the gateway forwards (services/gateway/forwarding/monitor_api.py)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.common.contracts.models import MODEL_NAME
from services.common.contracts.monitoring import PREDICTION_ID, IsoTime, PredictionsPage
from services.monitor.deps import ServiceDep

public = APIRouter(prefix="/api/models", tags=["monitoring"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
MAX_PAGE = 1000


@public.get("/{name}/predictions", response_model=PredictionsPage)
async def predictions(
    name: Name,
    service: ServiceDep,
    since: Annotated[
        IsoTime | None,
        Query(description="from this time on (ISO 8601, e.g. 2025-01-31T12:00:00Z; without a zone: UTC)"),
    ] = None,
    after: Annotated[
        str | None,
        Query(pattern=PREDICTION_ID, description="with `since`: only the predictions after this one (`next_after`)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    shadow: Annotated[
        int | None,
        Query(ge=1, description="a shadow version: its answers to the copies of requests it got (traffic table)"),
    ] = None,
) -> PredictionsPage:
    """The model's captured predictions (its inference table) in time order, a page at a time:
    pass the page's `next_since` and `next_after` as `since` and `after` for the next one. A
    model nothing was captured of (or none by that name) has an empty page. With `shadow`, a
    shadow version's answers, each under the prediction id of the answer the caller got."""
    return await service.predictions(name, since, after, limit, shadow)
