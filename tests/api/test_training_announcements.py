from services.common import events
from services.common.events import DatasetVersionCommitted, EventType

ROUTE = "/internal/events/dataset-versions"


def announce(client, version: int, dataset: str = "iris"):
    body = events.encode(
        EventType.DATASET_VERSION_COMMITTED,
        "/daprml/ingestion",
        DatasetVersionCommitted(dataset=dataset, version=version, row_count=150, schema_hash="h"),
    )
    return client.post(ROUTE, content=body, headers={"content-type": events.CLOUDEVENTS_JSON}).json()


def test_announced_versions_are_recorded_once_each(make_client):
    client = make_client("training")
    assert announce(client, 1) == {"status": "SUCCESS"}
    assert announce(client, 1) == {"status": "SUCCESS"}, "a repeated delivery is fine"
    assert announce(client, 2) == {"status": "SUCCESS"}
    body = client.get("/internal/datasets/iris/announced").json()
    assert body["versions"] == [1, 2] and body["events"]["2"]["row_count"] == 150


def test_an_invalid_announcement_is_dropped_and_records_nothing(make_client):
    client = make_client("training")
    bad = b'{"type": "io.daprml.dataset.version.committed.v1", "data": {"dataset": "Bad Name!", "version": 0}}'
    assert client.post(ROUTE, content=bad).json() == {"status": "DROP"}
    assert client.ports.state.items == {}
