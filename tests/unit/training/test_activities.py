"""The fit step with a real worker process: it stops when its workflow was terminated by
someone else than this process (another replica, by hand), and a dead worker's fit is queued
again for the engine's retry."""

import asyncio
import json
import os
import signal

import pytest

from scripts.proc import alive
from services.common.ports import Reply
from services.training.activities import Activities
from services.training.clients import Clients
from services.training.compute import Compute
from services.training.domain.estimators import validate
from services.training.domain.jobs import JobSpec
from services.training.pool import Canceled, WorkerDied
from services.training.ports import TrainingPorts
from services.training.service import fit_key
from services.training.settings import Settings
from services.training.workflow import WORKFLOW
from tests.api.test_training_api import SCHEMA, stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports

JOB = "iris-v1-random-forest-000000000000"


def spec() -> JobSpec:
    # 2000 trees: seconds of fitting, far longer than a test waits before it stops them.
    params = validate("classification", "random_forest", {"n_estimators": 2000})
    return JobSpec.model_validate(
        {"job_id": JOB, "dataset": "iris", "version": 1, "schema": SCHEMA, "schema_hash": "h1"}
        | {"task": "classification", "estimator": "random_forest", "params": params, "model": "iris", "seed": 1}
    )


async def fitting(stop) -> None:
    """Runs the fit step; once its worker has it, calls stop(ports, worker pid); returns what
    the step raised, the pid and the ports."""
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker(stack_replies([])), workflows=FakeWorkflows(False))
    compute = Compute(1)
    activities = Activities(
        ports.blobs,
        Clients.over(ports.invoker, Settings()),
        compute,
        Settings(cancel_check_s=0.05),
        ports.workflows,
        ports.state,
    )
    await ports.workflows.schedule(WORKFLOW, JOB, spec().model_dump(mode="json"))
    ports.workflows.runs[JOB].status = "RUNNING"
    step = asyncio.ensure_future(activities.fit(spec().model_dump(mode="json")))
    try:
        while fit_key(JOB) not in ports.state.items and not step.done():
            await asyncio.sleep(0.01)
        (pid,) = compute.pids()
        stop(ports, pid)
        with pytest.raises(Exception) as raised:
            await step
        return raised.value, pid, ports
    finally:
        step.cancel()
        await compute.close()


def test_a_fit_whose_workflow_was_terminated_elsewhere_is_killed():
    def terminate(ports, pid):
        ports.workflows.runs[JOB].status = "TERMINATED"

    error, pid, _ = asyncio.run(fitting(terminate))
    assert isinstance(error, Canceled) and f"worker process {pid} was killed" in str(error)
    assert not alive(pid)


def test_a_fit_whose_worker_died_is_queued_again_for_the_retry():
    error, pid, ports = asyncio.run(fitting(lambda ports, pid: os.kill(pid, signal.SIGKILL)))
    assert isinstance(error, WorkerDied) and "SIGKILL" in str(error)
    assert fit_key(JOB) not in ports.state.items  # the job shows `queued` until a worker has it again


class ScoringCompute(Compute):
    """Records what the champion is scored with instead of scoring it."""

    def __init__(self):
        super().__init__(0)
        self.scored: list[tuple] = []

    async def score(self, spec, artifact, sha256, rows, missing_category):
        self.scored.append((artifact, sha256, missing_category))
        return {"task": "classification", "rows": 30, "accuracy": 0.5}


@pytest.mark.parametrize("missing_category", [None, "__missing__"])
def test_a_champion_is_scored_as_its_card_says_it_reads_its_rows(missing_category):
    card = {"task": "classification", "target": "species", "features": [{"name": "a", "type": "number"}]}
    if missing_category:
        card["missing_category"] = missing_category
    version = {"model": "iris", "version": 4, "artifact": {"key": "models/iris/old.skops", "sha256": "b" * 64}}
    replies = stack_replies([]) | {
        ("registry", "api/models/iris"): Reply(200, json.dumps({"aliases": {"champion": 4}}).encode()),
        ("registry", "api/models/iris/versions/4"): Reply(200, json.dumps(version | {"card": card}).encode()),
    }
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker(replies), workflows=FakeWorkflows(False))
    ports.blobs.blobs["models/iris/old.skops"] = b"the champion's file"
    compute = ScoringCompute()
    activities = Activities(
        ports.blobs, Clients.over(ports.invoker, Settings()), compute, Settings(), ports.workflows, ports.state
    )
    job = spec().model_dump(mode="json")
    champion = asyncio.run(activities.load(job))
    assert champion["missing_category"] == missing_category
    metrics = asyncio.run(activities._champion_metrics(spec(), champion))
    assert metrics == {"accuracy": 0.5}
    assert compute.scored == [(b"the champion's file", "b" * 64, missing_category)]
    # A champion loaded by a job that started before models were compiled: read as before.
    asyncio.run(activities._champion_metrics(spec(), {k: v for k, v in champion.items() if k != "missing_category"}))
    assert compute.scored[-1][2] is None
