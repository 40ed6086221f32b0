"""The monitor on the real stack: predictions through the gateway are captured with the ids the
gateway answered with and read back through the gateway; the same predictions published again
(as a redelivery would bring them) add no rows."""

import uuid

import httpx
import pytest

from scripts.stack import Stack
from services.common import events
from services.common.events import EventType, PredictionLogged
from tests.integration.conftest import captured_predictions, poll
from tests.integration.test_metrics import sample, scraped
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration

RECORDS = [
    {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2},
    {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2, "petal width (cm)": 2.3},
    {"sepal length (cm)": 5.9, "sepal width (cm)": 3.0, "petal length (cm)": 4.2, "petal width (cm)": 1.5},
]


def captured(gateway: httpx.Client, name: str) -> list[dict]:
    """Every captured prediction of the model, page after page (3 a page: paging is used)."""
    return captured_predictions(gateway, name, page=3, max_pages=100)


def publish(stack: Stack, payload: PredictionLogged) -> None:
    """Through inference's sidecar, on the stack's prediction log, as inference publishes."""
    topic = events.topic_of(EventType.PREDICTION_LOGGED, stack.topic_prefix)
    url = f"http://127.0.0.1:{stack.app('inference').http_port}/v1.0/publish/pubsub/{topic}"
    body = events.encode(EventType.PREDICTION_LOGGED, "/test", payload, event_id=uuid.uuid4().hex)
    headers = {"content-type": events.CLOUDEVENTS_JSON} | stack.sidecar_headers()
    assert httpx.post(url, content=body, headers=headers, timeout=10).status_code == 204


def dropped_on_read(stack: Stack) -> float:
    return sample(scraped(stack, "monitor"), "daprml_monitor_duplicates_dropped_total", stage="read")


def test_predictions_are_captured_with_their_ids_and_a_copy_adds_no_rows(stack, gateway):
    name = unique("monitored")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job

    reply = gateway.post(f"/api/models/{name}/predict", json={"records": RECORDS})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    ids = answer["prediction_ids"]
    assert len(ids) == len(RECORDS) == len(set(ids))

    rows = poll(lambda: (found := captured(gateway, name)) and len(found) >= len(ids) and found, 30)
    assert rows, "the predictions were never captured"
    assert [r["prediction_id"] for r in rows] == ids  # one call: in record order
    assert [r["inputs"] for r in rows] == RECORDS
    assert [r["output"] for r in rows] == answer["predictions"]
    assert {(r["model"], r["version"], r["runtime"]) for r in rows} == {(name, answer["version"], answer["runtime"])}

    # The same call's event twice more, as a broker redelivering it would send it.
    first = rows[0]
    again = PredictionLogged(
        model=name,
        version=first["version"],
        runtime=first["runtime"],
        request_id=first["request_id"],
        at=first["at"],
        records=len(rows),
        prediction_ids=ids,
        inputs=[r["inputs"] for r in rows],
        predictions=[r["output"] for r in rows],
        latency_ms=1.0,
    )
    publish(stack, again)
    publish(stack, again)

    def copies_written() -> list[dict] | None:
        """The model's rows once a read of them met the copies (and dropped them)."""
        before = dropped_on_read(stack)
        found = captured(gateway, name)
        return found if dropped_on_read(stack) - before >= len(ids) else None

    after = poll(copies_written, 30)
    assert after, "the copies were never written"
    assert [r["prediction_id"] for r in after] == ids
