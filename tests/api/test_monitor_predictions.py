"""The monitor hears the prediction log and answers GET /api/models/{name}/predictions from its
inference tables (over in-memory ports)."""

import json

import pytest
from fastapi.testclient import TestClient

from services.common import events
from services.common.events import EventType
from services.monitor.app import create_app
from services.monitor.ports import MonitorPorts
from services.monitor.settings import Settings
from tests.fakes import fake_ports
from tests.unit.monitor.events import T0, logged, seconds


@pytest.fixture
def monitor():
    # One delivery a batch: a TestClient sends one request at a time, so a batch would
    # otherwise wait capture_max_wait_s for deliveries that cannot come.
    ports = fake_ports(MonitorPorts)
    with TestClient(create_app(Settings(capture_max_events=1), ports)) as client:
        client.ports = ports
        yield client


def deliver(client: TestClient, event, event_type: EventType = EventType.PREDICTION_LOGGED) -> str:
    body = events.encode(event_type, "/daprml/inference", event)
    reply = client.post("/internal/events/predictions", content=body, headers={"content-type": events.CLOUDEVENTS_JSON})
    return reply.json()["status"]


def test_the_monitor_subscribes_to_the_prediction_log_and_the_serving_stats(monitor):
    assert [(s["pubsubname"], s["topic"], s["route"]) for s in monitor.get("/dapr/subscribe").json()] == [
        ("pubsub", "predictions", "/internal/events/predictions"),
        ("pubsub", "serving-stats", "/internal/events/serving-stats"),
    ]


def test_captured_predictions_are_read_back_with_their_ids_in_time_order(monitor):
    late, early = logged(records=2, at=T0 + seconds(1)), logged(records=3, at=T0, classes=[0, 1])
    early = early.model_copy(update={"probabilities": [[0.8, 0.2]] * 3})
    assert deliver(monitor, late) == deliver(monitor, early) == "SUCCESS"
    page = monitor.get("/api/models/iris/predictions").json()
    assert [p["prediction_id"] for p in page["predictions"]] == early.prediction_ids + late.prediction_ids
    first = page["predictions"][0]
    assert first["inputs"] == {"x": 0} and first["output"] == 0 and first["probabilities"] == {"0": 0.8, "1": 0.2}
    assert (first["model"], first["version"], first["runtime"], first["at"]) == (
        "iris",
        1,
        "sklearn",
        "2025-01-31T12:00:00Z",
    )
    assert page["next_since"] is None


def test_pages_follow_next_since_and_next_after_through_predictions_of_one_time(monitor):
    calls = [logged(records=4, at=T0), logged(records=4, at=T0)]
    for call in calls:
        deliver(monitor, call)
    seen, query = [], {"limit": 3}
    for _ in range(10):
        page = monitor.get("/api/models/iris/predictions", params=query).json()
        seen += [p["prediction_id"] for p in page["predictions"]]
        if page["next_since"] is None:
            break
        query = {"limit": 3, "since": page["next_since"], "after": page["next_after"]}
    assert sorted(seen) == sorted(calls[0].prediction_ids + calls[1].prediction_ids) and len(seen) == 8


def test_an_event_delivered_again_adds_no_rows(monitor):
    event = logged(records=3)
    assert deliver(monitor, event) == deliver(monitor, event) == "SUCCESS"
    page = monitor.get("/api/models/iris/predictions").json()
    assert [p["prediction_id"] for p in page["predictions"]] == event.prediction_ids


def test_since_leaves_earlier_predictions_out(monitor):
    deliver(monitor, logged(records=1, at=T0))
    later = logged(records=1, at=T0 + seconds(60))
    deliver(monitor, later)
    page = monitor.get("/api/models/iris/predictions", params={"since": "2025-01-31T12:00:30Z"}).json()
    assert [p["prediction_id"] for p in page["predictions"]] == later.prediction_ids
    naive = monitor.get("/api/models/iris/predictions", params={"since": "2025-01-31T12:00:30"}).json()
    assert naive == page  # a time without a zone is UTC


def test_a_model_nothing_was_captured_of_has_an_empty_page(monitor):
    assert monitor.get("/api/models/nobody/predictions").json() == {
        "model": "nobody",
        "predictions": [],
        "next_since": None,
        "next_after": None,
    }


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"since": "yesterday"}, "valid datetime"),
        ({"since": "0.5"}, "not a number"),  # pydantic alone reads it as a Unix time (schemathesis found it)
        ({"limit": 0}, "greater than or equal to 1"),
        ({"limit": 1001}, "less than or equal to 1000"),
        ({"since": "2025-01-31T12:00:00Z", "after": "not-an-id"}, "should match pattern"),
    ],
)
def test_a_bad_query_is_422_saying_what_is_wrong(monitor, query, words):
    reply = monitor.get("/api/models/iris/predictions", params=query)
    assert reply.status_code == 422 and words in json.dumps(reply.json())


def test_after_without_since_is_422_saying_what_it_needs(monitor):
    reply = monitor.get("/api/models/iris/predictions", params={"after": f"{'a' * 32}-0"})
    assert reply.status_code == 422 and "next_since" in reply.json()["detail"]
