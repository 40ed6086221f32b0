"""What GET /api/status and POST /api/roundtrip answer."""

from datetime import datetime

from pydantic import BaseModel, Field


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
