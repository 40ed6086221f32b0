"""The monitoring routes: a model's policy, drift checks asked for now, and what monitoring knows
of the model. The gateway forwards them (services/gateway/forwarding/monitor_api.py): reading
with the reader role, changing and checking with admin."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from services.common.actor import ActorDep
from services.common.contracts.models import MODEL_NAME
from services.monitor.deps import MonitoringDep
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import CheckResult, Trigger
from services.monitor.views import MonitoringView, PolicyState

router = APIRouter(prefix="/api/models", tags=["monitoring"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
Why = Annotated[str | None, Query(max_length=500, description="why, for the model's history (GET .../history)")]


@router.get("/{name}/monitoring", response_model=MonitoringView)
async def get_monitoring(name: Name, monitoring: MonitoringDep) -> MonitoringView:
    """The model's monitoring policy, each version's last drift report, the latest checks and the
    actions they took. A model never monitored has an empty one."""
    return await monitoring.view(name)


@router.put("/{name}/monitoring", response_model=PolicyState)
async def set_monitoring(
    name: Name,
    policy: Annotated[MonitoringPolicy, Body()],
    monitoring: MonitoringDep,
    actor: ActorDep,
    reason: Why = None,
) -> PolicyState:
    """Sets the model's monitoring policy (every field has a default) and schedules its drift check
    as a Dapr Job when the policy names a schedule (removes the job when it does not). A change is
    recorded in the model's history with who made it."""
    return await monitoring.set_policy(name, policy, actor, reason or "")


@router.delete("/{name}/monitoring", response_model=PolicyState)
async def delete_monitoring(name: Name, monitoring: MonitoringDep, actor: ActorDep, reason: Why = None) -> PolicyState:
    """Removes the model's monitoring policy and its scheduled check; reports are kept."""
    return await monitoring.set_policy(name, None, actor, reason or "")


@router.post("/{name}/monitoring/check", response_model=CheckResult)
async def check_now(name: Name, monitoring: MonitoringDep, actor: ActorDep) -> CheckResult:
    """Runs the model's drift check now, on its policy's window (the defaults without one), and
    acts as the policy says. 409 while a check of the model runs, or when its champion's card
    records no reference distributions."""
    return await monitoring.check(name, Trigger.API, actor)
