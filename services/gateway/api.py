"""The gateway's public routes: translate HTTP, delegate to service functions."""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.gateway import service
from services.gateway.access import ADMIN, READ
from services.gateway.deps import InstancesDep, PortsDep, SettingsDep

router = APIRouter(prefix="/api")


class InstanceState(BaseModel):
    instance: str = Field(description="host:sidecar port; stable across restarts of one replica")
    up: bool = Field(description="its heartbeats, sent through its own sidecar, keep coming")
    last_heartbeat_s: float
    started_at: datetime
    error: str | None


class ServiceState(BaseModel):
    service: str
    app_id: str
    reachable: bool = Field(description="one of its instances answered /readyz through Dapr")
    runtime_version: str | None
    error: str | None
    instances: list[InstanceState] = Field(
        description="each instance heard from lately, by its heartbeats (empty for a service that sends none)"
    )


class StatusReport(BaseModel):
    ok: bool = Field(description="every service reachable and every instance up")
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
async def status(ports: PortsDep, settings: SettingsDep, instances: InstancesDep) -> dict[str, Any]:
    """Whether each service answers through Dapr service invocation, its sidecar's version, and
    each of its instances (replicas), up or down by their heartbeats."""
    services = await service.service_status(ports.invoker, settings.app_ids())
    for entry in services:
        entry["instances"] = instances.of(entry["app_id"])
    ok = all(s["reachable"] and all(i["up"] for i in s["instances"]) for s in services)
    return {"ok": ok, "services": services}


@router.post("/roundtrip", response_model=RoundtripReport, dependencies=[ADMIN])
async def roundtrip(ports: PortsDep, settings: SettingsDep) -> dict[str, Any]:
    """Runs the round trip check across the stack and reports every step."""
    return await service.roundtrip(uuid.uuid4().hex[:12], ports, settings)
