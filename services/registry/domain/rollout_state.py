"""A rollout as the model record keeps it: the durable facts (plan, step, table, outcome) and
the effects already made, so that an activity run twice (the engine runs each at least once)
makes none of them a second time. The live readings of a running step are the workflow's own
(its custom status), not written here at every poll."""

from typing import Final

from pydantic import Field

from services.common.contracts.rollouts import FINISHED, Rollout

KEPT: Final = 10
"""Rollouts a model record keeps (the running one and the latest finished): older ones are in
the model's history (rollout.* entries)."""


class RolloutState(Rollout):
    done: list[str] = Field(default_factory=list, description="effects made: '<step>:<what>'")
    workflow: str = Field("", description="the Dapr Workflow instance running it")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def made(self, key: str) -> bool:
        """Whether the effect was made already; if not, it counts as made from now on (the caller
        makes it in the same write)."""
        if key in self.done:
            return True
        self.done.append(key)
        return False

    def view(self) -> Rollout:
        return Rollout.model_validate(self.model_dump(exclude={"done", "workflow"}))


def keep(rollouts: list[RolloutState], new: RolloutState) -> list[RolloutState]:
    """The rollouts with a new one, the oldest finished ones dropped beyond KEPT."""
    kept = [*rollouts, new]
    while len(kept) > KEPT:
        oldest = next((r for r in kept if r.finished), None)
        if oldest is None:
            break
        kept.remove(oldest)
    return kept


def active(rollouts: list[RolloutState]) -> RolloutState | None:
    return next((r for r in rollouts if not r.finished), None)


def at(rollouts: list[RolloutState], rollout_id: str) -> RolloutState | None:
    return next((r for r in rollouts if r.id == rollout_id), None)
