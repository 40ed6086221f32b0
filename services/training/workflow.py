"""A training job is one durable workflow: load, fit, evaluate, register, promote.

The workflow function only orders the steps and reports progress; it is replayed from its
history after a restart, so it does no I/O itself. Each step is an activity, run at least once:
each is safe to run again (artifacts are written under the job's own keys, registration and
promotion are idempotent by job id).
"""

from collections.abc import Generator
from typing import Any

from services.common.ports import WorkflowContext

WORKFLOW = "train_model"
# stage -> the share of the job done when it starts
STAGES = {"loading": 0.05, "fitting": 0.2, "evaluating": 0.6, "registering": 0.8, "promoting": 0.9, "done": 1.0}


def progress(stage: str) -> dict[str, Any]:
    return {"stage": stage, "progress": STAGES[stage]}


def train_model(ctx: WorkflowContext, job: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    ctx.status(progress("loading"))
    champion = yield ctx.activity("load", job)
    ctx.status(progress("fitting"))
    fitted = yield ctx.activity("fit", job)
    ctx.status(progress("evaluating"))
    evaluated = yield ctx.activity("evaluate", {"job": job, "fitted": fitted, "champion": champion})
    ctx.status(progress("registering"))
    registered = yield ctx.activity("register", {"job": job, "fitted": fitted, "evaluated": evaluated})
    ctx.status(progress("promoting"))
    promoted = yield ctx.activity(
        "promote", {"job": job, "registered": registered, "evaluated": evaluated, "champion": champion}
    )
    ctx.status(progress("done"))
    return {
        "model": job["model"],
        "version": registered["version"],
        "metrics": evaluated["metrics"],
        "promotion": promoted,
    }
