"""The monitor's API, as the public sees it: reads of inference tables, ground truth (feedback)
and live metrics.

Parameters are validated here, by the same rules the monitor applies, before anything is
forwarded; what the monitor answers comes back as it is. tests/api/test_gateway_routes.py checks
that these routes and the monitor's public ones are the same set.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.common.contracts import MODEL_NAME
from services.common.contracts.monitoring import PREDICTION_ID, IsoTime
from services.gateway.deps import ADMIN, READ, SEND_FEEDBACK, MonitorDep

router = APIRouter(prefix="/api/models", tags=["monitoring"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
MAX_PAGE = 1000  # the monitor's


@router.get("/{name}/predictions", dependencies=[READ])
async def list_predictions(
    name: Name,
    request: Request,
    monitor: MonitorDep,
    since: Annotated[
        IsoTime | None,
        Query(description="from this time on (ISO 8601, e.g. 2025-01-31T12:00:00Z; without a zone: UTC)"),
    ] = None,
    after: Annotated[
        str | None,
        Query(pattern=PREDICTION_ID, description="with `since`: only the predictions after this one (`next_after`)"),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
    shadow: Annotated[
        int | None,
        Query(ge=1, description="a shadow version: its answers to the copies of requests it got (traffic table)"),
    ] = None,
) -> Response:
    """The model's captured predictions (its inference table) in time order, a page at a time:
    pass the page's `next_since` and `next_after` as `since` and `after` for the next one."""
    query = {"since": since.isoformat() if since else None, "after": after, "limit": limit, "shadow": shadow}
    return await monitor.forward(request, "api", "models", name, "predictions", query=query)


@router.post("/{name}/feedback", dependencies=[SEND_FEEDBACK])
async def send_feedback(name: Name, request: Request, monitor: MonitorDep) -> Response:
    """Ground truth: [{"prediction_id", "actual"}], the true class or number of predictions the
    model made (a predict or feedback key). The first actual sent for a prediction is kept; the
    answer counts the items matched with a captured prediction, pending (not captured yet) and
    duplicates. A bad item is a 422 naming its index, and nothing of that body is kept."""
    return await monitor.forward(request, "api", "models", name, "feedback")


@router.get("/{name}/monitoring/live", dependencies=[READ])
async def live_metrics(name: Name, request: Request, monitor: MonitorDep) -> Response:
    """The model's live metrics (captured predictions joined with feedback), every version
    together and each one, over a sliding window and per UTC day, each with its pair count."""
    return await monitor.forward(request, "api", "models", name, "monitoring", "live")


Why = Annotated[str | None, Query(max_length=500, description="why, for the model's history (GET .../history)")]


@router.get("/{name}/monitoring", dependencies=[READ])
async def get_monitoring(name: Name, request: Request, monitor: MonitorDep) -> Response:
    """The model's monitoring policy, each version's last drift report, the latest checks and the
    actions they took, and its live metrics."""
    return await monitor.forward(request, "api", "models", name, "monitoring")


@router.put("/{name}/monitoring", dependencies=[ADMIN])
async def set_monitoring(name: Name, request: Request, monitor: MonitorDep, reason: Why = None) -> Response:
    """Sets the model's monitoring policy: the drift check's window, thresholds and schedule (a
    Dapr Job), and what drift or a live-accuracy drop does. Recorded in the model's history."""
    return await monitor.forward(request, "api", "models", name, "monitoring", query={"reason": reason})


@router.delete("/{name}/monitoring", dependencies=[ADMIN])
async def delete_monitoring(name: Name, request: Request, monitor: MonitorDep, reason: Why = None) -> Response:
    """Removes the model's monitoring policy and its scheduled check (reports are kept)."""
    return await monitor.forward(request, "api", "models", name, "monitoring", query={"reason": reason})


@router.post("/{name}/monitoring/check", dependencies=[ADMIN])
async def check_monitoring(name: Name, request: Request, monitor: MonitorDep) -> Response:
    """Runs the model's drift check now and acts as its policy says; answers the reports."""
    return await monitor.forward(request, "api", "models", name, "monitoring", "check")
