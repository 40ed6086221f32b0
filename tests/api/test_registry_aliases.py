"""Aliases, promotion, rollback and their history, over in-memory fakes."""

import asyncio

import pytest

from services.common.contracts.models import RegisterVersion
from services.common.events import EventType
from services.registry.app import RegistryPorts, create_app
from services.registry.service import RegistryService
from services.registry.settings import Settings
from tests.api.test_registry_api import register, registration
from tests.fakes import SlowStateStore, fake_ports


@pytest.fixture
def client(make_client):
    """iris with three versions and the auto policy (most tests here are about its rule; those
    of the default, manual, say so)."""
    client = make_client("registry")
    for i in range(1, 4):
        register(client, job=f"job-{i}", accuracy=0.8 + i / 100)
    assert client.put("/api/models/iris/policy", json={"mode": "auto"}).status_code == 200
    client.ports.publisher.sent.clear()
    client.ports.publisher.ids.clear()
    return client


@pytest.fixture
def default(make_client):
    """iris with three versions and the policy a model has unless someone sets one."""
    client = make_client("registry")
    for i in range(1, 4):
        register(client, job=f"job-{i}", accuracy=0.8 + i / 100)
    return client


def model(client):
    return client.get("/api/models/iris").json()


def promote(client, version, candidate, champion=None, champion_version=None, metric="accuracy"):
    body = {"candidate": {metric: candidate}}
    if champion is not None:
        body |= {"champion": {metric: champion}, "champion_version": champion_version}
    return client.post(f"/internal/models/iris/versions/{version}/promotion", json=body)


def moves(client):
    return [(h["alias"], h["from"], h["to"], h["reason"]) for h in model(client)["history"]]


# aliases through the API


def test_put_an_alias_points_it_at_a_version_and_records_the_move(client):
    reply = client.put("/api/models/iris/aliases/champion", json={"version": 2})
    assert reply.status_code == 200
    assert reply.json() == {"model": "iris", "alias": "champion", "version": 2, "previous": None}
    assert model(client)["aliases"] == {"champion": 2}
    assert moves(client) == [("champion", None, 2, "api")]
    assert client.get("/api/models/iris/versions/2").json()["aliases"] == ["champion"]


def test_put_the_same_alias_again_records_nothing_more(client):
    client.put("/api/models/iris/aliases/staging", json={"version": 1})
    client.put("/api/models/iris/aliases/staging", json={"version": 1})
    assert len(moves(client)) == 1
    assert [t for t, _, _ in client.ports.publisher.sent] == [
        EventType.MODEL_ALIAS_CHANGED,
        EventType.MODEL_HISTORY_RECORDED,
    ]


def test_delete_an_alias_removes_it_and_records_the_move(client):
    client.put("/api/models/iris/aliases/staging", json={"version": 1})
    assert client.delete("/api/models/iris/aliases/staging").status_code == 204
    assert model(client)["aliases"] == {}
    assert moves(client)[-1] == ("staging", 1, None, "api")


def test_each_alias_change_is_announced_with_from_and_to(client):
    client.put("/api/models/iris/aliases/champion", json={"version": 1})
    client.put("/api/models/iris/aliases/champion", json={"version": 3})
    publisher = client.ports.publisher
    sent = zip(publisher.sent, publisher.ids, strict=True)
    aliases = [(payload, subject, i) for (t, payload, subject), i in sent if t == EventType.MODEL_ALIAS_CHANGED]
    (first, _, _), (second, subject, _) = aliases
    assert subject == "iris/champion" and first.to_version == 1
    assert (second.from_version, second.to_version, second.reason) == (1, 3, "api")
    # Its id is its entry's place in the model's history (the policy change of the fixture is entry 1).
    assert [i for _, _, i in aliases] == ["iris-alias-2", "iris-alias-3"]


@pytest.mark.parametrize(
    ("request_", "status", "says"),
    [
        (("put", "/api/models/iris/aliases/Champion", {"version": 1}), 400, "lower-case letters"),
        (("put", "/api/models/iris/aliases/42", {"version": 1}), 400, "reads as a version"),
        (("put", "/api/models/iris/aliases/champion", {"version": 9}), 404, "no version 9"),
        (("put", "/api/models/iris/aliases/champion", {"version": "two"}), 422, "version"),
        (("put", "/api/models/iris/aliases/champion", {}), 422, "version"),
        (("put", "/api/models/wine/aliases/champion", {"version": 1}), 404, "does not exist"),
        (("delete", "/api/models/iris/aliases/staging", None), 404, "no alias 'staging'"),
        (("delete", "/api/models/iris/aliases/Bad!", None), 400, "not a valid alias"),
        (("post", "/api/models/iris/rollback", None), 409, "no earlier champion"),
        (("put", "/api/models/iris/policy", {"mode": "sometimes"}), 422, "mode"),
        (("put", "/api/models/iris/policy", {"metric": "R2 score"}), 422, "metric"),
    ],
)
def test_bad_alias_requests_are_4xx_saying_why_and_change_nothing(client, request_, status, says):
    method, path, body = request_
    before = dict(client.ports.state.items)
    reply = client.request(method, path, json=body)
    assert reply.status_code == status and says in reply.text
    assert client.ports.state.items == before and client.ports.publisher.sent == []


def test_two_racing_alias_moves_one_wins_and_both_are_in_the_history():
    app = create_app(Settings(outbox_interval_s=3600), fake_ports(RegistryPorts, state=SlowStateStore()))
    service = app.state.services[RegistryService]

    async def race():
        for job in ("a", "b"):
            await service.register("iris", RegisterVersion.model_validate(registration(job=job)))
        return await asyncio.gather(
            service.set_alias("iris", "champion", 1, "key a"), service.set_alias("iris", "champion", 2, "key b")
        )

    first, second = asyncio.run(race())
    record = asyncio.run(service.record("iris"))
    history = [(c.from_version, c.to_version) for c in record.recent]
    assert len(history) == 2 and history[0][0] is None and history[1][0] == history[0][1]
    assert record.aliases["champion"] == history[1][1]
    assert {first.previous, second.previous} == {None, history[0][1]}


# promotion, as training asks for it


def test_the_first_version_becomes_champion(client):
    reply = promote(client, 1, 0.81)
    assert reply.status_code == 200
    assert reply.json()["alias"] == "champion" and reply.json()["champion"] is None
    assert model(client)["aliases"] == {"champion": 1}
    assert moves(client) == [("champion", None, 1, "promotion")]


def test_a_better_version_becomes_champion(client):
    promote(client, 1, 0.81)
    reply = promote(client, 2, 0.85, champion=0.80, champion_version=1)
    assert reply.json()["alias"] == "champion" and reply.json()["metric"] == "accuracy"
    assert model(client)["aliases"] == {"champion": 2}


def test_an_equal_version_becomes_champion(client):
    promote(client, 1, 0.81)
    assert promote(client, 2, 0.8, champion=0.8, champion_version=1).json()["alias"] == "champion"


def test_a_worse_version_becomes_challenger_and_the_champion_stays(client):
    promote(client, 1, 0.81)
    reply = promote(client, 2, 0.7, champion=0.8, champion_version=1)
    assert reply.json()["alias"] == "challenger"
    assert model(client)["aliases"] == {"champion": 1, "challenger": 2}
    assert model(client)["versions"][1]["promotion"]["alias"] == "challenger"


def test_a_repeated_promotion_answers_the_same_and_moves_nothing(client):
    promote(client, 1, 0.81)
    first = promote(client, 2, 0.9, champion=0.8, champion_version=1).json()
    sent = len(client.ports.publisher.sent)
    again = promote(client, 2, 0.9, champion=0.8, champion_version=1)
    assert again.status_code == 200 and again.json() == first
    assert moves(client) == [("champion", None, 1, "promotion"), ("champion", 1, 2, "promotion")]
    assert len(client.ports.publisher.sent) == sent


def test_a_promotion_scored_against_a_champion_that_has_moved_is_409(client):
    promote(client, 1, 0.81)
    client.put("/api/models/iris/aliases/champion", json={"version": 3})
    reply = promote(client, 2, 0.9, champion=0.8, champion_version=1)
    assert reply.status_code == 409 and "version 3 as champion now" in reply.json()["detail"]
    assert model(client)["versions"][1]["promotion"] is None


def test_by_default_a_better_version_becomes_challenger_and_a_person_moves_champion(default):
    assert model(default)["policy"] == {
        "mode": "manual",
        "metric": None,
        "first_champion": True,
        "trained_on_feedback": "challenger",
        "rollout": None,
    }
    first = promote(default, 1, 0.81)
    assert first.json()["alias"] == "champion" and first.json()["policy"] == "manual"  # nothing served yet
    better = promote(default, 2, 0.99, champion=0.81, champion_version=1)
    assert better.json()["alias"] == "challenger" and better.json()["candidate"] == 0.99
    assert model(default)["aliases"] == {"champion": 1, "challenger": 2}
    assert default.put("/api/models/iris/aliases/champion", json={"version": 2}).status_code == 200


def test_by_default_a_model_whose_champion_was_removed_gets_none_back_by_itself(default):
    promote(default, 1, 0.81)
    assert default.delete("/api/models/iris/aliases/champion").status_code == 204
    assert promote(default, 2, 0.99).json()["alias"] == "challenger"
    assert "champion" not in model(default)["aliases"]


def test_manual_without_first_champion_leaves_even_the_first_version_to_a_person(default):
    policy = {
        "mode": "manual",
        "metric": None,
        "first_champion": False,
        "trained_on_feedback": "challenger",
        "rollout": None,
    }
    assert default.put("/api/models/iris/policy", json=policy).json() == policy
    reply = promote(default, 1, 0.99)
    assert reply.json()["alias"] == "challenger" and reply.json()["policy"] == "manual"
    assert model(default)["aliases"] == {"challenger": 1}


def test_a_policy_metric_where_lower_is_better(client):
    client.put("/api/models/iris/policy", json={"mode": "auto", "metric": "log_loss"})
    promote(client, 1, 0.5, metric="log_loss")
    assert promote(client, 2, 0.4, champion=0.5, champion_version=1, metric="log_loss").json()["alias"] == "champion"
    assert promote(client, 3, 0.6, champion=0.4, champion_version=2, metric="log_loss").json()["alias"] == "challenger"


def test_a_policy_can_be_set_before_the_model_has_versions(client):
    assert client.put("/api/models/houses/policy", json={"mode": "manual"}).status_code == 200
    assert client.get("/api/models/houses").json()["versions"] == []
    assert "houses" in [m["name"] for m in client.get("/api/models").json()["models"]]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"candidate": {"f1_macro": 0.9}}, 422, "'accuracy'"),
        ({"candidate": {}}, 422, "candidate"),
        ({"candidate": {"accuracy": 0.9}, "champion_version": 1}, 422, "go together"),
        ({"candidate": {"accuracy": "good"}}, 422, "accuracy"),
    ],
)
def test_a_bad_promotion_request_is_4xx_and_changes_nothing(client, body, status, says):
    before = dict(client.ports.state.items)
    reply = client.post("/internal/models/iris/versions/1/promotion", json=body)
    assert reply.status_code == status and says in reply.text
    assert client.ports.state.items == before


def test_promoting_a_version_that_does_not_exist_is_404(client):
    assert promote(client, 9, 0.9).status_code == 404
    assert client.post("/internal/models/wine/versions/1/promotion", json={"candidate": {"a": 1}}).status_code == 404


# rollback


def test_rollback_restores_the_previous_champion_and_records_it(client):
    promote(client, 1, 0.81)
    promote(client, 2, 0.9, champion=0.8, champion_version=1)
    reply = client.post("/api/models/iris/rollback")
    assert reply.status_code == 200
    assert reply.json() == {"model": "iris", "alias": "champion", "version": 1, "previous": 2}
    assert model(client)["aliases"]["champion"] == 1
    assert moves(client)[-1] == ("champion", 2, 1, "rollback")
    assert client.post("/api/models/iris/rollback").status_code == 409  # version 1 was the first champion
