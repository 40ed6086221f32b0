"""Promotion of a version trained on rows labeled through feedback (its lineage's feedback_rows,
a monitoring retrain), through the registry's routes over in-memory fakes: the registry reads the
lineage it registered and keeps such a version challenger unless the policy says as_any."""

import pytest

from tests.api.test_registry_aliases import promote
from tests.api.test_registry_api import ARTIFACT, registration


def register(client, job: str, feedback_rows: int = 0):
    body = registration(job=job)
    body["lineage"]["feedback_rows"] = feedback_rows
    client.ports.blobs.blobs[body["artifact"]["key"]] = ARTIFACT
    reply = client.post("/internal/models/iris/versions", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["version"]


def model(client):
    return client.get("/api/models/iris").json()


def newest_move(client):
    entries = client.get("/api/models/iris/history").json()["entries"]
    return next(e for e in entries if e["action"] == "alias.moved")


@pytest.fixture
def client(make_client):
    return make_client("registry")


def test_by_default_a_first_version_trained_on_feedback_waits_as_challenger(client):
    register(client, "job-1", feedback_rows=120)
    reply = promote(client, 1, 0.99)
    assert reply.status_code == 200 and reply.json()["alias"] == "challenger"
    assert model(client)["aliases"] == {"challenger": 1}
    move = newest_move(client)
    assert move["reason"].startswith(
        "version 1 was trained on 120 rows labeled through feedback: the policy's trained_on_feedback keeps it "
        "challenger"
    )
    assert move["details"]["feedback_rows"] == 120


def test_under_auto_a_better_version_trained_on_feedback_does_not_replace_the_champion(client):
    assert client.put("/api/models/iris/policy", json={"mode": "auto"}).status_code == 200
    register(client, "job-1")
    register(client, "job-2", feedback_rows=5)
    assert promote(client, 1, 0.80).json()["alias"] == "champion"
    # Scored against no champion (stale): no 409, since no champion's score decides it.
    held = promote(client, 2, 0.99)
    assert held.status_code == 200 and held.json()["alias"] == "challenger"
    assert model(client)["aliases"] == {"champion": 1, "challenger": 2}
    assert promote(client, 2, 0.99).json() == held.json()  # decided once
    # A person with the admin role moves champion.
    assert client.put("/api/models/iris/aliases/champion", json={"version": 2}).status_code == 200


def test_as_any_promotes_a_version_trained_on_feedback_as_any_version(client):
    policy = {"mode": "auto", "trained_on_feedback": "as_any"}
    assert client.put("/api/models/iris/policy", json=policy).json()["trained_on_feedback"] == "as_any"
    register(client, "job-1")
    register(client, "job-2", feedback_rows=5)
    assert promote(client, 1, 0.80).json()["alias"] == "champion"
    stale = promote(client, 2, 0.99)  # as any version: scored against the champion, or refused
    assert stale.status_code == 409
    beat = promote(client, 2, 0.99, champion=0.80, champion_version=1)
    assert beat.json()["alias"] == "champion" and model(client)["aliases"] == {"champion": 2}
    assert "trained_on_feedback is as_any" in newest_move(client)["reason"]


def test_a_policy_naming_another_rule_is_422(client):
    reply = client.put("/api/models/iris/policy", json={"trained_on_feedback": "never"})
    assert reply.status_code == 422 and "trained_on_feedback" in reply.text


def test_a_version_whose_details_are_lost_is_not_promoted(client):
    register(client, "job-1", feedback_rows=0)
    (key,) = [k for k in client.ports.state.items if k.startswith("model-version:iris:")]
    del client.ports.state.items[key]  # the version's details, lineage and all
    reply = client.post("/internal/models/iris/versions/1/promotion", json={"candidate": {"accuracy": 0.9}})
    assert reply.status_code == 500 and "lost" in reply.json()["detail"]
    assert model(client)["aliases"] == {} and model(client)["versions"][0]["promotion"] is None
