"""A job's life beyond the happy path, over in-memory fakes of our ports: cancel, a new attempt
after a failed or canceled one, bounded parameters, bounded queues, the wall-clock limit, the
`queued` stage. Jobs are driven by hand here (FakeWorkflows(run_on_schedule=False)) where a
test needs one that has not finished."""

import asyncio
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common.ports import Reply
from services.common.state import Documents
from services.training.app import create_app
from services.training.domain.jobs import FitStarted
from services.training.ports import TrainingPorts
from services.training.service import fit_key
from services.training.settings import Settings
from services.training.workflow import WORKFLOW
from tests.api.test_training_api import announce, stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports


@pytest.fixture
def make_training():
    clients: list[TestClient] = []

    def make(drive: bool = True, **settings) -> TestClient:
        registered: list[dict] = []
        ports = fake_ports(
            TrainingPorts,
            invoker=FakeInvoker(stack_replies(registered)),
            workflows=FakeWorkflows(run_on_schedule=drive),
        )
        client = TestClient(create_app(Settings(**{"fit_workers": 0} | settings), ports))
        client.__enter__()
        client.ports, client.registered = ports, registered
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def submit(client, **body):
    reply = client.post("/api/training/jobs", json={"dataset": "iris"} | body)
    assert reply.status_code == 202, reply.text
    return reply.json()


def drive(client, job_id: str) -> None:
    client.portal.call(client.ports.workflows.drive, WORKFLOW, job_id)


# cancel


def test_a_canceled_job_shows_canceled_with_the_stage_it_was_at_and_runs_no_step(make_training):
    training = make_training(drive=False)
    job = submit(training)
    assert job["status"] == "PENDING"
    reply = training.delete(f"/api/training/jobs/{job['id']}")
    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["error"]) == ("CANCELED", "canceled at stage pending")
    assert training.get(f"/api/training/jobs/{job['id']}").json()["status"] == "CANCELED"
    drive(training, job["id"])  # the engine would run nothing of a terminated workflow
    assert training.ports.workflows.activity_calls == []
    again = training.delete(f"/api/training/jobs/{job['id']}")
    assert (again.status_code, again.json()["status"]) == (200, "CANCELED")


def test_canceled_is_a_status_the_job_list_filters_by(make_training):
    training = make_training(drive=False)
    canceled = submit(training)["id"]
    other = submit(training, estimator="random_forest")["id"]
    training.delete(f"/api/training/jobs/{canceled}")
    for spelled in ("canceled", "CANCELED"):
        listed = training.get(f"/api/training/jobs?status={spelled}").json()
        assert [j["id"] for j in listed["jobs"]] == [canceled]
    assert [j["id"] for j in training.get("/api/training/jobs?status=pending").json()["jobs"]] == [other]
    refused = training.get("/api/training/jobs?status=terminated")
    assert refused.status_code == 422 and "canceled" in refused.text


def test_a_finished_job_cannot_be_canceled_and_an_unknown_one_is_404(make_training):
    training = make_training()
    job = submit(training)
    assert job["status"] == "COMPLETED"
    reply = training.delete(f"/api/training/jobs/{job['id']}")
    assert reply.status_code == 409 and "completed already" in reply.json()["detail"]
    assert training.delete("/api/training/jobs/iris-v9-ridge-000000000000").status_code == 404


def test_a_step_of_a_job_whose_workflow_was_terminated_elsewhere_does_not_start(make_training):
    training = make_training(drive=False)
    job = submit(training)
    training.ports.workflows.runs[job["id"]].status = "TERMINATED"  # by hand, or another replica
    workflow, activities = training.ports.workflows.definitions[WORKFLOW]
    spec = training.ports.workflows.runs[job["id"]].input
    with pytest.raises(Exception, match=f"job {job['id']} was canceled"):
        training.portal.call(activities["fit"], spec)
    assert ("ingestion", "api/datasets/iris/versions/1/data?format=parquet", "GET") not in training.ports.invoker.calls


# attempts


def test_a_canceled_request_submitted_again_is_a_new_attempt_and_a_pending_one_is_itself(make_training):
    training = make_training(drive=False)
    first = submit(training)
    training.delete(f"/api/training/jobs/{first['id']}")
    second = submit(training)
    assert (second["id"], second["attempt"], second["status"]) == (f"{first['id']}-a2", 2, "PENDING")
    assert submit(training)["id"] == second["id"]  # pending: the same job
    assert training.get(f"/api/training/jobs/{first['id']}").json()["status"] == "CANCELED"
    assert training.get("/api/training/jobs").json()["total"] == 2


def test_a_failed_request_submitted_again_is_a_new_attempt_but_its_event_again_is_not(make_training):
    training = make_training()
    replies = training.ports.invoker.replies
    register = replies[("registry", "internal/models/iris/versions")]

    async def refused_once(body: bytes) -> Reply:
        replies[("registry", "internal/models/iris/versions")] = register
        return Reply(503, b'{"detail": "the registry is busy"}')

    replies[("registry", "internal/models/iris/versions")] = refused_once
    first = submit(training)
    assert first["status"] == "FAILED" and "busy" in first["error"]
    assert announce(training) == {"status": "SUCCESS"}  # a redelivery finds the failed job
    assert training.get("/api/training/jobs").json()["total"] == 1
    second = submit(training)
    assert (second["id"], second["status"]) == (f"{first['id']}-a2", "COMPLETED")
    assert submit(training)["id"] == second["id"]  # completed: the same job
    assert training.registered[-1]["lineage"]["job_id"] == second["id"]


# bounded parameters


@pytest.mark.parametrize(
    ("estimator", "params", "words"),
    [
        (
            "random_forest",
            {"n_estimators": 100_000},
            "n_estimators should be at most 2000 (the bound DAPRML_MAX_TREES)",
        ),
        ("random_forest", {"n_estimators": 10**40}, "n_estimators should be at most 2000"),
        ("random_forest", {"max_depth": 10**9}, "max_depth should be at most 64 (the bound DAPRML_MAX_DEPTH)"),
        (
            "gradient_boosting",
            {"max_iter": 10**9},
            "max_iter should be at most 100000 (the bound DAPRML_MAX_ITERATIONS)",
        ),
        ("logistic_regression", {"max_iter": 100_001}, "max_iter should be at most 100000"),
        ("linear_svm", {"max_iter": 100_001}, "max_iter should be at most 100000"),
    ],
)
def test_a_parameter_over_its_bound_is_422_naming_the_bound_before_anything_starts(
    make_training, estimator, params, words
):
    training = make_training()
    reply = training.post("/api/training/jobs", json={"dataset": "iris", "estimator": estimator, "params": params})
    assert reply.status_code == 422 and words in reply.json()["detail"], reply.text
    assert training.ports.workflows.runs == {}


def test_the_bounds_are_settings_and_the_estimator_list_shows_them(make_training):
    training = make_training(max_trees=10, max_depth=5)
    refused = training.post(
        "/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest", "params": {"n_estimators": 11}}
    )
    assert refused.status_code == 422 and "at most 10" in refused.json()["detail"]
    forest = {e["name"]: e for e in training.get("/api/training/estimators").json()["classification"]}["random_forest"]
    assert {p["name"]: p["maximum"] for p in forest["params"]} == {
        "n_estimators": 10,
        "max_depth": 5,
        "min_samples_leaf": None,
        "class_weight": None,
    }
    policy = training.put(
        "/api/training/policies/iris", json={"estimator": "random_forest", "params": {"max_depth": 6}}
    )
    assert policy.status_code == 422 and "max_depth should be at most 5" in policy.json()["detail"]


def test_a_forest_without_a_depth_is_fitted_to_the_depth_bound(make_training):
    training = make_training(max_depth=3)
    job = submit(training, estimator="random_forest", params={"n_estimators": 5})
    assert job["status"] == "COMPLETED" and job["params"]["max_depth"] is None
    from services.training.domain.artifact import load

    (body,) = training.registered
    model = load(training.ports.blobs.blobs[body["artifact"]["key"]], body["artifact"]["sha256"])
    assert model[-1].max_depth == 3 and max(t.get_depth() for t in model[-1].estimators_) <= 3


# bounded queues


def test_over_the_jobs_a_dataset_may_have_waiting_a_submission_is_429_with_retry_after(make_training):
    training = make_training(drive=False, max_pending_jobs_per_dataset=1)
    first = submit(training)
    reply = training.post("/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest"})
    assert reply.status_code == 429 and reply.headers["retry-after"] == "30"
    assert "DAPRML_MAX_PENDING_JOBS_PER_DATASET" in reply.json()["detail"]
    assert submit(training)["id"] == first["id"]  # the waiting job itself is no new one
    training.delete(f"/api/training/jobs/{first['id']}")
    assert submit(training, estimator="random_forest")["status"] == "PENDING"


def test_over_the_jobs_that_may_wait_in_all_a_submission_is_429(make_training):
    training = make_training(drive=False, max_pending_jobs=1, busy_retry_after_s=7)
    submit(training)
    reply = training.post("/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest"})
    assert reply.status_code == 429 and reply.headers["retry-after"] == "7"
    assert "DAPRML_MAX_PENDING_JOBS)" in reply.json()["detail"]
    assert announce(training, version=1) == {"status": "SUCCESS"}  # the same job: nothing new waits
    assert training.ports.workflows.runs.keys() == {training.get("/api/training/jobs").json()["jobs"][0]["id"]}


def test_a_job_that_ended_gives_its_place_back(make_training):
    training = make_training(max_pending_jobs=1)
    for estimator in ("gradient_boosting", "random_forest", "logistic_regression"):
        # 202 each time: the one before has ended (after registration, as the fake registry
        # promotes only version 1: what matters is that it ended).
        assert submit(training, estimator=estimator)["status"] in ("COMPLETED", "FAILED")


def test_a_committed_version_over_the_limit_is_retried_later(make_training):
    training = make_training(drive=False, max_pending_jobs=1)
    submit(training, estimator="random_forest")
    assert announce(training) == {"status": "RETRY"}
    assert len(training.ports.workflows.runs) == 1


# the wall-clock limit and the queued stage


def test_a_job_past_its_wall_clock_limit_fails_saying_so(make_training):
    training = make_training(job_timeout_s=1e-6)
    job = submit(training)
    assert job["status"] == "FAILED" and job["stage"] == "fitting"
    assert "wall-clock limit" in job["error"] and "DAPRML_JOB_TIMEOUT_S" in job["error"]


def test_a_job_waiting_for_a_worker_shows_stage_queued_until_a_worker_has_it(make_training):
    training = make_training(drive=False)
    job = submit(training)
    run = training.ports.workflows.runs[job["id"]]
    run.status, run.custom_status = "RUNNING", {"stage": "fitting", "progress": 0.2}
    assert training.get(f"/api/training/jobs/{job['id']}").json()["stage"] == "queued"
    fits = Documents(training.ports.state, FitStarted)
    asyncio.run(fits.put(fit_key(job["id"]), FitStarted.model_validate({"at": "2026-01-01T00:00:00Z"})))
    assert training.get(f"/api/training/jobs/{job['id']}").json()["stage"] == "fitting"


def workers() -> list[int]:
    """This process's fit workers, as /proc tells."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"services.training.worker" in command:
            found.append(int(entry.name))
    return found


def test_a_job_fits_in_a_worker_process_which_the_app_stops_with_itself():
    registered: list[dict] = []
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker(stack_replies(registered)), workflows=FakeWorkflows())
    with TestClient(create_app(Settings(fit_workers=1), ports)) as training:
        job = submit(training)
        assert job["status"] == "COMPLETED", job
        assert job["result"]["metrics"]["accuracy"] > 0.8
        assert ports.state.items[fit_key(job["id"])]  # a worker had it
        assert len(workers()) == 1
    assert workers() == []


def test_healthz_fails_saying_why_while_no_fit_worker_can_start():
    # 1 MiB of address space: the worker cannot even load its libraries, and says so by dying.
    with TestClient(create_app(Settings(fit_workers=1, fit_memory_mb=1), fake_ports(TrainingPorts))) as training:
        for _ in range(600):  # the first start is tried at start-up, in the background
            reply = training.get("/healthz")
            if reply.status_code != 200:
                break
            time.sleep(0.05)
        assert reply.status_code == 503, reply.text
        (problem,) = reply.json()["problems"]
        assert problem.startswith("fit worker processes cannot start") and "fit_memory_mb, 1 MiB, too low" in problem
