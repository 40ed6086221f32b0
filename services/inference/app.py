from dataclasses import dataclass

from fastapi import FastAPI

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app
from services.common.ports import ServiceInvoker, SidecarPorts
from services.inference import api, v2
from services.inference.batching import Limits
from services.inference.dataplane import DataPlane
from services.inference.settings import Settings


@dataclass(kw_only=True)
class InferencePorts(SidecarPorts):
    invoker: ServiceInvoker  # the registry: model versions and their files


def create_app(settings: Settings | None = None, ports: InferencePorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(InferencePorts, settings)
    batching = Limits(settings.max_batch_size, settings.max_batch_wait_s) if settings.batching else None
    plane = DataPlane(
        ports.invoker,
        settings.registry_app_id,
        settings.max_loaded_models,
        batching=batching,
        unbatched=set(settings.unbatched_models),
    )
    return build_app(
        ServiceSpec(
            title="daprml inference",
            settings=settings,
            ports=ports,
            service=plane,
            routers=[api.router, v2.router],
            closing=[plane.close],
        )
    )
