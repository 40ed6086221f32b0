"""Rollouts: a candidate version brought to champion in steps (shadow, canary, approval,
promote), each held to gates on live evidence against the champion. The registry runs each
rollout as a Dapr Workflow; the gateway, the CLI and the console speak these models:

    POST /api/models/{name}/rollouts                   StartRollout -> Rollout (201; admin)
    GET  /api/models/{name}/rollouts                   -> RolloutList (newest first)
    GET  /api/models/{name}/rollouts/{id}              -> Rollout
    POST /api/models/{name}/rollouts/{id}/approve      ?reason= -> Rollout (admin)
    POST /api/models/{name}/rollouts/{id}/reject       ?reason= -> Rollout (admin)
    POST /api/models/{name}/rollouts/{id}/abort        ?reason= -> Rollout (admin)

A plan is as plain as `[{"shadow": 20, "for": "10m"}, {"canary": 30}, {"approval": true},
{"promote": true}]`. Services never import each other: the contract lives here.
"""

import re
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from services.common.contracts.models import Traffic

ROLLOUT_ID = r"^[a-z0-9][a-z0-9-]{0,99}$"
"""A rollout's id, as the registry makes it: one path segment, checked before anything is forwarded."""
DURATION = r"^[0-9]{1,6}(\.[0-9]{1,3})?(s|m|h)$"
"""A step's length or timeout: 30s, 10m, 2h."""
_UNIT_S = {"s": 1, "m": 60, "h": 3600}
MAX_STEPS = 20
DEFAULT_FOR = "10m"
DEFAULT_TIMEOUT = "1h"  # a shadow or canary step that cannot conclude by then rolls back
DEFAULT_APPROVAL_TIMEOUT = "24h"  # an approval nobody gives by then rejects


def seconds(duration: str) -> float:
    """A DURATION in seconds."""
    match = re.match(DURATION, duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a duration such as 30s, 10m or 2h")
    return float(duration[:-1]) * _UNIT_S[duration[-1]]


class RolloutGates(BaseModel):
    """What a shadow or canary step holds the candidate to, against the champion, over the
    step's own evidence (from its start). A gate judges once it has its minimum evidence; one
    that fails rolls the rollout back, saying which gate and its numbers."""

    model_config = ConfigDict(extra="forbid")

    min_samples: StrictInt = Field(20, ge=1, le=1_000_000, description="predictions a gate needs before it judges")
    min_agreement: StrictFloat = Field(
        0.9,
        ge=0,
        le=1,
        description="shadow steps, classifiers: share of the candidate's answers equal to the champion's",
    )
    max_mean_abs_difference: StrictFloat | None = Field(
        None, ge=0, description="shadow steps, regressors: largest mean |candidate - champion|; None: not gated"
    )
    max_error_rate_increase: StrictFloat = Field(
        0.01, ge=0, le=1, description="the candidate's share of failed requests may exceed the champion's by this"
    )
    max_p99_ratio: StrictFloat = Field(
        2.0, ge=1, le=100, description="the candidate's p99 latency at most this times the champion's (plus the slack)"
    )
    p99_slack_ms: StrictFloat = Field(
        10, ge=0, le=60_000, description="added to the p99 bound: tiny latencies are noisy"
    )
    max_accuracy_drop: StrictFloat = Field(
        0.05, ge=0, le=1, description="live accuracy from feedback at most this below the champion's"
    )
    min_feedback: StrictInt = Field(
        30, ge=1, le=1_000_000, description="feedback pairs each version needs for that gate"
    )


class RolloutStep(BaseModel):
    """One step of a plan: exactly one of shadow, canary, approval, promote."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    shadow: StrictFloat | None = Field(None, gt=0, le=100, description="percent of the champion's requests copied")
    canary: StrictFloat | None = Field(None, gt=0, lt=100, description="percent of the champion's requests served")
    approval: StrictBool | None = Field(None, description="wait for a person (approve or reject), until the timeout")
    promote: StrictBool | None = Field(None, description="make the candidate champion (the last step)")
    for_: str | StrictInt | None = Field(
        None,
        alias="for",
        description="how long a shadow or canary step lasts: a duration (30s, 10m, 2h) or a number of predictions; "
        f"default {DEFAULT_FOR}",
    )
    timeout: str | None = Field(
        None,
        pattern=DURATION,
        description=f"the longest the step may take before the rollout rolls back (default {DEFAULT_TIMEOUT}, "
        f"approval {DEFAULT_APPROVAL_TIMEOUT})",
    )
    gates: RolloutGates | None = Field(None, description="this step's gates (default: the plan's)")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [k for k in ("shadow", "canary", "approval", "promote") if getattr(self, k) not in (None, False)]
        if len(kinds) != 1:
            raise ValueError(
                f"a step is one of shadow, canary, approval (true) or promote (true); this one has {kinds}"
            )
        if kinds[0] in ("approval", "promote") and (self.for_ is not None or self.gates is not None):
            raise ValueError(f"an {kinds[0]} step has no `for` and no gates")
        if kinds[0] == "promote" and self.timeout is not None:
            raise ValueError("a promote step has no timeout")
        if isinstance(self.for_, str):
            seconds(self.for_)
        elif isinstance(self.for_, int) and not 1 <= self.for_ <= 10_000_000:
            raise ValueError("`for` as a number of predictions is 1 to 10000000")
        return self

    @property
    def kind(self) -> Literal["shadow", "canary", "approval", "promote"]:
        for kind in ("shadow", "canary", "approval", "promote"):
            if getattr(self, kind) not in (None, False):
                return kind
        raise AssertionError("validated: one kind")


class StartRollout(BaseModel):
    """POST /api/models/{name}/rollouts: bring `candidate` to champion by the plan."""

    model_config = ConfigDict(extra="forbid")

    candidate: StrictInt = Field(ge=1, description="the version rolled out; not the champion")
    plan: list[RolloutStep] = Field(min_length=1, max_length=MAX_STEPS)
    gates: RolloutGates = Field(default_factory=RolloutGates, description="every step's gates but its own")
    reason: str = Field("", max_length=500, description="why, for the model's history")

    @model_validator(mode="after")
    def _promote_last(self) -> Self:
        kinds = [s.kind for s in self.plan]
        if "promote" in kinds[:-1]:
            raise ValueError("promote can only be the plan's last step")
        return self


RolloutStatus = Literal["running", "waiting_for_approval", "promoted", "completed", "rolled_back", "failed"]
"""running: in a shadow or canary step; waiting_for_approval: for a person; promoted: the
candidate is champion; completed: the plan ended without a promote step (the table cleared);
rolled_back: a gate failed, a timeout passed, a person rejected or aborted it (`outcome` says
which); failed: the rollout itself could not go on (see `outcome`)."""
FINISHED: frozenset[str] = frozenset({"promoted", "completed", "rolled_back", "failed"})


class GateResult(BaseModel):
    """One gate's reading over the current step."""

    gate: Literal["agreement", "mean_abs_difference", "error_rate", "latency_p99", "accuracy"]
    candidate: float | None = Field(description="the candidate's value; None: no evidence yet")
    champion: float | None = Field(None, description="the champion's, when the gate compares the two")
    bound: float | None = Field(None, description="the value the candidate must stay within")
    samples: int = Field(0, description="the evidence behind the candidate's value (predictions, pairs)")
    passed: bool | None = Field(description="None: not enough evidence to judge yet")


class Rollout(BaseModel):
    """A rollout as it stands: the step it is in, the table it set, its gates' readings."""

    id: str
    model: str
    candidate: int
    champion: int | None = Field(description="the champion when it started")
    plan: list[RolloutStep]
    gates: RolloutGates
    status: RolloutStatus
    step: int | None = Field(None, description="the index of the current (or last) step in the plan")
    step_started_at: datetime | None = None
    step_predictions: int = Field(0, description="the candidate's predictions in this step (served or shadowed)")
    deadline: datetime | None = Field(None, description="when the current step times out")
    traffic: Traffic = Field(default_factory=Traffic, description="the table the rollout set last")
    gate_results: list[GateResult] = Field(default_factory=list)
    outcome: str | None = Field(None, description="how it ended, in words: which gate and its numbers, who rejected")
    reason: str = ""
    started_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class RolloutList(BaseModel):
    model: str
    rollouts: list[Rollout] = Field(description="newest first")
