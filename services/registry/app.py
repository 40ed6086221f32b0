from fastapi import FastAPI

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app
from services.common.ports import SidecarPorts
from services.registry.settings import Settings


def create_app(settings: Settings | None = None, ports: SidecarPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(SidecarPorts, settings)
    return build_app(ServiceSpec(title="daprml registry", settings=settings, ports=ports))
