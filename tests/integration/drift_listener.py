"""A subscriber of model drift events, run behind its own real sidecar by a test (python
tests/integration/drift_listener.py): it keeps what it receives and shows it at GET /received.
Built with the service kit, like the services (like history_listener.py, for history entries)."""

from typing import Any

from fastapi import APIRouter, FastAPI

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app, serve
from services.common.events import EventType, ModelDriftDetected
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings

received: list[dict[str, Any]] = []
router = APIRouter()


@router.get("/received")
async def show() -> list[dict[str, Any]]:
    return received


async def keep(attributes: dict[str, Any], event: ModelDriftDetected) -> None:
    received.append({"id": attributes.get("id"), **event.model_dump(mode="json")})


def create_app(settings: ServiceSettings) -> FastAPI:
    ports = dapr_adapters.sidecar_ports(SidecarPorts, settings)
    return build_app(
        ServiceSpec(
            title="drift listener",
            settings=settings,
            ports=ports,
            routers=[router],
            subscriptions={EventType.MODEL_DRIFT_DETECTED: keep},
        )
    )


if __name__ == "__main__":
    serve(create_app, ServiceSettings)
