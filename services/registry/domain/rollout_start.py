"""Starting a rollout: the rules a new one is held to, over the model record."""

from datetime import datetime

from services.common.contracts.rollouts import StartRollout
from services.registry.domain import rollout_state as states
from services.registry.domain.errors import Conflict, Unprocessable
from services.registry.domain.history import ROLLOUT
from services.registry.domain.model import CHAMPION, ModelRecord, numbered
from services.registry.domain.rollout_state import RolloutState


def begin(record: ModelRecord, request: StartRollout, actor: str, when: datetime) -> RolloutState:
    """A new rollout of the model, numbered r1, r2, ..., kept in the record with its
    `rollout.started` history entry (in the caller's write): refused while another runs, without
    a champion, or for the champion itself."""
    running = states.active(record.rollouts)
    if running is not None:
        raise Conflict(
            f"model {record.name!r} has rollout {running.id} running (version {running.candidate}, {running.status}); "
            f"abort it first (POST .../rollouts/{running.id}/abort)"
        )
    champion = record.aliases.get(CHAMPION)
    if champion is None:
        raise Conflict(f"model {record.name!r} has no champion: a rollout brings a candidate to replace one")
    numbered(record, request.candidate)
    if request.candidate == champion:
        raise Unprocessable(f"version {champion} is the champion of model {record.name!r} already")
    record.rollouts_started += 1
    rollout_id = f"r{record.rollouts_started}"
    rollout = RolloutState(
        id=rollout_id,
        model=record.name,
        candidate=request.candidate,
        champion=champion,
        plan=request.plan,
        gates=request.gates,
        status="running",
        reason=request.reason,
        started_by=actor,
        started_at=when,
        updated_at=when,
        workflow=f"rollout-{record.name}-{rollout_id}",
    )
    record.rollouts = states.keep(record.rollouts, rollout)
    details = {"rollout": rollout.id, "candidate": rollout.candidate, "champion": rollout.champion}
    record.note(f"{ROLLOUT}started", actor, request.reason or f"rollout {rollout.id}", when, details)
    return rollout
