"""A model's history against the real stack: an alias moved through the gateway with a named
key is recorded under that key's name and announced; so is a traffic table set, which the model
then answers; the registry's sidecars decide who called, and an app that claims to be the
gateway is not believed."""

import uuid
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from scripts import credentials
from services.common.contracts.monitoring import ACTOR_HEADER
from tests.integration.conftest import poll

# browser, shots: the console tests' fixtures (headless Chromium, a folder for screenshots)
from tests.integration.test_console import browser, severe_logs, shots, sign_in, wait_for  # noqa: F401
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(stack) -> str:
    """A model whose first version training registered and promoted."""
    name = unique("audit")
    with stack.gateway() as gateway:
        commit(gateway, name, iris_csv())
        (job,) = finished_job(gateway, name)
        assert job["status"] == "COMPLETED", job
    return name


@pytest.fixture
def named_key(gateway):
    """An admin key with a name of its own; revoked at the end."""
    name = f"ops lead {uuid.uuid4().hex[:6]}"
    issued = gateway.post("/api/keys", json={"name": name, "roles": ["admin"]})
    assert issued.status_code == 201, issued.text
    yield name, issued.json()["key"]
    gateway.delete(f"/api/keys/{issued.json()['id']}")


def entries(gateway, model: str, limit: int = 50) -> list[dict]:
    reply = gateway.get(f"/api/models/{model}/history", params={"limit": limit})
    assert reply.status_code == 200, reply.text
    return reply.json()["entries"]


def test_an_alias_set_with_a_named_key_is_in_the_history_under_its_name_and_announced(
    stack, gateway, one_app_stack, model, named_key
):
    # By its path: the app runs in a folder of its own, where `tests` is no package.
    listener = one_app_stack(["python", str(Path(__file__).with_name("history_listener.py"))], like="training")
    listener.start(timeout_s=60)
    key_name, key = named_key
    with httpx.Client(base_url=stack.gateway_url, headers=credentials.auth_headers(key), timeout=30) as ops:
        # A client naming someone else: the gateway sends the key's name instead.
        moved = ops.put(
            f"/api/models/{model}/aliases/challenger",
            params={"reason": "shadow traffic for v1"},
            json={"version": 1},
            headers={ACTOR_HEADER: "mallory"},
        )
        assert moved.status_code == 200, moved.text
        newest, *older = entries(ops, model)
    assert (newest["actor"], newest["action"], newest["reason"]) == (key_name, "alias.moved", "shadow traffic for v1")
    assert newest["details"] == {"alias": "challenger", "from": None, "to": 1, "cause": "api"}
    promoted = next(e for e in older if e["details"].get("cause") == "promotion")
    assert promoted["actor"] == stack.app("training").app_id and "policy" in promoted["reason"]

    url = f"http://127.0.0.1:{listener.apps[0].app_port}/received"

    def announced():
        got = httpx.get(url, headers=listener.app_headers()).json()
        return [e for e in got if e["model"] == model and e["seq"] == newest["seq"]]

    events = poll(announced, 30)
    assert events, "the listener never received the history entry"
    assert (events[0]["id"], events[0]["actor"], events[0]["reason"]) == (
        f"{model}-history-{newest['seq']}",
        key_name,
        "shadow traffic for v1",
    )


def test_a_traffic_table_set_with_a_named_key_is_in_the_history_under_its_name_and_in_the_model(
    stack, gateway, model, named_key
):
    weak = {"dataset": model, "estimator": "logistic_regression", "params": {"C": 1e-6}}
    assert gateway.post("/api/training/jobs", json=weak).status_code == 202
    finished_job(gateway, model, count=2)  # version 2, challenger (the manual policy)
    key_name, key = named_key
    table = {"canary": [{"version": 2, "percent": 20.0}], "shadows": []}
    with httpx.Client(base_url=stack.gateway_url, headers=credentials.auth_headers(key), timeout=30) as ops:
        put = ops.put(
            f"/api/models/{model}/traffic",
            params={"reason": "v2 on a fifth"},
            json=table,
            headers={ACTOR_HEADER: "mallory"},
        )
        assert put.status_code == 200, put.text
        (newest,) = entries(ops, model, limit=1)
        answered = ops.get(f"/api/models/{model}").json()
        refused = ops.put(f"/api/models/{model}/traffic", json={"canary": [{"version": 1, "percent": 5}]})
        cleared = ops.delete(f"/api/models/{model}/traffic")
        (last,) = entries(ops, model, limit=1)
    assert (put.json()["champion"], put.json()["champion_percent"], put.json()["changed_by"]) == (1, 80.0, key_name)
    assert (newest["actor"], newest["action"], newest["reason"]) == (key_name, "traffic.changed", "v2 on a fifth")
    assert newest["details"] == {"from": {"canary": [], "shadows": []}, "to": table}
    assert answered["traffic"] == table  # what every inference replica reads
    assert refused.status_code == 422 and "champion" in refused.json()["detail"]
    assert cleared.status_code == 200 and cleared.json()["traffic"] == {"canary": [], "shadows": []}
    assert (last["actor"], last["reason"], last["seq"]) == (key_name, "traffic cleared", newest["seq"] + 1)


def test_an_app_naming_the_gateway_as_its_caller_and_someone_as_actor_is_not_believed(stack, gateway, model):
    # Training may call the registry (dapr/access.yaml): through its sidecar, it claims to be the
    # gateway acting for "mallory". Its sidecar adds the real caller id beside the claimed one.
    training, registry = stack.app("training"), stack.app("registry")
    invoke = f"http://127.0.0.1:{training.http_port}/v1.0/invoke/{registry.app_id}/method"
    forged = stack.sidecar_headers() | {"dapr-caller-app-id": stack.app("gateway").app_id, ACTOR_HEADER: "mallory"}
    moved = httpx.put(f"{invoke}/api/models/{model}/aliases/staging", json={"version": 1}, headers=forged, timeout=30)
    assert moved.status_code == 200, moved.text
    newest = entries(gateway, model, limit=1)[0]
    assert newest["details"]["alias"] == "staging"
    assert newest["actor"] == "unknown", newest
    # Why: the registry saw both caller ids, the claimed one and the one training's sidecar set.
    log = next((stack.workdir / ".dapr" / "logs").glob(f"{registry.app_id}_app_*.log"))
    said = [line for line in log.read_text().splitlines() if "caller app ids" in line]
    assert said and stack.app("gateway").app_id in said[-1] and training.app_id in said[-1], said


def test_the_console_shows_who_moved_an_alias_and_why(stack, browser, shots, model, named_key):  # noqa: F811
    key_name, key = named_key
    with httpx.Client(base_url=stack.gateway_url, headers=credentials.auth_headers(key), timeout=30) as ops:
        reason = f"console check {uuid.uuid4().hex[:6]}"
        moved = ops.put(f"/api/models/{model}/aliases/canary", params={"reason": reason}, json={"version": 1})
        assert moved.status_code == 200, moved.text
    sign_in(browser, stack.gateway_url, stack.admin_key, route=f"models/{model}")
    newest = wait_for(browser, "#history tbody tr", text=reason)
    assert newest.find_element(By.CSS_SELECTOR, "[data-actor]").text == key_name
    assert "canary" in newest.text and "(api)" in newest.text
    browser.save_screenshot(str(shots / "history.png"))
    assert severe_logs(browser) == []
