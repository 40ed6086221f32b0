"""Drift checks on the real stack: a model trained on iris (its card has reference distributions);
predictions drawn from its training data drift nowhere; the same with one feature shifted by
five standard deviations drift on that feature only, which is announced (ModelDriftDetected,
heard by a subscriber) and recorded in the model's history; a check scheduled as a Dapr Job
fires by itself, and still does after the monitor app was killed and started again. And the
schedules the monitor refuses are those Dapr's scheduler refuses (beside the few it takes but
the monitor does not), through the Jobs adapter on the monitor's own sidecar."""

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris

from scripts.proc import listener_pid
from scripts.stack import Stack
from services.common.dapr_adapters import DaprJobs, Sidecar
from services.common.ports import ConcurrencyConflict, ScheduleRefused
from services.monitor.domain.schedule import problem
from tests.integration.conftest import captured_predictions, poll, sidecar_settings
from tests.integration.load import kill_listener
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration

SHIFTED = "sepal width (cm)"  # the trees split on petals: shifting it leaves the predictions as they were
ROWS = 300
ADMIN = "development admin"  # the stack's admin key's name (scripts/credentials.py)


def iris_records(seed: int, shift_sd: float = 0.0) -> list[dict]:
    """ROWS records drawn (with replacement, seeded) from iris' own rows; SHIFTED moved by
    `shift_sd` of its standard deviations."""
    frame = load_iris(as_frame=True).data
    drawn = frame.sample(ROWS, replace=True, random_state=np.random.RandomState(seed))
    drawn[SHIFTED] = drawn[SHIFTED] + shift_sd * frame[SHIFTED].std()
    return [{k: float(v) for k, v in row.items()} for row in drawn.to_dict("records")]


def captured_count(gateway: httpx.Client, name: str) -> int:
    return len(captured_predictions(gateway, name, max_pages=20))


def predict_and_wait(gateway: httpx.Client, name: str, records: list[dict], expected: int) -> None:
    reply = gateway.post(f"/api/models/{name}/predict", json={"records": records})
    assert reply.status_code == 200, reply.text
    assert poll(lambda: captured_count(gateway, name) >= expected, 60), "the predictions were never captured"


@pytest.fixture(scope="module")
def model(stack: Stack) -> str:
    """An iris classifier, trained once for this module."""
    name = unique("drifting")
    with stack.gateway(timeout_s=120) as gateway:
        commit(gateway, name, iris_csv())
        (job,) = finished_job(gateway, name, timeout_s=180)
        assert job["status"] == "COMPLETED", job
        card = gateway.get(f"/api/models/{name}/versions/champion").json()["card"]
        assert SHIFTED in card["reference"]["features"], "the card records no reference distributions"
    return name


def test_drift_is_found_on_the_shifted_feature_only_announced_and_recorded(stack, gateway, one_app_stack, model):
    # By its path: the app runs in a folder of its own, where `tests` is no package.
    listener = one_app_stack(["python", str(Path(__file__).with_name("drift_listener.py"))], like="training")
    listener.start(timeout_s=60)
    policy = {"window_rows": ROWS, "window_hours": 1, "on_drift": "notify"}
    reply = gateway.put(f"/api/models/{model}/monitoring", params={"reason": "watch iris"}, json=policy)
    assert reply.status_code == 200, reply.text

    predict_and_wait(gateway, model, iris_records(seed=21), ROWS)
    calm = gateway.post(f"/api/models/{model}/monitoring/check")
    assert calm.status_code == 200, calm.text
    (report,) = calm.json()["reports"]
    assert (report["rows"], report["drifted"]) == (ROWS, []), report
    assert all(f["psi"] is not None and f["psi"] < 0.2 for f in report["features"].values()), report["features"]

    predict_and_wait(gateway, model, iris_records(seed=22, shift_sd=5), 2 * ROWS)
    shifted = gateway.post(f"/api/models/{model}/monitoring/check").json()
    (report,) = shifted["reports"]
    assert report["rows"] == ROWS  # the window: the newest ROWS rows, all shifted
    assert [n for n, f in report["features"].items() if f["drifted"]] == [SHIFTED], report["features"]
    assert report["features"][SHIFTED]["psi"] > 1
    assert shifted["actions"][0]["action"] == "notify"

    url = f"http://127.0.0.1:{listener.apps[0].app_port}/received"

    def announced():
        got = httpx.get(url, headers=listener.app_headers(), timeout=10).json()
        return [e for e in got if e["check_id"] == shifted["check_id"]]

    events = poll(announced, 30)
    assert events, "the listener never heard of the drift"
    assert (events[0]["model"], events[0]["rows"], events[0]["threshold"]) == (model, ROWS, 0.2)
    assert [n for n, f in events[0]["features"].items() if f["drifted"]] == [SHIFTED]

    history = gateway.get(f"/api/models/{model}/history", params={"limit": 20}).json()["entries"]
    drift_entry = next(e for e in history if e["action"] == "monitoring.drift")
    assert drift_entry["details"]["check_id"] == shifted["check_id"] and drift_entry["actor"] == ADMIN
    policy_entry = next(e for e in history if e["action"] == "monitoring.policy")
    assert (policy_entry["actor"], policy_entry["reason"]) == (ADMIN, "watch iris")
    assert policy_entry["details"]["via"] == stack.app("monitor").app_id


def scheduled_after(gateway: httpx.Client, name: str, after: datetime) -> dict | None:
    checks = gateway.get(f"/api/models/{name}/monitoring").json()["checks"]
    return next((c for c in checks if c["trigger"] == "schedule" and datetime.fromisoformat(c["at"]) > after), None)


def test_a_scheduled_check_fires_by_itself_and_again_after_the_monitor_restarts(stack, gateway, model):
    asked = datetime.now(UTC)
    reply = gateway.put(f"/api/models/{model}/monitoring", json={"window_rows": ROWS, "schedule": "@every 5s"})
    assert reply.status_code == 200 and reply.json()["job"] == f"drift-check.{model}", reply.text
    try:
        fired = poll(lambda: scheduled_after(gateway, model, asked), 40)
        assert fired, "the scheduled check never fired"
        assert fired["actor"] == stack.app("monitor").app_id

        port = stack.app("monitor").app_port
        killed, back_s = kill_listener(port, timeout_s=60)
        restarted = datetime.now(UTC)
        print(f"\nmonitor app {killed} killed, listening again {back_s:.1f}s later")
        assert poll(lambda: listener_pid(port) not in (None, killed), 10)
        again = poll(lambda: scheduled_after(gateway, model, restarted), 60)
        assert again, "the scheduled check did not fire after the monitor restarted"
    finally:
        assert gateway.delete(f"/api/models/{model}/monitoring").status_code == 200


# Schedules the monitor refuses though the scheduler takes them: it would fire without pause.
STRICTER = ["@every 0s", "@every 500ms", "@every -5s"]
SCHEDULES = [
    "@every 5s",
    "@every 1h30m",
    "@daily",
    "@annually",
    "0 0 6 * * *",
    "*/15 * * * * *",
    "0 0 9 * * mon-fri",
    "5/10 * * * * *",
    "TZ=Europe/Berlin 0 0 6 * * *",
    "0 6 * * *",
    "0 0 6 * * * *",
    "@every 5",
    "@fortnightly",
    "60 * * * * *",
    "0 0 24 * * *",
    "0 0 0 * 13 *",
    "0 0 0 * * 7",
    "5-1 * * * * *",
    "*/0 * * * * *",
    "0 0 0 * * monday",
    "TZ=Mars/Olympus 0 0 6 * * *",
]


def test_the_monitor_refuses_the_schedules_the_scheduler_refuses(stack):
    jobs = DaprJobs(Sidecar(sidecar_settings(stack, "monitor")), prefix=stack.topic_prefix)

    async def taken(name: str, schedule: str) -> bool:
        try:
            # Not due for an hour: nothing fires (the monitor would answer 404 to a kind it lacks).
            reply = await jobs.sidecar.http.post(
                f"/v1.0/jobs/{stack.topic_prefix}{name}", json={"schedule": schedule, "dueTime": "1h", "data": {}}
            )
            return reply.is_success
        finally:
            await jobs.delete(name)

    async def run() -> list[tuple[str, bool]]:
        found = [(s, await taken(f"probe.{i}", s)) for i, s in enumerate(SCHEDULES + STRICTER)]
        # The adapter reads the scheduler's answers as the port says.
        with pytest.raises(ScheduleRefused):
            await jobs.schedule("probe.bad", "0 6 * * *")
        await jobs.schedule("probe.twice", "@daily")
        try:
            with pytest.raises(ConcurrencyConflict):
                await jobs.schedule("probe.twice", "@daily", overwrite=False)
            await jobs.schedule("probe.twice", "@hourly")  # overwrite, by default
        finally:
            await jobs.delete("probe.twice")
        await jobs.delete("probe.never-scheduled")  # not an error
        await jobs.sidecar.close()
        return found

    started = time.monotonic()
    found = asyncio.run(run())
    print(f"\n{len(found)} schedules sent to the scheduler in {time.monotonic() - started:.1f}s")
    differ = [(s, ok) for s, ok in found if s not in STRICTER and ok != (problem(s) is None)]
    assert differ == [], f"the monitor and the scheduler disagree on: {differ}"
    assert all(ok and problem(s) is not None for s, ok in found if s in STRICTER)
