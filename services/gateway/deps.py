from typing import Annotated

from fastapi import Depends, Request

from services.common.deps import ports_of, settings_of
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.upstream import Upstream

SettingsDep = Annotated[Settings, Depends(settings_of)]
PortsDep = Annotated[GatewayPorts, Depends(ports_of)]


def to_ingestion(request: Request, ports: PortsDep, settings: SettingsDep) -> Upstream:
    return Upstream(request, ports.invoker, settings.ingestion_app_id, settings.max_body_bytes)


IngestionDep = Annotated[Upstream, Depends(to_ingestion)]
