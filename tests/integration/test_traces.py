"""Traces on the real stack, looked up in Jaeger's query API by the trace id the gateway
answers with (its `traceparent` header): one prediction through the gateway is one trace with
spans from the gateway app, both sidecars and the inference app; one dataset commit is one
trace down to the training workflow's activities.

The apps and the sidecars both name themselves by their app id (Jaeger's service name); an
app's spans come from the Python SDK, which says so in the process tag
`telemetry.sdk.language`, and a sidecar's do not."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scripts.infra import observability
from scripts.stack import Stack
from tests.integration.conftest import poll
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration

QUERY = "http://127.0.0.1:16686"
IRIS = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


@pytest.fixture(scope="module")
def jaeger(stack: Stack) -> httpx.Client:
    if not observability.wiring().traces:  # off, or not built here: said by setup; anything else fails
        pytest.skip(f"no traces here ({observability.setting()}, Jaeger built: {observability.jaeger_program()})")
    client = httpx.Client(base_url=QUERY, timeout=10)
    try:
        client.get("/api/services").raise_for_status()
    except httpx.HTTPError as exc:
        client.close()
        pytest.fail(f"Jaeger should run (infra starts it) but does not answer on {QUERY}: {exc}")
    yield client
    client.close()


class Trace:
    """One trace as Jaeger's query API answers it: each span with its process's service name
    and SDK language."""

    def __init__(self, data: dict[str, Any]):
        processes = {
            key: (p["serviceName"], {t["key"]: t["value"] for t in p.get("tags", [])})
            for key, p in data["processes"].items()
        }
        self.spans = [
            {
                "name": s["operationName"],
                "id": s["spanID"],
                "service": processes[s["processID"]][0],
                "language": processes[s["processID"]][1].get("telemetry.sdk.language"),
                "parents": [r["spanID"] for r in s.get("references", []) if r.get("refType") == "CHILD_OF"],
            }
            for s in data["spans"]
        ]

    def of(self, service: str, app: bool = True) -> list[dict[str, Any]]:
        """The spans of an app (app=True) or of its sidecar (False)."""
        return [s for s in self.spans if s["service"] == service and (s["language"] == "python") == app]

    def names(self, service: str, app: bool = True) -> set[str]:
        return {s["name"] for s in self.of(service, app)}

    def __repr__(self) -> str:
        kinds = {True: "app", False: "daprd"}
        return "\n".join(sorted(f"{s['service']} {kinds[s['language'] == 'python']}: {s['name']}" for s in self.spans))


def looked_up(jaeger: httpx.Client, trace_id: str, complete: Callable[[Trace], bool], timeout_s: float) -> Trace:
    """The trace once `complete` says so (spans arrive in batches, about a second apart), else
    what Jaeger has of it then, for the assertion's message."""
    seen: list[Trace] = []

    def found() -> Trace | None:
        reply = jaeger.get(f"/api/traces/{trace_id}")
        if reply.status_code != 200 or not reply.json().get("data"):
            return None
        seen.append(Trace(reply.json()["data"][0]))
        return seen[-1] if complete(seen[-1]) else None

    return poll(found, timeout_s) or (seen[-1] if seen else Trace({"processes": {}, "spans": []}))


def trace_id_of(reply: httpx.Response) -> str:
    version, trace_id, _span, _flags = reply.headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32
    return trace_id


def test_a_prediction_through_the_gateway_is_one_trace_across_both_apps_and_sidecars(stack, gateway, jaeger):
    name = unique("traced")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job
    front, back = stack.app("gateway").app_id, stack.app("inference").app_id
    # A client's own trace context is ignored at the public door.
    sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    reply = gateway.post(f"/api/models/{name}/predict", json={"records": [IRIS]}, headers={"traceparent": sent})
    assert reply.status_code == 200, reply.text
    trace_id = trace_id_of(reply)
    assert trace_id != sent.split("-")[1]

    def whole(t: Trace) -> bool:
        return all(t.of(app, kind) for app in (front, back) for kind in (True, False)) and "predict" in t.names(back)

    found = looked_up(jaeger, trace_id, whole, timeout_s=30)
    assert whole(found), found
    assert "POST /api/models/{name}/predict" in found.names(front)
    assert {"POST /api/models/{name}/predict", "predict"} <= found.names(back)
    # Each hop is the child of the one before: the inference app's server span has a parent in
    # its own sidecar, and the gateway's sidecar span has its parent in the gateway app.
    ids = {s["id"]: s for s in found.spans}
    (server,) = [s for s in found.of(back) if s["name"].startswith("POST ")]
    assert [ids[p] in found.of(back, app=False) for p in server["parents"]] == [True], found
    assert any(ids.get(p) in found.of(front) for s in found.of(front, app=False) for p in s["parents"]), found


def test_a_dataset_commit_is_one_trace_down_to_the_training_workflows_activities(stack, gateway, jaeger):
    name = unique("traced")
    ingestion, training = stack.app("ingestion").app_id, stack.app("training").app_id
    reply = gateway.post(
        f"/api/datasets/{name}/versions?target=target&task=classification",
        content=iris_csv(),
        headers={"content-type": "text/csv"},
    )
    assert reply.status_code == 201, reply.text
    trace_id = trace_id_of(reply)

    def reached(t: Trace) -> bool:
        return "commit" in t.names(ingestion) and {"activity: fit", "fit"} <= t.names(training)

    found = looked_up(jaeger, trace_id, reached, timeout_s=60)
    assert reached(found), found
    # The event's delivery to training (its sidecar's call to the app) is in the same trace.
    assert any(n.startswith("POST /internal/events/") for n in found.names(training)), found
