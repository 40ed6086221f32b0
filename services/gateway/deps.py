from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from services.common.deps import ports_of, service_of, settings_of
from services.gateway.access import Gatekeeper
from services.gateway.breaker import Breakers
from services.gateway.instances import Instances
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.upstream import Upstream

SettingsDep = Annotated[Settings, Depends(settings_of)]
PortsDep = Annotated[GatewayPorts, Depends(ports_of)]
GateDep = Annotated[Gatekeeper, Depends(service_of)]


def instances_of(request: Request) -> Instances:
    instances: Instances = request.app.state.instances
    return instances


InstancesDep = Annotated[Instances, Depends(instances_of)]


def upstream(service: str) -> Callable[[Request, GatewayPorts, Settings], Upstream]:
    """The dependency that gives a route the internal service it forwards to."""

    def to(request: Request, ports: PortsDep, settings: SettingsDep) -> Upstream:
        app_id = settings.app_ids()[service]
        breakers: Breakers = request.app.state.breakers
        return Upstream(request, ports.invoker, app_id, settings.max_body_bytes, breakers.of(app_id))

    return to


IngestionDep = Annotated[Upstream, Depends(upstream("ingestion"))]
RegistryDep = Annotated[Upstream, Depends(upstream("registry"))]
TrainingDep = Annotated[Upstream, Depends(upstream("training"))]
InferenceDep = Annotated[Upstream, Depends(upstream("inference"))]
