"""Training's metrics over in-memory fakes: jobs counted once when they end (COMPLETED, FAILED,
CANCELED), submissions and refusals, each step timed, fit seconds by estimator; and the fit
workers' queue as the pool sees it (real worker processes, small tasks)."""

import asyncio

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.common.ports import Reply
from services.training.app import create_app
from services.training.metrics import TrainingMetrics
from services.training.pool import Pool
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from services.training.workflow import WORKFLOW
from tests.api.test_training_api import stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports
from tests.unit.training import tasks

STEPS = ("load", "fit", "evaluate", "register", "promote")


@pytest.fixture
def make_training():
    clients: list[TestClient] = []

    def make(drive: bool = True, **settings) -> TestClient:
        ports = fake_ports(
            TrainingPorts, invoker=FakeInvoker(stack_replies([])), workflows=FakeWorkflows(run_on_schedule=drive)
        )
        client = TestClient(create_app(Settings(**{"fit_workers": 0} | settings), ports))
        client.__enter__()
        client.ports = ports
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def value(client, name: str, **labels: str) -> float:
    found = client.app.state.metrics.get_sample_value(name, labels)
    return 0.0 if found is None else found


def submit(client, **body):
    reply = client.post("/api/training/jobs", json={"dataset": "iris"} | body)
    assert reply.status_code == 202, reply.text
    return reply.json()


def test_a_completed_job_counts_once_with_each_step_timed_and_its_fit_seconds(make_training):
    training = make_training()
    job = submit(training, estimator="random_forest")
    assert job["status"] == "COMPLETED"
    assert submit(training, estimator="random_forest")["id"] == job["id"]  # the same job: nothing new
    assert value(training, "daprml_training_jobs_total", status="COMPLETED") == 1
    assert value(training, "daprml_training_jobs_total", status="FAILED") == 0
    assert value(training, "daprml_training_jobs_submitted_total") == 1
    for step in STEPS:
        assert value(training, "daprml_training_step_duration_seconds_count", step=step) == 1, step
    assert value(training, "daprml_training_fit_duration_seconds_count", estimator="random_forest") == 1
    assert value(training, "daprml_training_fit_duration_seconds_sum", estimator="random_forest") > 0
    assert value(training, "daprml_training_jobs_queued") == value(training, "daprml_training_jobs_running") == 0


def test_a_failed_job_counts_as_failed_and_its_failing_step_is_timed_too(make_training):
    training = make_training()
    replies = training.ports.invoker.replies

    async def refused(body: bytes) -> Reply:
        return Reply(503, b'{"detail": "the registry is busy"}')

    replies[("registry", "internal/models/iris/versions")] = refused
    assert submit(training)["status"] == "FAILED"
    assert value(training, "daprml_training_jobs_total", status="FAILED") == 1
    assert value(training, "daprml_training_jobs_total", status="COMPLETED") == 0
    assert value(training, "daprml_training_step_duration_seconds_count", step="register") == 1
    assert value(training, "daprml_training_step_duration_seconds_count", step="promote") == 0


def test_a_canceled_job_counts_once_however_often_it_is_canceled(make_training):
    training = make_training(drive=False)
    job = submit(training)
    for _ in range(2):
        assert training.delete(f"/api/training/jobs/{job['id']}").json()["status"] == "CANCELED"
    training.portal.call(training.ports.workflows.drive, WORKFLOW, job["id"])  # runs nothing
    assert value(training, "daprml_training_jobs_total", status="CANCELED") == 1
    assert value(training, "daprml_training_jobs_total", status="COMPLETED") == 0


def test_each_submission_refused_for_want_of_places_is_counted(make_training):
    training = make_training(drive=False, max_pending_jobs=1)
    submit(training)
    for estimator in ("random_forest", "logistic_regression", "random_forest"):
        assert training.post("/api/training/jobs", json={"dataset": "iris", "estimator": estimator}).status_code == 429
    assert value(training, "daprml_training_jobs_refused_total") == 3
    assert value(training, "daprml_training_jobs_submitted_total") == 1


def test_the_gauges_read_the_pools_queue_and_running_steps():
    async def main() -> tuple[list[float], list[float]]:
        registry = CollectorRegistry()
        metrics, pool = TrainingMetrics(registry), Pool(1)
        metrics.watch(pool.queued, pool.running)

        def now() -> list[float]:
            names = ("daprml_training_jobs_queued", "daprml_training_jobs_running")
            return [registry.get_sample_value(name) or 0.0 for name in names]

        try:
            idle = now()
            has_it = asyncio.Event()

            async def started() -> None:
                has_it.set()

            first = asyncio.ensure_future(pool.run("a", tasks.sleep_forever, started=started))
            await has_it.wait()
            waiting = [asyncio.ensure_future(pool.run(k, tasks.pid)) for k in ("b", "c")]
            await asyncio.sleep(0.05)
            busy = now()
            pool.cancel("a")
            await asyncio.gather(*waiting, return_exceptions=True)
            await asyncio.gather(first, return_exceptions=True)
            return [*idle, *busy], now()
        finally:
            await pool.close()

    during, after = asyncio.run(main())
    assert during == [0, 0, 2, 1]  # idle; then one step in a worker, two waiting for it
    assert after == [0, 0]
