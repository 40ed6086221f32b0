"""A rollout is one durable workflow: each step of its plan in turn, then promote or roll back.

The workflow function only orders the steps and judges the evidence (domain/rollout.py); it is
replayed from its history after a restart, so it does no I/O itself and reads the workflow's
clock (ctx.now). Every effect is an activity (rollout_activities.py), run at least once and
each idempotent: the model record keeps which effects a rollout made.

A shadow or canary step sets the traffic table, reads the monitor's evidence at its start (the
counters only grow: later readings are compared with it), then every `poll_s` reads it again and
judges the gates, until the step is over, a gate fails, or its timeout passes. An approval step
waits for a person's decision. A decision (approve, reject, abort) is an external event the
workflow takes whenever it waits; reject and abort roll back from any step. The workflow writes
the decision it takes into the model's history (who, why), so the history holds exactly the
decisions that moved a rollout.
"""

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

from services.common.contracts.rollouts import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_TIMEOUT,
    RolloutGates,
    RolloutStep,
    seconds,
)
from services.common.ports import WorkflowContext
from services.registry.domain import rollout as judging

WORKFLOW = "roll_out"
DECISION = "decision"
DECIDED = "decided"
"""The activity that writes a decision into the history, and the change that brought it: a
rollout started before it replays without it (the API wrote its decisions then)."""
MAX_POLLS = 100
"""Polls of a step in one run of the workflow: then it continues as new where it was, so that
its history (a timer and an activity a poll), replayed at every event, stays bounded. It also
starts each step on a fresh history."""


class Continued:
    """A step handed over to the next run of the workflow (continue-as-new)."""


CONTINUED = Continued()


def roll_out(ctx: WorkflowContext, start: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """start: {model, id, candidate, champion, plan, gates, poll_s}, and `resume` ({step, began,
    baseline}) when a run continues where the one before it stopped."""
    records = ctx.patched(DECIDED)  # first: the same answer at every replay of this run
    plan = [RolloutStep.model_validate(s) for s in start["plan"]]
    gates = RolloutGates.model_validate(start["gates"])
    resume = start.get("resume") or {}
    first = int(resume.get("step", 0))
    try:
        for index, step in enumerate(plan):
            if index < first:
                continue
            results: list[dict[str, Any]] = []
            if step.kind in ("shadow", "canary"):
                here = resume if index == first else {}
                ended, results = yield from _observe(ctx, start, index, step, step.gates or gates, here, records)
                if isinstance(ended, Continued):
                    return {"status": "continued", "step": index}
            elif step.kind == "approval":
                ended = yield from _approval(ctx, start, index, step, records)
            else:
                yield ctx.activity("promote", _at(start, index))
                return (yield from _finish(ctx, start, "promoted", f"version {start['candidate']} is champion"))
            if ended is not None:
                return (yield from _finish(ctx, start, "rolled_back", ended, results))
            if plan[index + 1 :] and plan[index + 1].kind != "promote":  # the next step on a fresh history
                ctx.continue_as_new({**start, "resume": {"step": index + 1}})
                return {"status": "continued", "step": index + 1}
    except Exception as exc:  # an activity that kept failing, or refused (the champion moved)
        return (yield from _finish(ctx, start, "failed", f"the rollout could not go on: {exc}"))
    return (yield from _finish(ctx, start, "completed", "the plan ended without a promote step"))


def _observe(
    ctx: WorkflowContext,
    start: dict[str, Any],
    index: int,
    step: RolloutStep,
    gates: RolloutGates,
    resume: dict[str, Any],
    records: bool,
) -> Generator[Any, Any, tuple[str | None | Continued, list[dict[str, Any]]]]:
    """A shadow or canary step: None when it passed, else why the rollout rolls back (or
    CONTINUED: the next run of the workflow goes on with it); with the gates' last readings."""
    began = datetime.fromisoformat(resume["began"]) if "began" in resume else ctx.now()
    deadline = began + timedelta(seconds=seconds(step.timeout or DEFAULT_TIMEOUT))
    if "began" not in resume:
        at = {**_at(start, index), "started_at": began.isoformat(), "deadline": deadline.isoformat()}
        yield ctx.activity("begin_step", at)
    baseline: dict[str, Any] | None = resume.get("baseline")
    readings: list[dict[str, Any]] = []
    for _ in range(MAX_POLLS):
        decision = yield from _decision(ctx, float(start["poll_s"]))
        if decision is not None and decision["action"] in ("reject", "abort"):
            if records:
                yield ctx.activity(DECIDED, {**_at(start, index), "decision": decision})
            return _decided(decision), readings
        read = yield from _evidence(ctx, start, index, baseline)
        if read is None or baseline is None:  # the monitor away (the deadline still holds), or the first reading
            baseline = baseline or read
            if ctx.now() >= deadline:
                return f"step {index + 1} ({step.kind}) timed out: no evidence from the monitor", readings
            continue
        evidence = judging.StepEvidence.model_validate(read["evidence"])
        results = judging.judge(step.kind, gates, evidence)
        readings = [r.model_dump(mode="json") for r in results]
        made = judging.predictions(step.kind, evidence)
        ctx.status(
            {
                "step": index,
                "step_predictions": made,
                "gate_results": readings,
                "read_at": ctx.now().isoformat(),
            }
        )
        if judging.failed(results):
            return f"step {index + 1} ({step.kind}): {judging.why_failed(results)}", readings
        if judging.over(step, results, made, (ctx.now() - began).total_seconds()):
            yield ctx.activity("passed", {**_at(start, index), "gate_results": readings, "made": made})
            return None, readings
        if ctx.now() >= deadline:
            return f"step {index + 1} ({step.kind}) timed out: {judging.why_unfinished(results, made)}", readings
    ctx.continue_as_new({**start, "resume": {"step": index, "began": began.isoformat(), "baseline": baseline}})
    return CONTINUED, readings


def _approval(
    ctx: WorkflowContext, start: dict[str, Any], index: int, step: RolloutStep, records: bool
) -> Generator[Any, Any, str | None]:
    began = ctx.now()
    timeout_s = seconds(step.timeout or DEFAULT_APPROVAL_TIMEOUT)
    deadline = began + timedelta(seconds=timeout_s)
    yield ctx.activity(
        "begin_step", {**_at(start, index), "started_at": began.isoformat(), "deadline": deadline.isoformat()}
    )
    ctx.status({"step": index, "waiting_since": began.isoformat()})
    decision = yield from _decision(ctx, timeout_s)
    if decision is None:
        return f"step {index + 1} (approval): nobody approved within {step.timeout or DEFAULT_APPROVAL_TIMEOUT}"
    if records:
        yield ctx.activity(DECIDED, {**_at(start, index), "decision": decision})
    if decision["action"] != "approve":
        return _decided(decision)
    return None


def _evidence(
    ctx: WorkflowContext, start: dict[str, Any], index: int, baseline: dict[str, Any] | None
) -> Generator[Any, Any, dict[str, Any] | None]:
    """The monitor's reading (with the step's evidence once there is a baseline); None when the
    monitor could not be read, even after the activity's retries: the next poll tries again."""
    try:
        read = yield ctx.activity("evidence", {**_at(start, index), "baseline": baseline["raw"] if baseline else None})
    except Exception as exc:
        ctx.status({"step": index, "evidence_error": str(exc)[:500], "read_at": ctx.now().isoformat()})
        return None
    return read if isinstance(read, dict) else None


def _decision(ctx: WorkflowContext, timeout_s: float) -> Generator[Any, Any, dict[str, Any] | None]:
    """The next decision raised for the rollout, or None when none came within the timeout."""
    try:
        decision = yield ctx.event(DECISION, timeout_s)
    except TimeoutError:
        return None
    return decision if isinstance(decision, dict) else None


_DONE = {"approve": "approved", "reject": "rejected", "abort": "aborted"}


def _decided(decision: dict[str, Any]) -> str:
    why = f": {decision['reason']}" if decision.get("reason") else ""
    return f"{_DONE.get(decision['action'], decision['action'])} by {decision.get('by', 'someone')}{why}"


def _finish(
    ctx: WorkflowContext, start: dict[str, Any], status: str, outcome: str, results: list[dict[str, Any]] | None = None
) -> Generator[Any, Any, dict[str, Any]]:
    at = {**_at(start, None), "status": status, "outcome": outcome, "gate_results": results or []}
    yield ctx.activity("finish", at)
    return {"status": status, "outcome": outcome}


def _at(start: dict[str, Any], index: int | None) -> dict[str, Any]:
    return {"model": start["model"], "id": start["id"], "step": index}
