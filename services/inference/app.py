from dataclasses import dataclass

from fastapi import FastAPI

from services.common import dapr_adapters
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.events import EventType
from services.common.ports import ServiceInvoker, SidecarPorts
from services.inference import api, v2
from services.inference.dataplane import DataPlane
from services.inference.settings import Settings


@dataclass(kw_only=True)
class InferencePorts(SidecarPorts):
    invoker: ServiceInvoker  # the registry: model versions and their files


def create_app(settings: Settings | None = None, ports: InferencePorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(InferencePorts, settings)
    plane = DataPlane(ports.invoker, settings.registry_app_id, settings.max_loaded_models)
    return build_app(
        ServiceSpec(
            title="daprml inference",
            settings=settings,
            ports=ports,
            service=plane,
            routers=[api.router, v2.router],
            every_replica={EventType.MODEL_ALIAS_CHANGED: plane.on_alias_changed},
            background=[Periodic("reconcile with the registry", settings.reconcile_interval_s, plane.reconcile)],
        )
    )
