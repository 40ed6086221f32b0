"""The monitor's routes for ground truth and live metrics (forwarded by the gateway:
services/gateway/forwarding/monitor_api.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError

from services.common.actor import ActorDep
from services.common.contracts.models import MODEL_NAME
from services.monitor.deps import FeedbackDep, LiveDep
from services.monitor.domain.feedback import MAX_ITEMS, FeedbackAnswer, FeedbackItem
from services.monitor.domain.ledger import LiveReport
from services.monitor.feedback import items_in_error

router = APIRouter(prefix="/api/models", tags=["monitoring"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
ITEMS = TypeAdapter(Annotated[list[FeedbackItem], Field(min_length=1, max_length=MAX_ITEMS)])
# Declared by hand: the body is validated in the route, so that a refused one is counted.
BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "minItems": 1, "items": FeedbackItem.model_json_schema()},
                "example": [{"prediction_id": "6f1c0d2e9a8b47c5b3e2d1f0a9b8c7d6-0", "actual": "setosa"}],
            }
        },
    }
}


@router.post("/{name}/feedback", response_model=FeedbackAnswer, openapi_extra=BODY)
async def send_feedback(name: Name, request: Request, feedback: FeedbackDep, actor: ActorDep) -> FeedbackAnswer:
    """What actually happened for predictions of the model: [{"prediction_id", "actual"}], at
    most DAPRML_FEEDBACK_MAX_ITEMS a call. The first actual sent for a prediction is kept; the
    answer says how many items matched a captured prediction, wait for theirs (pending) or
    were duplicates. A body with a bad item is a 422 naming it (`loc`: body, its index, the
    field), and nothing of it is kept."""
    try:
        items = ITEMS.validate_json(await request.body())
    except ValidationError as exc:
        feedback.refused(items_in_error(exc))
        # Type, place and words only: the `input` of a body that is not UTF-8 is bytes, which
        # no JSON answer can carry (a 500 once, found by schemathesis).
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    return await feedback.receive(name, items, actor)


@router.get("/{name}/monitoring/live", response_model=LiveReport)
async def live_metrics(name: Name, live: LiveDep) -> LiveReport:
    """The model's live metrics: its captured predictions joined with the actuals sent as
    feedback, every version together and each version, over the sliding window and per UTC day,
    each metric with the count of pairs it is based on. At most DAPRML_LIVE_CACHE_S old
    (`computed_at`)."""
    return await live.report(name)
