"""Ground truth on the real stack: predictions through the gateway, feedback for them from a key
that may only send feedback (some actuals right, some deliberately wrong), and the live accuracy
read back through the gateway equals the share computed here, including feedback sent before
its prediction was captured (a late join)."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.events import PredictionLogged
from tests.integration.conftest import poll
from tests.integration.test_breakers import key_for
from tests.integration.test_metrics import sample, scraped
from tests.integration.test_monitor import RECORDS, publish
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration

CLASSES = ["setosa", "versicolor", "virginica"]


def wrong(label: str) -> str:
    return CLASSES[(CLASSES.index(label) + 1) % len(CLASSES)]


def send(stack, key: dict[str, str], name: str, pairs: list[tuple[str, str]]) -> dict:
    body = [{"prediction_id": i, "actual": a} for i, a in pairs]
    reply = httpx.post(f"{stack.gateway_url}/api/models/{name}/feedback", json=body, headers=key, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_live_accuracy_from_feedback_is_the_share_of_right_actuals(stack, gateway):
    name = unique("feedback")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job
    feedback = key_for(gateway, "feedback")

    # Nine predictions through the gateway; six actuals right, three wrong.
    reply = gateway.post(f"/api/models/{name}/predict", json={"records": RECORDS * 3})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    predicted = list(zip(answer["prediction_ids"], answer["predictions"], strict=True))
    actuals = [(i, p) for i, p in predicted[:6]] + [(i, wrong(p)) for i, p in predicted[6:]]
    sent = send(stack, feedback, name, actuals)
    assert (sent["accepted"], sent["matched"] + sent["pending"], sent["duplicates"]) == (9, 9, 0)
    again = send(stack, feedback, name, [(i, wrong(p)) for i, p in predicted[:2]])  # the first actual stays
    assert (again["accepted"], again["duplicates"]) == (0, 2)

    # A call whose feedback comes before its capture is written: published here, after the
    # feedback, as inference publishes (its ids were never captured before). Two right, one wrong.
    call = prediction_ids(new_call_id(), 3)
    late = send(stack, feedback, name, [(call[0], "setosa"), (call[1], "virginica"), (call[2], "setosa")])
    assert (late["matched"], late["pending"]) == (0, 3)
    publish(
        stack,
        PredictionLogged(
            model=name,
            version=answer["version"],
            runtime=answer["runtime"],
            request_id=uuid.uuid4().hex,
            at=datetime.now(UTC),
            records=3,
            prediction_ids=call,
            inputs=RECORDS,
            predictions=["setosa", "virginica", "versicolor"],
            latency_ms=1.0,
        ),
    )

    right, total = 6 + 2, 9 + 3

    def joined() -> dict | None:
        reply = gateway.get(f"/api/models/{name}/monitoring/live")
        assert reply.status_code == 200, reply.text
        live = reply.json()
        return live if live["window"]["metrics"].get("accuracy", {}).get("count") == total else None

    live = poll(joined, 60)
    assert live, gateway.get(f"/api/models/{name}/monitoring/live").json()
    assert live["window"]["metrics"]["accuracy"]["value"] == pytest.approx(right / total)
    assert live["pending"] == 0 and live["task"] == "classification"
    (version,) = live["versions"]
    assert version["version"] == answer["version"] and version["window"]["metrics"]["accuracy"]["count"] == total
    (today,) = live["daily"]
    assert today["metrics"]["accuracy"]["value"] == pytest.approx(right / total)

    # The gauge of the version's live accuracy, as of that report.
    metrics = scraped(stack, "monitor")
    labels = {"model": name, "version": str(answer["version"])}
    assert sample(metrics, "daprml_monitor_live_metric", **labels, metric="accuracy") == pytest.approx(right / total)
    assert sample(metrics, "daprml_monitor_feedback_received_total", outcome="duplicate") >= 2

    # The feedback key sends ground truth only.
    refused = httpx.post(f"{stack.gateway_url}/api/models/{name}/predict", json={"records": RECORDS}, headers=feedback)
    assert refused.status_code == 403
