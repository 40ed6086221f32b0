"""The registry's rollout routes (services/common/contracts/rollouts.py is their contract):
translate HTTP to Rollouts calls and back, nothing more."""

from typing import Annotated

from fastapi import APIRouter, Path

from services.common.actor import ActorDep
from services.common.contracts.rollouts import ROLLOUT_ID, Rollout, RolloutList, StartRollout
from services.registry.api import Name, Why
from services.registry.deps import RolloutsDep

router = APIRouter(prefix="/api/models", tags=["rollouts"])

RolloutId = Annotated[str, Path(pattern=ROLLOUT_ID, description="r1, r2, ...: as POST .../rollouts answered")]


@router.post("/{name}/rollouts", status_code=201, response_model=Rollout)
async def start_rollout(name: Name, request: StartRollout, rollouts: RolloutsDep, actor: ActorDep) -> Rollout:
    """Starts bringing `candidate` to champion by the plan, as a workflow: one rollout at a
    time per model."""
    return await rollouts.start(name, request, actor)


@router.get("/{name}/rollouts", response_model=RolloutList)
async def list_rollouts(name: Name, rollouts: RolloutsDep) -> RolloutList:
    """The model's running rollout and its latest finished ones, newest first."""
    return await rollouts.list(name)


@router.get("/{name}/rollouts/{rollout_id}", response_model=Rollout)
async def get_rollout(name: Name, rollout_id: RolloutId, rollouts: RolloutsDep) -> Rollout:
    """The rollout: its step, the table it set, its gates' latest readings, how it ended."""
    return await rollouts.get(name, rollout_id)


@router.post("/{name}/rollouts/{rollout_id}/approve", response_model=Rollout)
async def approve_rollout(
    name: Name, rollout_id: RolloutId, rollouts: RolloutsDep, actor: ActorDep, reason: Why = ""
) -> Rollout:
    """Moves a rollout waiting at its approval step on."""
    return await rollouts.decide(name, rollout_id, "approve", actor, reason)


@router.post("/{name}/rollouts/{rollout_id}/reject", response_model=Rollout)
async def reject_rollout(
    name: Name, rollout_id: RolloutId, rollouts: RolloutsDep, actor: ActorDep, reason: Why = ""
) -> Rollout:
    """Rolls a rollout back, from whichever step it is in."""
    return await rollouts.decide(name, rollout_id, "reject", actor, reason)


@router.post("/{name}/rollouts/{rollout_id}/abort", response_model=Rollout)
async def abort_rollout(
    name: Name, rollout_id: RolloutId, rollouts: RolloutsDep, actor: ActorDep, reason: Why = ""
) -> Rollout:
    """Stops a rollout and rolls it back (as reject, when no person's judgement is meant)."""
    return await rollouts.decide(name, rollout_id, "abort", actor, reason)
