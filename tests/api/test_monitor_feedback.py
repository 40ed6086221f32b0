"""POST /api/models/{name}/feedback and GET /api/models/{name}/monitoring/live on the monitor
(over in-memory ports), and through the gateway: who may send feedback, what is forwarded."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.common import events
from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.events import EventType
from services.common.ports import Reply
from services.gateway.app import create_app as gateway_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.monitor.app import create_app
from services.monitor.ports import MonitorPorts
from services.monitor.settings import Settings
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, fake_ports
from tests.unit.monitor.events import logged


@pytest.fixture
def monitor():
    # One delivery a batch (a TestClient sends one request at a time); feedback reads new parts
    # on every call, so that a capture delivered just before is matched.
    ports = fake_ports(MonitorPorts)
    with TestClient(
        create_app(Settings(capture_max_events=1, live_refresh_s=0, feedback_max_items=6), ports)
    ) as client:
        client.ports = ports
        yield client


def deliver(client: TestClient, event) -> None:
    body = events.encode(EventType.PREDICTION_LOGGED, "/daprml/inference", event)
    reply = client.post("/internal/events/predictions", content=body, headers={"content-type": events.CLOUDEVENTS_JSON})
    assert reply.json()["status"] == "SUCCESS"


def feedback_parts(client: TestClient) -> list[str]:
    return [k for k in client.ports.blobs.blobs if k.startswith("monitor/feedback/")]


def invalid_counted(client: TestClient) -> float:
    return client.app.state.metrics.get_sample_value("daprml_monitor_feedback_received_total", {"outcome": "invalid"})


def test_feedback_is_answered_with_its_counts_and_live_metrics_read_back(monitor):
    event = logged(records=4, at=datetime.now(UTC))  # predicted 0, 1, 0, 1
    deliver(monitor, event)
    ids, unknown = event.prediction_ids, prediction_ids(new_call_id(), 1)[0]
    body = [{"prediction_id": i, "actual": a} for i, a in zip(ids, [0, 1, 1, 1], strict=True)]
    reply = monitor.post("/api/models/iris/feedback", json=[*body, body[0], {"prediction_id": unknown, "actual": 1}])
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert {k: answer[k] for k in ("received", "accepted", "matched", "pending", "duplicates")} == {
        "received": 6,
        "accepted": 5,
        "matched": 4,
        "pending": 1,
        "duplicates": 1,
    }
    live = monitor.get("/api/models/iris/monitoring/live").json()
    assert live["model"] == "iris" and live["task"] == "classification" and live["primary"] == "accuracy"
    assert live["window"]["metrics"]["accuracy"] == {"value": 0.75, "count": 4}
    assert [v["version"] for v in live["versions"]] == [1] and live["pending"] == 1
    assert live["settings"]["window_pairs"] == 1000 and live["computed_at"]


GOOD = {"prediction_id": prediction_ids(new_call_id(), 1)[0], "actual": 1}
OTHER = prediction_ids(new_call_id(), 1)[0]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ([GOOD, {"prediction_id": "x", "actual": 1}], ["body", 1, "prediction_id"]),
        ([GOOD, "ok"], ["body", 1]),
        ([GOOD, {"prediction_id": OTHER, "actual": [1]}], ["body", 1, "actual"]),
        ([GOOD, {"prediction_id": OTHER, "actual": None}], ["body", 1, "actual"]),
        ([GOOD, {"prediction_id": OTHER}], ["body", 1, "actual"]),
        (GOOD, ["body"]),  # one item, not a list of them
        ([], ["body"]),
    ],
)
def test_a_bad_body_is_a_422_naming_the_item_and_nothing_of_it_is_kept(monitor, body, loc):
    reply = monitor.post("/api/models/iris/feedback", json=body)
    assert reply.status_code == 422, reply.text
    assert [e["loc"] for e in reply.json()["detail"]] == [loc]
    assert feedback_parts(monitor) == [] and invalid_counted(monitor) == 1


@pytest.mark.parametrize("body", [b"\xa1s~\xc3{\xff\xfe", b'[{"prediction_id": "\xff"}]'])
def test_a_body_that_is_not_utf8_is_a_422_not_a_500(monitor, body):
    # Schemathesis sent bytes that are not UTF-8: the error's `input` could not be written as JSON.
    reply = monitor.post("/api/models/iris/feedback", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text


def test_a_body_that_is_not_json_is_a_422(monitor):
    reply = monitor.post("/api/models/iris/feedback", content=b"[{", headers={"content-type": "application/json"})
    assert reply.status_code == 422 and reply.json()["detail"][0]["type"] == "json_invalid"
    assert invalid_counted(monitor) == 1


def test_more_items_than_the_setting_allows_is_a_422_saying_so(monitor):
    body = [{"prediction_id": i, "actual": 1} for i in prediction_ids(new_call_id(), 7)]
    reply = monitor.post("/api/models/iris/feedback", json=body)
    assert reply.status_code == 422 and "at most 6" in reply.json()["detail"]
    assert feedback_parts(monitor) == [] and invalid_counted(monitor) == 7


def test_a_bad_model_name_is_refused(monitor):
    assert monitor.post("/api/models/IRIS/feedback", json=[]).status_code == 422
    assert monitor.get("/api/models/IRIS/monitoring/live").status_code == 422


def test_a_model_nothing_was_captured_of_has_an_empty_live_report(monitor):
    live = monitor.get("/api/models/nobody/monitoring/live")
    assert live.status_code == 200 and live.json()["pairs"] == 0 and live.json()["versions"] == []


# Through the gateway.

FEEDBACK_ANSWER = Reply(200, b'{"model": "iris", "received": 1}')
LIVE_ANSWER = Reply(200, b'{"model": "iris", "pairs": 0}')


@pytest.fixture
def gateway():
    keys, secrets = provisioned(**{role.value: [role] for role in Role})
    invoker = FakeInvoker(
        {
            ("monitor", "api/models/iris/feedback"): FEEDBACK_ANSWER,
            ("monitor", "api/models/iris/monitoring/live"): LIVE_ANSWER,
        }
    )
    with TestClient(gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker))) as client:
        client.keys, client.invoker = keys, invoker
        yield client


def as_key(client: TestClient, role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {client.keys[role]}"}


BODY = [{"prediction_id": "0" * 32 + "-0", "actual": "setosa"}]


@pytest.mark.parametrize("role", ["predict", "feedback", "admin"])
def test_a_predict_or_feedback_key_sends_feedback_to_the_monitor_as_it_is(gateway, role):
    reply = gateway.post("/api/models/iris/feedback", json=BODY, headers=as_key(gateway, role))
    assert reply.status_code == 200 and reply.json()["model"] == "iris"
    ((app_id, method, verb, headers, body),) = gateway.invoker.forwarded
    assert (app_id, method, verb) == ("monitor", "api/models/iris/feedback", "POST")
    assert body == b'[{"prediction_id":"' + b"0" * 32 + b'-0","actual":"setosa"}]'
    assert headers["x-daprml-actor"] == role  # the key's name: who sent the ground truth


@pytest.mark.parametrize("role", ["reader", "ingest", "train"])
def test_other_keys_may_not_send_feedback(gateway, role):
    reply = gateway.post("/api/models/iris/feedback", json=BODY, headers=as_key(gateway, role))
    assert reply.status_code == 403 and "needs the predict or feedback role" in reply.json()["detail"]
    assert gateway.invoker.forwarded == []


def test_a_feedback_key_may_neither_predict_nor_read(gateway):
    key = as_key(gateway, "feedback")
    assert gateway.post("/api/models/iris/predict", json={"records": []}, headers=key).status_code == 403
    assert gateway.get("/api/models/iris/monitoring/live", headers=key).status_code == 403
    assert gateway.invoker.forwarded == []


def test_a_reader_reads_live_metrics_through_the_gateway(gateway):
    reply = gateway.get("/api/models/iris/monitoring/live", headers=as_key(gateway, "reader"))
    assert reply.status_code == 200 and reply.json() == {"model": "iris", "pairs": 0}
    assert [f[:3] for f in gateway.invoker.forwarded] == [("monitor", "api/models/iris/monitoring/live", "GET")]
    assert gateway.get("/api/models/IRIS/monitoring/live", headers=as_key(gateway, "reader")).status_code == 400
    assert len(gateway.invoker.forwarded) == 1
