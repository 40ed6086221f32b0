"""The stack's status and the round trip check, for readers and admins."""

import uuid
from typing import Any

from fastapi import APIRouter

from services.gateway.deps import ADMIN, READ, StatusDep
from services.gateway.status.models import RoundtripReport, StatusReport

router = APIRouter(prefix="/api")


@router.get("/status", response_model=StatusReport, dependencies=[READ])
async def status(stack: StatusDep) -> dict[str, Any]:
    """Whether each service answers through Dapr service invocation, its sidecar's version, and
    each of its instances (replicas), up or down by their heartbeats."""
    return await stack.report()


@router.post("/roundtrip", response_model=RoundtripReport, dependencies=[ADMIN])
async def roundtrip(stack: StatusDep) -> dict[str, Any]:
    """Runs the round trip check across the stack and reports every step."""
    return await stack.roundtrip(uuid.uuid4().hex[:12])
