"""The registry's metrics over in-memory fakes: versions registered (once per job), alias moves
by alias and reason (an alias a person named counts as `other`), promotions by outcome."""

from prometheus_client import generate_latest

from tests.api.test_registry_aliases import promote
from tests.api.test_registry_api import register


def value(client, name: str, **labels: str) -> float:
    found = client.app.state.metrics.get_sample_value(name, labels)
    return 0.0 if found is None else found


def moved(client, alias: str, reason: str) -> float:
    return value(client, "daprml_registry_alias_moves_total", alias=alias, reason=reason)


def test_versions_count_once_per_job(make_client):
    client = make_client("registry")
    for job in ("job-1", "job-2", "job-1", "job-3"):
        assert register(client, job=job).status_code in (200, 201)
    assert value(client, "daprml_registry_versions_registered_total") == 3


def test_alias_moves_by_alias_and_reason_and_promotions_by_outcome(make_client):
    client = make_client("registry")
    for i in range(1, 5):
        register(client, job=f"job-{i}", accuracy=0.8 + i / 100)
    assert client.put("/api/models/iris/policy", json={"mode": "auto"}).status_code == 200
    assert promote(client, 1, 0.81).json()["alias"] == "champion"
    assert promote(client, 2, 0.7, champion=0.81, champion_version=1).json()["alias"] == "challenger"
    assert promote(client, 2, 0.7, champion=0.81, champion_version=1).status_code == 200  # decided: not again
    assert client.put("/api/models/iris/aliases/champion", json={"version": 3}).status_code == 200
    assert client.put("/api/models/iris/aliases/champion", json={"version": 3}).status_code == 200  # no move
    assert promote(client, 4, 0.9, champion=0.8, champion_version=1).status_code == 409  # the champion moved
    assert client.post("/api/models/iris/rollback").status_code == 200
    assert client.put("/api/models/iris/aliases/staging-x7", json={"version": 2}).status_code == 200
    assert client.delete("/api/models/iris/aliases/staging-x7").status_code == 204

    promotions = "daprml_registry_promotions_total"
    assert value(client, promotions, outcome="champion") == 1
    assert value(client, promotions, outcome="challenger") == 1
    assert value(client, promotions, outcome="conflict") == 1
    assert moved(client, "champion", "promotion") == 1
    assert moved(client, "challenger", "promotion") == 1
    assert moved(client, "champion", "api") == 1
    assert moved(client, "champion", "rollback") == 1
    assert moved(client, "other", "api") == 2
    text = generate_latest(client.app.state.metrics).decode()
    assert "staging-x7" not in text and "iris" not in text  # names a caller chose are no labels
