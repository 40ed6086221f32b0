"""The monitor's API, as the public sees it: reads of inference tables.

Parameters are validated here, by the same rules the monitor applies, before anything is
forwarded; what the monitor answers comes back as it is. tests/api/test_gateway_routes.py checks
that these routes and the monitor's public ones are the same set.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.common.contracts import MODEL_NAME
from services.common.contracts.monitoring import PREDICTION_ID
from services.gateway.deps import READ, MonitorDep

router = APIRouter(prefix="/api/models", tags=["monitoring"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
MAX_PAGE = 1000  # the monitor's


@router.get("/{name}/predictions", dependencies=[READ])
async def list_predictions(
    name: Name,
    request: Request,
    monitor: MonitorDep,
    since: Annotated[
        datetime | None,
        Query(description="from this time on (ISO 8601, e.g. 2025-01-31T12:00:00Z; without a zone: UTC)"),
    ] = None,
    after: Annotated[
        str | None,
        Query(pattern=PREDICTION_ID, description="with `since`: only the predictions after this one (`next_after`)"),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> Response:
    """The model's captured predictions (its inference table) in time order, a page at a time:
    pass the page's `next_since` and `next_after` as `since` and `after` for the next one."""
    query = {"since": since.isoformat() if since else None, "after": after, "limit": limit}
    return await monitor.forward(request, "api", "models", name, "predictions", query=query)
