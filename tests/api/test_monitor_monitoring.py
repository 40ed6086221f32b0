"""The monitor's monitoring routes over in-memory ports and a fake registry: a policy refused by
the field at fault, stored and shown with its job, recorded with the gateway's actor; a check
asked for over captured predictions; the model's job fired through the job route the sidecar
calls; the policy removed with its job."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.common import events
from services.common.contracts.monitoring import ACTOR_HEADER, new_call_id, prediction_ids
from services.common.events import EventType, PredictionLogged
from services.monitor.app import create_app
from services.monitor.ports import MonitorPorts
from services.monitor.settings import Settings
from tests.fakes import fake_ports
from tests.unit.monitor.drifting import FakeRegistry, card, draw, predict

TOKEN = "app-token"
# As a call forwarded by the gateway for the key "ops lead" reaches the monitor through its sidecar.
FROM_GATEWAY = {"dapr-api-token": TOKEN, "dapr-caller-app-id": "gateway", ACTOR_HEADER: "ops lead"}


@pytest.fixture
def monitor():
    registry = FakeRegistry()
    ports = fake_ports(MonitorPorts, invoker=registry)
    settings = Settings(capture_max_events=1, app_api_token=SecretStr(TOKEN), heartbeat_s=0)
    with TestClient(create_app(settings, ports), headers=FROM_GATEWAY) as client:
        client.ports, client.registry = ports, registry
        yield client


def capture(client: TestClient, records: list[dict], version: int = 1) -> None:
    """The records as one call inference logged a minute ago, delivered to the monitor."""
    call = new_call_id()
    event = PredictionLogged(
        model="iris",
        version=version,
        runtime="sklearn",
        request_id="req",
        at=datetime.now(UTC) - timedelta(minutes=1),
        records=len(records),
        prediction_ids=prediction_ids(call, len(records)),
        inputs=records,
        predictions=predict(records),
        latency_ms=1.0,
    )
    body = events.encode(EventType.PREDICTION_LOGGED, "/daprml/inference", event)
    reply = client.post("/internal/events/predictions", content=body, headers={"content-type": events.CLOUDEVENTS_JSON})
    assert reply.json()["status"] == "SUCCESS"


def test_a_model_never_monitored_has_an_empty_monitoring(monitor):
    answer = monitor.get("/api/models/iris/monitoring").json()
    assert (answer["policy"], answer["job"], answer["reports"], answer["checks"]) == (None, None, [], [])
    assert answer["live"]["model"] == "iris" and answer["live"]["pairs"] == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"schedule": "0 6 * * *"}, "schedule", "6 fields"),
        ({"schedule": "@every 100ms"}, "schedule", "more often"),
        ({"on_drift": "rebuild"}, "on_drift", "'none', 'notify' or 'retrain'"),
        ({"retrain_min_rows": 0}, "retrain_min_rows", "greater than or equal to 1"),
        ({"drift_threshold": -1}, "drift_threshold", "greater than 0"),
        ({"window_rows": 0}, "window_rows", "greater than or equal to 1"),
        ({"shedule": "@daily"}, "shedule", "not permitted"),
    ],
)
def test_a_policy_is_refused_naming_the_field_at_fault(monitor, body, field, words):
    reply = monitor.put("/api/models/iris/monitoring", json=body)
    assert reply.status_code == 422
    (error,) = reply.json()["detail"]
    assert error["loc"][-1] == field and words in error["msg"]
    assert set(monitor.ports.jobs.jobs) == {"retention.tables"} and monitor.registry.notes == []


def test_a_policy_is_stored_scheduled_and_recorded_with_the_callers_key_name(monitor):
    reply = monitor.put("/api/models/iris/monitoring?reason=watch+it", json={"schedule": "@every 1h"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["changed"] and reply.json()["job"] == "drift-check.iris"
    assert monitor.ports.jobs.jobs["drift-check.iris"][0] == "@every 1h"
    (note,) = monitor.registry.notes
    assert (note.action, note.actor, note.reason) == ("monitoring.policy", "ops lead", "watch it")
    shown = monitor.get("/api/models/iris/monitoring").json()
    assert shown["policy"]["schedule"] == "@every 1h" and shown["changed_by"] == "ops lead"
    assert shown["job"] == "drift-check.iris"
    assert monitor.put("/api/models/iris/monitoring", json={"schedule": "@every 1h"}).json()["changed"] is False
    assert len(monitor.registry.notes) == 1


def test_a_policy_for_a_model_the_registry_does_not_know_is_a_404(monitor):
    reply = monitor.put("/api/models/wine/monitoring", json={})
    assert reply.status_code == 404 and "no model named 'wine'" in reply.json()["detail"]


def test_a_check_asked_for_reports_the_drift_of_the_captured_predictions(monitor):
    capture(monitor, draw(300, seed=1))
    reply = monitor.post("/api/models/iris/monitoring/check")
    assert reply.status_code == 200, reply.text
    (report,) = reply.json()["reports"]
    assert (report["version"], report["rows"], report["drifted"], report["trigger"]) == (1, 300, [], "api")
    capture(monitor, draw(300, seed=2, x_shift=5.0))
    drifted = monitor.post("/api/models/iris/monitoring/check").json()
    assert drifted["reports"][0]["drifted"] == ["x"] and drifted["actions"][0]["action"] == "notify"
    ((event_type, event, _),) = monitor.ports.publisher.sent
    assert event_type == EventType.MODEL_DRIFT_DETECTED and event.check_id == drifted["check_id"]
    shown = monitor.get("/api/models/iris/monitoring").json()
    assert [c["check_id"] for c in shown["checks"]] == [drifted["check_id"], reply.json()["check_id"]]
    assert shown["reports"][0]["check_id"] == drifted["check_id"]  # the version's last report
    assert shown["checks"][0]["actor"] == "ops lead"


def test_a_check_of_a_champion_without_reference_distributions_is_a_409_saying_why(monitor):
    monitor.registry.cards[1] = card(with_reference=False)
    reply = monitor.post("/api/models/iris/monitoring/check")
    assert reply.status_code == 409 and "reference distributions" in reply.json()["detail"]


def test_the_models_job_fired_by_the_sidecar_runs_a_check(monitor):
    monitor.put("/api/models/iris/monitoring", json={"schedule": "@every 5s"})
    capture(monitor, draw(200, seed=3))
    reply = monitor.post(
        "/job/drift-check.iris", json={"model": "iris", "schedule": "@every 5s"}, headers={"dapr-api-token": TOKEN}
    )
    assert reply.status_code == 200 and reply.json()["status"] == "done"
    (check,) = monitor.get("/api/models/iris/monitoring").json()["checks"]
    assert (check["trigger"], check["actor"], check["versions"]) == ("schedule", "monitor", {"1": 200})


def test_removing_the_policy_deletes_its_job_and_keeps_the_reports(monitor):
    monitor.put("/api/models/iris/monitoring", json={"schedule": "@daily"})
    monitor.post("/api/models/iris/monitoring/check")
    removed = monitor.delete("/api/models/iris/monitoring")
    assert removed.status_code == 200 and removed.json()["policy"] is None and removed.json()["job"] is None
    assert set(monitor.ports.jobs.jobs) == {"retention.tables"}  # the retention job stays
    shown = monitor.get("/api/models/iris/monitoring").json()
    assert shown["policy"] is None and len(shown["reports"]) == 1
    assert [n.action for n in monitor.registry.notes] == ["monitoring.policy", "monitoring.policy"]
