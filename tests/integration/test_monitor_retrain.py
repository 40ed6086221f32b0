"""Retraining by policy on the real stack: an iris classifier whose policy says retrain on drift,
and whose promotion policy is auto; predictions with one feature shifted, their true labels sent
back as feedback, one check. Without any other call, the monitor makes a new version of the
dataset (the training data plus the labeled captures, marked with its origin) through ingestion,
training trains it with the champion's estimator, and the registry registers a second model
version, which stays challenger (it was trained on feedback, which a predict key may send) even
though the promotion policy is auto. The history tells each step with who and why."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from tests.integration.conftest import poll
from tests.integration.test_monitor_drift import ADMIN, ROWS, SHIFTED
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration


def labeled_records(seed: int, shift_sd: float) -> tuple[list[dict], list[str]]:
    """ROWS iris rows drawn with replacement (seeded), SHIFTED moved by `shift_sd` standard
    deviations, and their true species."""
    iris = load_iris(as_frame=True)
    frame = iris.frame.sample(ROWS, replace=True, random_state=np.random.RandomState(seed))
    frame[SHIFTED] = frame[SHIFTED] + shift_sd * iris.data[SHIFTED].std()
    species = [str(iris.target_names[t]) for t in frame.pop("target")]
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")], species


def test_with_policy_retrain_a_drift_makes_a_dataset_version_and_a_challenger_by_itself(stack, gateway):
    name = unique("retrain")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job
    assert gateway.put(f"/api/models/{name}/policy", json={"mode": "auto"}).status_code == 200
    policy = {"window_rows": ROWS, "window_hours": 1, "on_drift": "retrain", "retrain_min_rows": ROWS}
    assert gateway.put(f"/api/models/{name}/monitoring", json=policy).status_code == 200

    records, species = labeled_records(seed=31, shift_sd=5)
    answer = gateway.post(f"/api/models/{name}/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    ids = answer.json()["prediction_ids"]
    sent = gateway.post(
        f"/api/models/{name}/feedback",
        json=[{"prediction_id": i, "actual": s} for i, s in zip(ids, species, strict=True)],
    )
    assert sent.status_code == 200, sent.text

    def captured() -> bool:
        page = gateway.get(f"/api/models/{name}/predictions", params={"limit": 1000}).json()
        return len(page["predictions"]) >= ROWS

    assert poll(captured, 60), "the predictions were never captured"
    check = gateway.post(f"/api/models/{name}/monitoring/check")
    assert check.status_code == 200, check.text
    assert [a["action"] for a in check.json()["actions"]] == ["notify", "retrain"], check.json()["actions"]

    # No other call: the monitor's relay commits the dataset version, training trains it.
    jobs = finished_job(gateway, name, timeout_s=240, count=2)
    assert [j["status"] for j in jobs] == ["COMPLETED", "COMPLETED"], jobs
    manifest = gateway.get(f"/api/datasets/{name}/versions/2").json()
    assert manifest["row_count"] > 150 and manifest["origin"]["kind"] == "retrain", manifest
    origin = manifest["origin"]
    assert (origin["model"], origin["base_version"], origin["feedback_rows"]) == (name, 1, ROWS), origin

    model = gateway.get(f"/api/models/{name}").json()
    assert model["aliases"]["champion"] == 1 and model["aliases"].get("challenger") == 2, model["aliases"]
    v2 = gateway.get(f"/api/models/{name}/versions/2").json()
    assert (v2["lineage"]["dataset_version"], v2["lineage"]["feedback_rows"]) == (2, ROWS), v2["lineage"]

    def entries() -> list[dict]:
        return gateway.get(f"/api/models/{name}/history", params={"limit": 50}).json()["entries"]

    retrained = poll(lambda: next((e for e in entries() if e["action"] == "monitoring.retrained"), None), 30)
    assert retrained, [e["action"] for e in entries()]
    assert retrained["actor"] == ADMIN and retrained["details"]["dataset_version"] == 2, retrained
    assert retrained["details"]["feedback_rows"] == ROWS and retrained["details"]["job_id"] in {j["id"] for j in jobs}
    moved = next(e for e in entries() if e["details"].get("alias") == "challenger" and e["details"].get("to") == 2)
    assert "trained_on_feedback" in moved["reason"], moved
    actions = gateway.get(f"/api/models/{name}/monitoring").json()["actions"]
    assert actions[0]["action"] == "retrained" and "v2" in actions[0]["reason"], actions[:3]
