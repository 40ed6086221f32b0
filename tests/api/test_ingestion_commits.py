"""Commits that lose races: whatever the outcome, every manifest in the state store belongs to
a version, and a commit that keeps losing ends with a 409 saying to commit again."""

import pytest

from services.common.contracts import MissingPolicy
from services.ingestion.domain.model import DatasetRecord
from tests.fakes import FakeStateStore

CSV = {"content-type": "text/csv"}
IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
MORE = b"sepal,petal,species\n1,1,a\n2,2,b\n"


class RacingState(FakeStateStore):
    """Another writer changes the dataset record between each of the next `races` reads of it
    and the compare-and-swap that follows: `race` gets the stored record and the one being
    written, and returns what the other writer stores."""

    def __init__(self):
        super().__init__()
        self.races, self.race = 0, None

    async def save(self, key, value, etag=None):
        if key == "dataset:iris" and etag is not None and self.races > 0:
            self.races -= 1
            stored = DatasetRecord.model_validate_json(self.items[key].value)
            theirs = self.race(stored, DatasetRecord.model_validate_json(value))
            await super().save(key, theirs.model_dump_json().encode())
        await super().save(key, value, etag)


@pytest.fixture
def state():
    return RacingState()


@pytest.fixture
def client(make_client, state):
    client = make_client("ingestion", state=state)
    assert client.post("/api/datasets/iris/versions?target=species", content=IRIS, headers=CSV).status_code == 201
    return client


def commit(client, body=MORE):
    upload_id = client.post("/api/datasets/iris/uploads").json()["upload_id"]
    assert client.put(f"/api/datasets/iris/uploads/{upload_id}/parts/1", content=body, headers=CSV).status_code == 200
    return upload_id, client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")


def manifests(state) -> tuple[set[str], set[str]]:
    """The manifests stored, and those the dataset record points at."""
    record = DatasetRecord.model_validate_json(state.items["dataset:iris"].value)
    return {k for k in state.items if k.startswith("manifest:")}, {v.manifest_key for v in record.versions}


def someone_elses(state, ours: DatasetRecord, **changes) -> DatasetRecord:
    """Our newest version, as if another upload had committed it (with its own manifest)."""
    mine = ours.versions[-1]
    key = f"manifest:iris:v{mine.version}:someone-else"
    state.items[key] = state.items[mine.manifest_key]
    ours.versions[-1] = mine.model_copy(update={"upload_id": "someone-else", "manifest_key": key, **changes})
    return ours


def test_a_commit_that_loses_the_race_for_a_number_takes_the_next_and_leaves_no_manifest_behind(client, state):
    state.races, state.race = 1, lambda stored, ours: someone_elses(state, ours, sha256="other content")
    _, reply = commit(client)
    assert reply.status_code == 201 and reply.json()["version"] == 3
    stored, referenced = manifests(state)
    assert stored == referenced and len(referenced) == 3


def test_a_commit_whose_content_another_commit_stored_first_is_unchanged_and_leaves_no_manifest(client, state):
    state.races, state.race = 1, lambda stored, ours: someone_elses(state, ours)
    _, reply = commit(client)
    assert reply.status_code == 200 and reply.json()["unchanged"] is True and reply.json()["version"] == 2
    stored, referenced = manifests(state)
    assert stored == referenced and len(referenced) == 2


def test_a_commit_that_finds_the_schema_changed_is_409_and_leaves_no_manifest(client, state):
    def change_schema(stored, ours):
        stored.schema_.columns[0].missing = MissingPolicy.REJECT
        return stored

    state.races, state.race = 1, change_schema
    _, reply = commit(client)
    assert reply.status_code == 409 and "changed its schema while this upload was open" in reply.json()["detail"]
    stored, referenced = manifests(state)
    assert stored == referenced and len(referenced) == 1


def test_a_commit_that_loses_every_race_is_409_busy_leaves_no_manifest_and_can_be_committed_again(client, state):
    state.races, state.race = 1000, lambda stored, ours: stored
    upload_id, reply = commit(client)
    assert reply.status_code == 409
    assert reply.json()["detail"] == "dataset 'iris' is busy: 20 commits raced this one; commit again"
    assert state.races == 1000 - 20
    stored, referenced = manifests(state)
    assert stored == referenced and len(referenced) == 1
    state.races = 0
    again = client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")
    assert again.status_code == 201 and again.json()["version"] == 2
