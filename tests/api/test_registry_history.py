"""A model's history over the registry's API: who (by the one rule of services/common/actor.py),
why and when of every alias move and policy change, paged; what the monitor records."""

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.events import EventType
from services.registry.app import RegistryPorts, create_app
from services.registry.settings import Settings
from tests.api.test_registry_aliases import promote
from tests.api.test_registry_api import register
from tests.fakes import fake_ports

TOKEN = "the-registry-sidecars-token"


def from_app(caller: str | None, actor: str | None = None, token: str = TOKEN) -> dict[str, str]:
    """The headers of a call as the registry's sidecar hands it over: its token, the caller's
    app id (set by the calling sidecar) and whatever the caller sent."""
    headers = {"dapr-api-token": token}
    if caller is not None:
        headers["dapr-caller-app-id"] = caller
    if actor is not None:
        headers[ACTOR_HEADER] = actor
    return headers


@pytest.fixture
def client():
    """The registry behind its sidecar (with the app token), iris with two versions."""
    settings = Settings(app_api_token=TOKEN, gateway_app_id="gateway-r1", outbox_interval_s=3600)
    ports = fake_ports(RegistryPorts)
    with TestClient(create_app(settings, ports), headers=from_app(None)) as client:
        client.ports = ports
        for job in ("job-1", "job-2"):
            assert register(client, job=job).status_code == 201
        yield client


def history(client, **query):
    reply = client.get("/api/models/iris/history", params=query)
    assert reply.status_code == 200, reply.text
    return reply.json()


def newest(client):
    return history(client, limit=1)["entries"][0]


# who


def test_an_alias_moved_through_the_gateway_is_recorded_as_moved_by_the_keys_name(client):
    reply = client.put(
        "/api/models/iris/aliases/champion?reason=v2 fixes the drift",
        json={"version": 2},
        headers=from_app("gateway-r1", "ops key"),
    )
    assert reply.status_code == 200
    entry = newest(client)
    assert (entry["seq"], entry["actor"], entry["action"], entry["reason"]) == (
        1,
        "ops key",
        "alias.moved",
        "v2 fixes the drift",
    )
    assert entry["details"] == {"alias": "champion", "from": None, "to": 2, "cause": "api"}
    assert entry["at"].endswith("Z") or "+00:00" in entry["at"]


@pytest.mark.parametrize(
    ("headers", "actor"),
    [
        (from_app("inference-r1", "mallory"), "inference-r1"),  # not the gateway: its actor header is no proof
        (from_app(None, "mallory"), "unknown"),  # no app called (a sidecar calling its own app)
        ([*from_app("gateway-r1", "mallory").items(), ("dapr-caller-app-id", "inference-r1")], "unknown"),
        (from_app("gateway-r1"), "gateway-r1"),  # the gateway, for no key
        (from_app("gateway-r1", "bad\tname"), "gateway-r1"),
    ],
    ids=["another-app", "no-caller", "two-callers", "gateway-without-key", "unwritable-name"],
)
def test_the_actor_header_is_believed_only_from_the_gateway(client, headers, actor):
    assert client.put("/api/models/iris/aliases/staging", json={"version": 1}, headers=headers).status_code == 200
    assert newest(client)["actor"] == actor


def test_without_the_app_token_to_prove_the_path_nobody_is_believed():
    # An app run without a token (none set): any process on the machine could send both headers.
    ports = fake_ports(RegistryPorts)
    with TestClient(create_app(Settings(gateway_app_id="gateway-r1"), ports)) as client:
        client.ports = ports
        register(client)
        client.put("/api/models/iris/aliases/staging", json={"version": 1}, headers=from_app("gateway-r1", "mallory"))
        assert newest(client)["actor"] == "unknown"


def test_a_promotion_is_recorded_as_the_training_apps_with_the_policys_reason(client):
    client.headers["dapr-caller-app-id"] = "training-r1"  # training asks for promotions
    assert client.put("/api/models/iris/policy", json={"mode": "auto"}).status_code == 200
    assert promote(client, 1, 0.81).status_code == 200
    assert promote(client, 2, 0.7, champion=0.8, champion_version=1).status_code == 200
    champion, challenger = history(client, limit=2)["entries"][::-1]
    assert (champion["actor"], champion["details"]["alias"], champion["details"]["cause"]) == (
        "training-r1",
        "champion",
        "promotion",
    )
    assert "no champion to beat" in champion["reason"] and champion["details"]["job_id"] == "job-1"
    assert challenger["details"]["alias"] == "challenger"
    assert challenger["reason"] == "auto policy: version 2's accuracy 0.7 is worse than champion version 1's 0.8"


def test_a_policy_change_is_recorded_with_before_and_after_and_the_same_policy_again_records_nothing(client):
    headers = from_app("gateway-r1", "trainer")
    client.put("/api/models/iris/policy?reason=new data is trusted", json={"mode": "auto"}, headers=headers)
    client.put("/api/models/iris/policy", json={"mode": "auto"}, headers=headers)
    (entry,) = history(client)["entries"]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("trainer", "policy.changed", "new data is trusted")
    assert (entry["details"]["from"]["mode"], entry["details"]["to"]["mode"]) == ("manual", "auto")


def test_rollback_and_removal_are_recorded_with_their_reasons(client):
    gateway = from_app("gateway-r1", "ops key")
    client.put("/api/models/iris/aliases/champion", json={"version": 1}, headers=gateway)
    client.put("/api/models/iris/aliases/champion", json={"version": 2}, headers=gateway)
    assert client.post("/api/models/iris/rollback?reason=v2 is slow", headers=gateway).status_code == 200
    assert client.delete("/api/models/iris/aliases/champion?reason=pause", headers=gateway).status_code == 204
    entries = history(client)["entries"]
    assert [(e["details"]["cause"], e["details"]["to"], e["reason"]) for e in entries[:2]] == [
        ("api", None, "pause"),
        ("rollback", 1, "v2 is slow"),
    ]


def test_each_entry_is_announced_with_its_seq_actor_and_reason(client):
    client.put("/api/models/iris/aliases/champion?reason=go", json={"version": 1}, headers=from_app("gateway-r1", "k"))
    publisher = client.ports.publisher
    recorded = [
        (p, i)
        for (t, p, _), i in zip(publisher.sent, publisher.ids, strict=True)
        if t == EventType.MODEL_HISTORY_RECORDED
    ]
    ((payload, event_id),) = recorded
    assert event_id == "iris-history-1"
    assert (payload.model, payload.seq, payload.actor, payload.action, payload.reason) == (
        "iris",
        1,
        "k",
        "alias.moved",
        "go",
    )


# reading


def test_the_model_keeps_its_latest_alias_moves_with_who_moved_them(client):
    client.put("/api/models/iris/aliases/champion", json={"version": 1}, headers=from_app("gateway-r1", "ops key"))
    (move,) = client.get("/api/models/iris").json()["history"]
    assert (move["alias"], move["from"], move["to"], move["reason"], move["actor"]) == (
        "champion",
        None,
        1,
        "api",
        "ops key",
    )


def test_history_pages_go_newest_first_with_the_cursor_for_the_next(client):
    for i in range(5):
        client.put("/api/models/iris/aliases/champion", json={"version": 1 + i % 2})
    first = history(client, limit=2)
    assert (first["total"], [e["seq"] for e in first["entries"]], first["next_before"]) == (5, [5, 4], 4)
    last = history(client, before=2, limit=2)
    assert ([e["seq"] for e in last["entries"]], last["next_before"]) == ([1], None)


def test_a_model_without_history_has_an_empty_one(client):
    assert history(client) == {"model": "iris", "total": 0, "entries": [], "next_before": None}


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/models/wine/history", 404, "does not exist"),
        ("/api/models/iris/history?limit=1001", 400, "limit must be between 1 and 200"),
        ("/api/models/iris/history?limit=0", 422, "limit"),
        ("/api/models/iris/history?before=0", 422, "before"),
        ("/api/models/IRIS/history", 422, "name"),
    ],
)
def test_a_bad_history_request_is_4xx_saying_why(client, path, status, says):
    reply = client.get(path)
    assert reply.status_code == status and says in reply.text


def test_a_reason_too_long_is_422_and_changes_nothing(client):
    before = dict(client.ports.state.items)
    reply = client.put(f"/api/models/iris/aliases/champion?reason={'x' * 501}", json={"version": 1})
    assert reply.status_code == 422 and "reason" in reply.text
    assert client.ports.state.items == before


# what the monitor records


def test_the_monitor_records_its_actions_as_itself_or_for_the_key_it_acts_for(client):
    monitor = from_app("monitor-r1")
    reply = client.post(
        "/internal/models/iris/history",
        json={"action": "monitoring.check", "reason": "petal drifted", "details": {"psi": 0.41}},
        headers=monitor,
    )
    assert reply.status_code == 201 and reply.json()["seq"] == 1 and reply.json()["actor"] == "monitor-r1"
    client.post(
        "/internal/models/iris/history",
        json={"action": "monitoring.policy.changed", "actor": "ops key", "details": {"action": "retrain"}},
        headers=monitor,
    )
    entry = newest(client)
    assert (entry["actor"], entry["details"]) == ("ops key", {"action": "retrain", "via": "monitor-r1"})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"action": "alias.moved"}, "monitoring"),
        ({"action": "policy.changed"}, "monitoring"),
        ({"action": "monitoring.check", "details": {"blob": "x" * 5000}}, "at most 4096"),
        ({"action": "monitoring.check", "reason": "x" * 2001}, "reason"),
    ],
)
def test_others_may_record_only_monitoring_actions_of_bounded_size(client, body, says):
    reply = client.post("/internal/models/iris/history", json=body)
    assert reply.status_code == 422 and says in reply.text
    assert history(client)["total"] == 0


def test_recording_for_a_model_that_does_not_exist_is_404(client):
    reply = client.post("/internal/models/wine/history", json={"action": "monitoring.check"})
    assert reply.status_code == 404 and "does not exist" in reply.text
