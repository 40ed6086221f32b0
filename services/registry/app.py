from fastapi import FastAPI

from services.common.app import build_app
from services.common.dapr_adapters import dapr_ports
from services.common.ports import Ports
from services.registry.settings import Settings


def create_app(settings: Settings | None = None, ports: Ports | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_ports(settings)
    app = build_app("daprml registry", settings, ports)
    return app
