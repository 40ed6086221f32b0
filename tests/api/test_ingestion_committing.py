"""An upload being committed takes no abort and no part, so nothing deletes the files of the
version it is made into; a commit that died halfway is finished by committing again, or by
the expiry job (committed if it made its version, aborted if not)."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.ingestion.service import IngestionService
from tests.fakes import FakeStateStore

CSV = {"content-type": "text/csv"}
IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
MORE = b"sepal,petal,species\n1,1,a\n2,2,b\n"
OTHER = b"sepal,petal,species\n3,3,c\n"


class Killed(Exception):
    """The process died here."""


class AtTheCommit(FakeStateStore):
    """Runs `action` once, when a commit writes the dataset record with its new version (the
    compare-and-swap): just before that write, or just after it, when the version is
    committed but the upload session not ended yet."""

    def __init__(self):
        super().__init__()
        self.when: str | None = None
        self.action: Callable[[], Awaitable[None]] | None = None

    async def save(self, key, value, etag=None):
        action = self.action if key == "dataset:iris" and etag is not None else None
        if action is not None:
            self.action = None
            if self.when == "before":
                await action()
        await super().save(key, value, etag)
        if action is not None and self.when == "after":
            await action()


@pytest.fixture
def state():
    return AtTheCommit()


@pytest.fixture
def client(make_client, state):
    client = make_client("ingestion", state=state)
    assert client.post("/api/datasets/iris/versions?target=species", content=IRIS, headers=CSV).status_code == 201
    return client


async def meanwhile(client, method: str, url: str, **kwargs) -> httpx.Response:
    """A request that arrives while another is being served (the TestClient waits for each)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://test") as other:
        return await other.request(method, url, **kwargs)


def start(client) -> str:
    upload_id = client.post("/api/datasets/iris/uploads").json()["upload_id"]
    assert client.put(f"/api/datasets/iris/uploads/{upload_id}/parts/1", content=MORE, headers=CSV).status_code == 200
    return upload_id


def files_of(client, upload_id: str) -> set[str]:
    """The upload's part files: rows and fingerprints in the blob store, records in state."""
    return {k for k in [*client.ports.blobs.blobs, *client.ports.state.items] if upload_id in k and "part" in k}


def versions(client) -> list[int]:
    return [v["version"] for v in client.get("/api/datasets/iris").json()["versions"]]


def open_uploads(client) -> dict[str, str]:
    return asyncio.run(client.app.state.services[IngestionService].repo.open_uploads())


def test_an_abort_while_the_version_is_being_committed_is_409_and_the_version_keeps_its_rows(client, state):
    upload_id = start(client)
    answers = []

    async def abort():
        answers.append(await meanwhile(client, "DELETE", f"/api/datasets/iris/uploads/{upload_id}"))

    state.when, state.action = "after", abort
    reply = client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")
    (aborted,) = answers
    assert aborted.status_code == 409
    assert aborted.json()["detail"] == (
        f"upload '{upload_id}' is being committed, so it cannot be aborted; wait for the commit to finish "
        f"(if it failed, commit again: that finishes it), then read the version it made"
    )
    assert reply.status_code == 201 and reply.json()["version"] == 2
    rows = client.get("/api/datasets/iris/versions/2/rows")
    assert rows.status_code == 200 and [r["species"] for r in rows.json()["rows"]] == ["a", "b"]
    assert client.get(f"/api/datasets/iris/uploads/{upload_id}").json()["state"] == "committed"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_part_sent_while_the_upload_is_being_committed_is_409_and_stores_nothing(client, state, when):
    upload_id = start(client)
    kept = files_of(client, upload_id)
    answers = []

    async def put_part():
        url = f"/api/datasets/iris/uploads/{upload_id}/parts/2"
        answers.append(await meanwhile(client, "PUT", url, content=OTHER, headers=CSV))

    state.when, state.action = when, put_part
    reply = client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")
    (part,) = answers
    assert part.status_code == 409
    assert part.json()["detail"] == (
        f"upload '{upload_id}' is being committed and takes no more parts; send more data in a new upload"
    )
    assert reply.status_code == 201 and reply.json()["row_count"] == 2
    assert client.get(f"/api/datasets/iris/uploads/{upload_id}").json()["parts"] == [1]
    assert files_of(client, upload_id) == kept, "nothing of part 2 is stored, nothing of part 1 deleted"


def die(client, state, when: str) -> str:
    """An upload whose commit died just before or just after writing its version."""
    upload_id = start(client)

    async def kill():
        raise Killed

    state.when, state.action = when, kill
    with pytest.raises(Killed):
        client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")
    assert client.get(f"/api/datasets/iris/uploads/{upload_id}").json()["state"] == "committing"
    assert versions(client) == ([1, 2] if when == "after" else [1])
    return upload_id


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_commit_that_died_halfway_is_finished_by_committing_again(client, state, when):
    upload_id = die(client, state, when)
    assert client.delete(f"/api/datasets/iris/uploads/{upload_id}").status_code == 409, "nor aborted meanwhile"
    assert client.put(f"/api/datasets/iris/uploads/{upload_id}/parts/2", content=OTHER, headers=CSV).status_code == 409
    reply = client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")
    assert reply.status_code == 201 and reply.json()["version"] == 2 and reply.json()["row_count"] == 2
    assert versions(client) == [1, 2]
    assert client.get("/api/datasets/iris/versions/2/rows").json()["total"] == 2
    upload = client.get(f"/api/datasets/iris/uploads/{upload_id}").json()
    assert upload["state"] == "committed" and upload["version"] == 2
    assert open_uploads(client) == {}


def later(client) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=client.app.state.services[IngestionService].settings.upload_ttl_s + 1)


def test_expiry_ends_a_commit_that_died_after_making_its_version_as_committed_and_keeps_its_rows(client, state):
    upload_id = die(client, state, "after")
    kept = files_of(client, upload_id)
    service = client.app.state.services[IngestionService]
    assert asyncio.run(service.expire_uploads()) == [], "its commit may still be running"
    assert asyncio.run(service.expire_uploads(later(client))) == [], "not aborted"
    upload = client.get(f"/api/datasets/iris/uploads/{upload_id}").json()
    assert upload["state"] == "committed" and upload["version"] == 2
    rows = client.get("/api/datasets/iris/versions/2/rows")
    assert rows.status_code == 200 and rows.json()["total"] == 2
    assert kept and files_of(client, upload_id) == kept
    assert open_uploads(client) == {}


def test_expiry_aborts_a_commit_that_died_before_making_its_version_and_deletes_its_parts(client, state):
    upload_id = die(client, state, "before")
    service = client.app.state.services[IngestionService]
    assert asyncio.run(service.expire_uploads()) == []
    assert asyncio.run(service.expire_uploads(later(client))) == [upload_id]
    assert client.get(f"/api/datasets/iris/uploads/{upload_id}").json()["state"] == "aborted"
    assert files_of(client, upload_id) == set()
    assert versions(client) == [1]
    assert open_uploads(client) == {}


def test_expiry_leaves_an_old_upload_alone_while_its_commit_is_recent(client, state):
    upload_id = die(client, state, "before")
    long_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    asyncio.run(state.save("uploads:open", json.dumps({upload_id: long_ago}).encode()))
    assert asyncio.run(client.app.state.services[IngestionService].expire_uploads()) == []
    assert client.get(f"/api/datasets/iris/uploads/{upload_id}").json()["state"] == "committing"
    assert client.post(f"/api/datasets/iris/uploads/{upload_id}/commit").status_code == 201
