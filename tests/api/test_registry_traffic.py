"""A model's traffic table over the registry's API: set, read, cleared, refused, recorded in the
history with who and why, announced through the outbox, and left by a version made champion."""

import asyncio

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.models import RegisterVersion, Traffic
from services.common.errors import ClientError
from services.common.events import EventType, ModelTrafficChanged
from services.registry.app import RegistryPorts, create_app
from services.registry.service import RegistryService
from services.registry.settings import Settings
from tests.api.test_registry_aliases import promote
from tests.api.test_registry_api import register, registration
from tests.api.test_registry_history import TOKEN, from_app
from tests.fakes import FakePublisher, SlowStateStore, fake_ports

TABLE = {"canary": [{"version": 2, "percent": 30}], "shadows": [{"version": 3, "percent": 20}]}
EMPTY = {"canary": [], "shadows": []}


def served(ports: RegistryPorts):
    """The registry behind its sidecar, iris with versions 1-4 and version 1 champion."""
    settings = Settings(app_api_token=TOKEN, gateway_app_id="gateway-r1", outbox_interval_s=3600)
    client = TestClient(create_app(settings, ports), headers=from_app(None))
    client.ports = ports
    for job in ("job-1", "job-2", "job-3", "job-4"):
        assert register(client, job=job).status_code == 201
    assert client.put("/api/models/iris/aliases/champion", json={"version": 1}).status_code == 200
    ports.publisher.sent.clear()
    ports.publisher.ids.clear()
    return client


@pytest.fixture
def client():
    with served(fake_ports(RegistryPorts)) as client:
        yield client


AS_OPS = from_app("gateway-r1", "ops key")  # a call through the gateway, for the key named "ops key"


def newest(client, n=1):
    return client.get("/api/models/iris/history", params={"limit": n}).json()["entries"]


def traffic_events(client):
    return [(p, i) for (t, p, _), i in zip(client.ports.publisher.sent, client.ports.publisher.ids, strict=True)
            if t == EventType.MODEL_TRAFFIC_CHANGED]  # fmt: skip


def test_a_table_is_set_recorded_with_the_keys_name_and_announced(client):
    reply = client.put("/api/models/iris/traffic?reason=v2 on a third", json=TABLE, headers=AS_OPS)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert {k: answer[k] for k in ("model", "champion", "champion_percent", "changed_by")} == {
        "model": "iris",
        "champion": 1,
        "champion_percent": 70.0,
        "changed_by": "ops key",
    }
    assert answer["traffic"] == {
        "canary": [{"version": 2, "percent": 30.0}],
        "shadows": [{"version": 3, "percent": 20.0}],
    }
    assert client.get("/api/models/iris/traffic").json() == answer
    assert client.get("/api/models/iris").json()["traffic"] == answer["traffic"]  # what inference reads
    (entry,) = newest(client)
    assert (entry["actor"], entry["action"], entry["reason"]) == ("ops key", "traffic.changed", "v2 on a third")
    assert (entry["details"]["from"], entry["details"]["to"]) == (EMPTY, answer["traffic"])
    assert answer["changed_at"] == entry["at"]
    (event, event_id), *_ = traffic_events(client)
    assert event == ModelTrafficChanged(model="iris", traffic=Traffic.model_validate(TABLE), reason="v2 on a third")
    assert event_id == f"iris-traffic-{entry['seq']}"
    assert client.ports.state.items["model:iris"].value.count(b'"outbox":[]') == 1  # published, then removed


def test_the_same_table_again_records_and_announces_nothing(client):
    first = client.put("/api/models/iris/traffic", json=TABLE, headers=AS_OPS).json()
    total = client.get("/api/models/iris/history").json()["total"]
    sent = len(client.ports.publisher.sent)
    again = client.put("/api/models/iris/traffic?reason=again", json=TABLE, headers=from_app("gateway-r1", "other"))
    assert again.status_code == 200 and again.json() == first  # still changed by the first key, then
    assert client.get("/api/models/iris/history").json()["total"] == total
    assert len(client.ports.publisher.sent) == sent


def test_delete_clears_the_table_with_a_reason_of_its_own(client):
    client.put("/api/models/iris/traffic", json=TABLE, headers=AS_OPS)
    reply = client.delete("/api/models/iris/traffic", headers=AS_OPS)
    assert reply.status_code == 200 and reply.json()["traffic"] == EMPTY and reply.json()["champion_percent"] == 100
    cleared, set_ = newest(client, 2)
    assert (set_["reason"], cleared["reason"]) == ("traffic set", "traffic cleared")
    assert [e.traffic for e, _ in traffic_events(client)] == [Traffic.model_validate(TABLE), Traffic()]
    total = client.get("/api/models/iris/history").json()["total"]
    assert client.delete("/api/models/iris/traffic").status_code == 200  # empty already: nothing recorded
    assert client.get("/api/models/iris/history").json()["total"] == total


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("iris/traffic", {"canary": [{"version": 9, "percent": 10}]}, 422, "has no version 9"),
        ("iris/traffic", {"canary": [{"version": 1, "percent": 10}]}, 422, "version 1 is the champion of model 'iris'"),
        ("iris/traffic", {"shadows": [{"version": 1, "percent": 10}]}, 422, "cannot be a canary or shadow of itself"),
        ("iris/traffic", {"canary": [{"version": 2, "percent": 60}, {"version": 3, "percent": 40}]}, 422,
         "add up to 100"),
        ("iris/traffic", {"canary": [{"version": 2, "percent": 10}], "shadows": [{"version": 2, "percent": 5}]}, 422,
         "more than once"),
        ("iris/traffic", {"canary": [{"version": 2, "percent": "half"}]}, 422, "percent"),
        ("iris/traffic", {"canary": [{"version": v, "percent": 1} for v in range(2, 8)]}, 422, "at most 5"),
        ("iris/traffic", {"weights": {"2": 10}}, 422, "weights"),
        ("iris/traffic?reason=" + "x" * 501, TABLE, 422, "reason"),
        ("wine/traffic", TABLE, 404, "does not exist"),
    ],
    ids=["unknown", "champion", "champion-shadow", "sum", "twice", "type", "too-many", "extra", "long-reason", "model"],
)  # fmt: skip
def test_a_bad_table_is_4xx_saying_why_and_changes_nothing(client, path, body, status, says):
    before = dict(client.ports.state.items)
    reply = client.put(f"/api/models/{path}", json=body)
    assert reply.status_code == status and says in reply.text, reply.text
    assert client.ports.state.items == before and client.ports.publisher.sent == []


def test_a_model_without_a_champion_is_409_until_it_has_one(make_client):
    client = make_client("registry")
    register(client, job="job-1")
    register(client, job="job-2")
    reply = client.put("/api/models/iris/traffic", json={"canary": [{"version": 2, "percent": 10}]})
    assert reply.status_code == 409 and "has no champion" in reply.json()["detail"]
    assert client.get("/api/models/iris/traffic").json()["champion"] is None
    assert client.delete("/api/models/iris/traffic").status_code == 200  # nothing to clear is no error
    client.put("/api/models/iris/aliases/champion", json={"version": 1})
    assert client.put("/api/models/iris/traffic", json={"canary": [{"version": 2, "percent": 10}]}).status_code == 200


def test_a_canary_promoted_to_champion_leaves_the_table_in_the_same_write(client):
    client.put("/api/models/iris/traffic", json=TABLE, headers=AS_OPS)
    client.headers["dapr-caller-app-id"] = "training-r1"
    assert client.put("/api/models/iris/policy", json={"mode": "auto"}).status_code == 200
    assert promote(client, 2, 0.95, champion=0.9, champion_version=1).json()["alias"] == "champion"
    answer = client.get("/api/models/iris/traffic").json()
    assert answer["champion"] == 2 and answer["traffic"] == {"canary": [], "shadows": TABLE["shadows"]}
    assert (answer["changed_by"], answer["champion_percent"]) == ("training-r1", 100)
    left, moved = newest(client, 2)
    assert (moved["action"], left["action"], left["actor"]) == ("alias.moved", "traffic.changed", "training-r1")
    assert left["reason"] == "version 2 became champion (promotion): it leaves the traffic table"
    event, _ = traffic_events(client)[-1]
    assert event.traffic == Traffic.model_validate({"shadows": TABLE["shadows"]}) and "version 2" in event.reason


def test_a_shadow_made_champion_by_hand_or_by_rollback_leaves_the_table(client):
    client.put("/api/models/iris/aliases/champion", json={"version": 2})
    client.put("/api/models/iris/traffic", json={"shadows": [{"version": 1, "percent": 50}]}, headers=AS_OPS)
    assert client.post("/api/models/iris/rollback", headers=AS_OPS).json()["version"] == 1
    answer = client.get("/api/models/iris/traffic").json()
    assert answer["traffic"] == EMPTY and answer["changed_by"] == "ops key"
    assert newest(client)[0]["reason"] == "version 1 became champion (rollback): it leaves the traffic table"


def test_changes_made_while_the_pubsub_is_down_are_announced_later_with_the_same_ids():
    publisher = FakePublisher()
    with served(fake_ports(RegistryPorts, publisher=publisher)) as client:
        publisher.down = True
        assert client.put("/api/models/iris/traffic", json=TABLE).status_code == 200  # committed all the same
        assert traffic_events(client) == []
        publisher.down = False
        asyncio.run(client.app.state.services[RegistryService].flush_all())
        ((event, event_id),) = traffic_events(client)
        assert event.traffic == Traffic.model_validate(TABLE) and event_id == f"iris-traffic-{newest(client)[0]['seq']}"


def test_a_table_racing_a_promotion_never_leaves_the_champion_in_the_table():
    """Compare-and-swap: whichever write lands second sees the first. Table first: the
    promotion takes version 2 out of it; promotion first: the table naming the champion is refused."""
    app = create_app(Settings(outbox_interval_s=3600), fake_ports(RegistryPorts, state=SlowStateStore()))
    service = app.state.services[RegistryService]
    table = Traffic.model_validate({"canary": [{"version": 2, "percent": 40}]})

    async def race():
        for job in ("a", "b"):
            await service.register("iris", RegisterVersion.model_validate(registration(job=job)))
        await service.set_alias("iris", "champion", 1, "ops key")
        return await asyncio.gather(
            service.set_traffic("iris", table, "ops key"),
            service.set_alias("iris", "champion", 2, "ops key"),
            return_exceptions=True,
        )

    set_, moved = asyncio.run(race())
    record = asyncio.run(service.record("iris"))
    actions = [e.action for e in asyncio.run(service.history("iris")).entries]  # newest first
    assert record.aliases["champion"] == 2 and moved.version == 2
    assert record.traffic == Traffic()
    if isinstance(set_, ClientError):  # the move landed first
        assert set_.status == 422 and "champion" in str(set_)
        assert actions == ["alias.moved", "alias.moved"]
    else:  # the table landed first, and the move took version 2 out of it
        assert actions == ["traffic.changed", "alias.moved", "traffic.changed", "alias.moved"]
