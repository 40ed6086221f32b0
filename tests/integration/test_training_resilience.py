"""Training that cannot be wedged, against the real stack (daprd, the workflow engine, the
training app under its supervisor): a fit worker killed mid-fit, the training app killed
mid-fit, a job canceled mid-fit, a parameter over its bound.

The fits here are random forests on 5000 generated rows: seconds of work in the one fit worker
the stack's training app has, long enough to be caught in the middle."""

import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from scripts.proc import alive, listener_pid
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}
DONE = ("COMPLETED", "FAILED", "CANCELED")
STOPPED_WITHIN_S = 5  # what the issue asks: a canceled or orphaned fit is gone within 5 s
SHORT = {"n_estimators": 600, "max_depth": 8}  # a few seconds of fitting
LONG = {"n_estimators": 2000, "max_depth": 8}  # far longer than a test waits before it stops it


def dataset(gateway) -> str:
    """A new dataset of 5000 rows, not trained by itself (the tests submit their own jobs)."""
    name = f"resilience-{uuid.uuid4().hex[:8]}"
    assert gateway.put(f"/api/training/policies/{name}", json={"auto_train": False}).status_code == 200
    X, y = make_classification(n_samples=5000, n_features=10, n_informative=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)]).assign(target=np.array(["no", "yes"])[y])
    reply = gateway.post(
        f"/api/datasets/{name}/versions?target=target&task=classification",
        content=frame.to_csv(index=False).encode(),
        headers=CSV,
    )
    assert reply.status_code == 201, reply.text
    return name


def submit(gateway, name: str, params: dict) -> dict:
    reply = gateway.post("/api/training/jobs", json={"dataset": name, "estimator": "random_forest", "params": params})
    assert reply.status_code == 202, reply.text
    return reply.json()


def job(gateway, job_id: str) -> dict:
    reply = gateway.get(f"/api/training/jobs/{job_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def fitting(gateway, job_id: str) -> dict:
    """The job once a worker fits it (its stage is `queued` until then)."""
    found = poll(lambda: (j := job(gateway, job_id))["stage"] == "fitting" and j, 120)
    assert found, job(gateway, job_id)
    return found


def finished(gateway, job_id: str, timeout_s: float = 180) -> dict:
    found = poll(lambda: (j := job(gateway, job_id))["status"] in DONE and j, timeout_s)
    assert found, job(gateway, job_id)
    return found


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`, as /proc tells."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for c in found for d in descendants(c)]


def workers(app: int) -> list[int]:
    def is_worker(pid: int) -> bool:
        try:
            return b"services.training.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return [p for p in children(app) if is_worker(p)]


def training_app(stack) -> int:
    pid = listener_pid(stack.app("training").app_port)
    assert pid is not None, "the training app is not listening"
    return pid


def until_gone(pids: list[int], since: float) -> float | None:
    """Seconds from `since` (time.monotonic) until none of the processes is alive; None if
    some still are 5 s after it."""
    if poll(lambda: not any(alive(p) for p in pids), STOPPED_WITHIN_S - (time.monotonic() - since)) is None:
        return None
    return time.monotonic() - since


def fitting_job(stack, gateway, params: dict) -> tuple[dict, int]:
    """A job on a dataset of its own, once it is fitting: its submission and its worker's pid."""
    submitted = submit(gateway, dataset(gateway), params)
    fitting(gateway, submitted["id"])
    (worker,) = workers(training_app(stack))
    return submitted, worker


def test_a_fit_worker_killed_mid_fit_is_replaced_and_the_job_completes(stack, gateway):
    submitted, worker = fitting_job(stack, gateway, SHORT)
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    done = finished(gateway, submitted["id"])
    print(f"\nfit worker killed mid-fit: the job {done['status']} {time.monotonic() - killed:.1f} s later")
    assert done["status"] == "COMPLETED", done
    assert done["result"]["version"] == 1 and done["result"]["metrics"]["accuracy"] > 0.8
    assert not alive(worker)
    assert [w for w in workers(training_app(stack)) if w != worker], "the dead worker was not replaced"
    # The next job is not wedged by the dead worker either.
    assert finished(gateway, submit(gateway, submitted["dataset"], {"n_estimators": 10})["id"])["status"] == "COMPLETED"


def test_a_fit_whose_worker_keeps_dying_fails_its_job_naming_why(stack, gateway):
    name = dataset(gateway)
    submitted = submit(gateway, name, LONG)
    killed: list[int] = []
    for _ in range(3):  # the attempts of the activity retry policy (DaprWorkflows)
        fitting(gateway, submitted["id"])
        (worker,) = workers(training_app(stack))
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)
        # Queued again for the retry (or failed, after the last attempt).
        assert poll(lambda: (j := job(gateway, submitted["id"]))["stage"] != "fitting" or j["status"] in DONE, 60)
    done = finished(gateway, submitted["id"])
    assert done["status"] == "FAILED", done
    assert f"worker process {killed[-1]} was killed by SIGKILL" in done["error"], done["error"]


def test_a_training_app_killed_mid_fit_leaves_no_process_of_its_own(stack, gateway):
    name = dataset(gateway)
    submitted = submit(gateway, name, LONG)
    fitting(gateway, submitted["id"])
    app = training_app(stack)
    family = descendants(app)
    assert workers(app) and set(workers(app)) <= set(family)
    killed = time.monotonic()
    os.kill(app, signal.SIGKILL)
    took = until_gone(family, killed)
    print(f"\ntraining app killed mid-fit: its {len(family)} processes gone {took} s later")
    assert took is not None, f"left running after {STOPPED_WITHIN_S} s: {[p for p in family if alive(p)]}"
    # The supervisor starts the app again and the engine resumes the job; it is canceled here,
    # so that its fit does not hold the worker for the tests after this one.
    port = stack.app("training").app_port
    assert poll(lambda: listener_pid(port) not in (None, app), 60), "the training app did not come back"
    canceled = poll(lambda: gateway.delete(f"/api/training/jobs/{submitted['id']}").status_code in (200, 202), 60)
    assert canceled, job(gateway, submitted["id"])


def test_a_job_canceled_mid_fit_is_canceled_and_its_worker_gone_within_5_s(stack, gateway):
    submitted, worker = fitting_job(stack, gateway, LONG)
    asked = time.monotonic()
    reply = gateway.delete(f"/api/training/jobs/{submitted['id']}")
    answered = time.monotonic() - asked
    took = until_gone([worker], asked)
    print(f"\ncancel: DELETE answered in {answered:.3f} s; the fitting worker gone {took} s after it was sent")
    assert reply.status_code == 200 and reply.json()["status"] == "CANCELED", reply.text
    assert took is not None, f"worker {worker} still runs {STOPPED_WITHIN_S} s after the cancel"
    assert job(gateway, submitted["id"])["status"] == "CANCELED"
    listed = gateway.get("/api/training/jobs", params={"dataset": submitted["dataset"], "status": "canceled"}).json()
    assert [j["id"] for j in listed["jobs"]] == [submitted["id"]]
    # The same request again is a new attempt; it may be canceled before it fits, too.
    again = submit(gateway, submitted["dataset"], LONG)
    assert again["id"] == f"{submitted['id']}-a2"
    assert gateway.delete(f"/api/training/jobs/{again['id']}").json()["status"] == "CANCELED"


@pytest.fixture(scope="module")
def small(stack):
    """A dataset that is never trained by itself (a job of it would fail: one row)."""
    name = f"bounded-{uuid.uuid4().hex[:8]}"
    with stack.gateway() as gateway:
        assert gateway.put(f"/api/training/policies/{name}", json={"auto_train": False}).status_code == 200
        reply = gateway.post(
            f"/api/datasets/{name}/versions?target=t&task=classification", content=b"x,t\n1,a\n", headers=CSV
        )
        assert reply.status_code == 201, reply.text
    return name


@pytest.mark.parametrize(
    ("estimator", "params", "bound"),
    [
        ("random_forest", {"n_estimators": 100_000}, "at most 2000 (the bound DAPRML_MAX_TREES)"),
        ("random_forest", {"max_depth": 10**9}, "at most 64 (the bound DAPRML_MAX_DEPTH)"),
        ("gradient_boosting", {"max_iter": 10**9}, "at most 100000 (the bound DAPRML_MAX_ITERATIONS)"),
    ],
)
def test_a_parameter_over_its_bound_is_422_naming_the_bound(gateway, small, estimator, params, bound):
    reply = gateway.post("/api/training/jobs", json={"dataset": small, "estimator": estimator, "params": params})
    assert reply.status_code == 422 and bound in reply.json()["detail"], reply.text
    assert gateway.get("/api/training/jobs", params={"dataset": small}).json()["total"] == 0
