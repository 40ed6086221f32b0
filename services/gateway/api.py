"""The gateway's public routes: translate HTTP, delegate to service functions."""

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.gateway import service
from services.gateway.access import ADMIN, READ
from services.gateway.deps import PortsDep, SettingsDep

router = APIRouter(prefix="/api")


class ServiceState(BaseModel):
    service: str
    app_id: str
    reachable: bool
    runtime_version: str | None
    error: str | None


class StatusReport(BaseModel):
    ok: bool
    services: list[ServiceState]


class Step(BaseModel):
    name: str
    ok: bool
    detail: str


class RoundtripReport(BaseModel):
    run_id: str
    ok: bool
    steps: list[Step]


@router.get("/status", response_model=StatusReport, dependencies=[READ])
async def status(ports: PortsDep, settings: SettingsDep) -> dict[str, Any]:
    """Whether each service answers through Dapr service invocation, and its sidecar's version."""
    services = await service.service_status(ports.invoker, settings.app_ids())
    return {"ok": all(s["reachable"] for s in services), "services": services}


@router.post("/roundtrip", response_model=RoundtripReport, dependencies=[ADMIN])
async def roundtrip(ports: PortsDep, settings: SettingsDep) -> dict[str, Any]:
    """Runs the round trip check across the stack and reports every step."""
    return await service.roundtrip(uuid.uuid4().hex[:12], ports, settings)
