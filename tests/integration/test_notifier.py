"""The notifier (services/notifier, Node.js, no Python code shared) in the session stack: it hears
of champion moves through its own sidecar's subscription, asks inference through that sidecar
what the champion is, refuses calls without the app token, and drops invalid events."""

import uuid

import httpx
import pytest

from scripts import profiles
from scripts.stack import Stack
from services.common import events
from services.common.events import EventType, ModelAliasChanged, Topic
from tests.integration.conftest import poll
from tests.integration.test_training import commit, finished_job, iris_csv

pytestmark = pytest.mark.integration
CE = {"content-type": events.CLOUDEVENTS_JSON}


def notifier_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.app('notifier').app_port}"


def champions(stack: Stack) -> dict:
    reply = httpx.get(f"{notifier_url(stack)}/api/champions", headers=stack.app_headers(), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def row_when(stack: Stack, model: str, check, timeout_s: float = 30) -> dict:
    """The notifier's row for the model once `check` holds for it."""
    found = poll(lambda: (row := champions(stack).get(model)) is not None and check(row) and row, timeout_s)
    assert found, f"the notifier never showed the expected row for {model}: {champions(stack).get(model)}"
    return found


def publish(stack: Stack, body: bytes) -> None:
    """Straight to the notifier's sidecar, on the topic its stack's registry publishes to."""
    notifier = stack.app("notifier")
    topic = events.topic_of(EventType.MODEL_ALIAS_CHANGED, stack.topic_prefix)
    url = f"http://127.0.0.1:{notifier.http_port}/v1.0/publish/pubsub/{topic}"
    assert httpx.post(url, content=body, headers=CE | stack.sidecar_headers(), timeout=10).status_code == 204


def notifier_log(stack: Stack) -> str:
    logs = sorted((stack.workdir / ".dapr" / "logs").glob(f"{stack.app('notifier').app_id}_app_*.log"))
    return logs[-1].read_text() if logs else ""


def test_the_notifier_follows_the_champion_and_what_inference_serves(stack, gateway):
    name = f"notify-{uuid.uuid4().hex[:8]}"
    commit(gateway, name, iris_csv())
    finished_job(gateway, name)
    first = row_when(stack, name, lambda r: r["version"] == 1 and r["inference"].get("version") == 1)
    assert first["inference"]["inputs"] == 4  # the four iris features, from inference's OIP metadata

    weak = {"dataset": name, "estimator": "logistic_regression", "params": {"C": 1e-6}}
    assert gateway.post("/api/training/jobs", json=weak).status_code == 202
    finished_job(gateway, name, count=2)
    assert gateway.get(f"/api/models/{name}").json()["aliases"] == {"champion": 1, "challenger": 2}
    # The challenger's event is ignored: the row still shows version 1.
    assert champions(stack)[name]["version"] == 1

    assert gateway.put(f"/api/models/{name}/aliases/champion", json={"version": 2}).status_code == 200
    moved = row_when(stack, name, lambda r: r["version"] == 2 and r["inference"].get("version") == 2)
    assert moved["inference"]["inputs"] == 4 and moved["inference"]["at"]
    assert moved["alias_changed_at"] >= first["alias_changed_at"]
    log = notifier_log(stack)
    assert f"({name} champion 1 -> 2, api): champion v1 -> v2; inference serves v2 with 4 inputs" in log, log[-2000:]

    # Back and forth, close together: the last answer is the registry's champion.
    for version in (1, 2, 1):
        assert gateway.put(f"/api/models/{name}/aliases/champion", json={"version": version}).status_code == 200
    row_when(stack, name, lambda r: r["version"] == 1 and r["inference"].get("version") == 1)


def test_an_invalid_event_is_dropped_and_the_notifier_keeps_working(stack):
    junk = b'{"specversion": "1.0", "id": "junk-1", "source": "/test", "type": "io.daprml.model.alias.changed.v1",'
    junk += b' "data": {"model": "Not A Name", "alias": "champion"}}'
    publish(stack, junk)
    # A valid event after it, for a model nobody registered: inference says so, and the row says that.
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    payload = ModelAliasChanged(model=ghost, alias="champion", from_version=None, to_version=3, reason="api")
    publish(stack, events.encode(EventType.MODEL_ALIAS_CHANGED, "/test", payload))
    row = row_when(stack, ghost, lambda r: "error" in (r["inference"] or {}))
    assert row["version"] is None and row["inference"]["error"].startswith("404"), row
    # Deliveries run concurrently: the invalid one may be handled after the valid one.
    assert poll(lambda: "DROP dropping an invalid io.daprml.model.alias.changed.v1 event" in notifier_log(stack))
    assert "junk-1" not in champions(stack)


def test_the_notifier_answers_only_with_the_app_token(stack):
    url = notifier_url(stack)
    assert httpx.get(f"{url}/api/champions").status_code == 401
    assert httpx.get(f"{url}/api/champions", headers={"dapr-api-token": "wrong"}).status_code == 401
    assert httpx.get(f"{url}/dapr/subscribe").status_code == 401
    assert httpx.post(f"{url}/internal/events/{Topic.MODEL_ALIASES}", content=b"{}").status_code == 401
    assert httpx.get(f"{url}/healthz").status_code == 200
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["app_id"] == stack.app("notifier").app_id
    assert ready.json()["runtime_version"].startswith("1.18.")
    pubsub = next(c for c in profiles.components(stack.profile) if c["metadata"]["name"] == "pubsub")
    assert f"pubsub ({pubsub['spec']['type']})" in ready.json()["components"]
    # Its sidecar sends the token: a call through Dapr gets in.
    notifier = stack.app("notifier")
    through = f"http://127.0.0.1:{notifier.http_port}/v1.0/invoke/{notifier.app_id}/method/api/champions"
    assert httpx.get(through, headers=stack.sidecar_headers(), timeout=10).status_code == 200
    subscription = httpx.get(f"{url}/dapr/subscribe", headers=stack.app_headers()).json()
    assert subscription == [
        {
            "pubsubname": "pubsub",
            "topic": events.topic_of(EventType.MODEL_ALIAS_CHANGED, stack.topic_prefix),
            "route": f"/internal/events/{Topic.MODEL_ALIASES}",
            "deadLetterTopic": events.dead_letter_topic(stack.topic_prefix),
        }
    ]
