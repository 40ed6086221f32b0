"""A subscriber of prediction logs that fails on purpose, run behind its own real sidecar by a
test (python tests/integration/flaky.py). By the event's request id: `flaky-*` fails its first
two deliveries, then is processed; `poison-*` fails every time; anything else is processed.
GET /deliveries shows how many deliveries each event id had and which were processed. Built
with the service kit, like the services."""

from collections import Counter
from typing import Any

from fastapi import APIRouter, FastAPI

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app, serve
from services.common.events import EventType, PredictionLogged
from services.common.ports import SidecarPorts, SidecarUnavailable
from services.common.settings import ServiceSettings

attempts: Counter[str] = Counter()
processed: list[str] = []
router = APIRouter()


@router.get("/deliveries")
async def show() -> dict[str, Any]:
    return {"attempts": attempts, "processed": processed}


async def handle(attributes: dict[str, Any], event: PredictionLogged) -> None:
    event_id = str(attributes.get("id"))
    attempts[event_id] += 1
    if event.request_id.startswith("poison-"):
        raise RuntimeError(f"poisoned on purpose (delivery {attempts[event_id]})")
    if event.request_id.startswith("flaky-") and attempts[event_id] <= 2:
        raise SidecarUnavailable(f"flaky on purpose (delivery {attempts[event_id]})")
    processed.append(event_id)


def create_app(settings: ServiceSettings) -> FastAPI:
    ports = dapr_adapters.sidecar_ports(SidecarPorts, settings)
    return build_app(
        ServiceSpec(
            title="flaky",
            settings=settings,
            ports=ports,
            routers=[router],
            subscriptions={EventType.PREDICTION_LOGGED: handle},
        )
    )


if __name__ == "__main__":
    serve(create_app, ServiceSettings)
