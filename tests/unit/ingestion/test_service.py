"""Use cases under races the API tests cannot line up."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.common.ports import SidecarUnavailable
from services.ingestion.domain.errors import Conflict
from services.ingestion.domain.model import UploadSession
from services.ingestion.repository import DatasetRepository
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings
from tests.fakes import FakeBlobStore, FakePublisher, FakeStateStore

IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"


class CommitBetween(FakeStateStore):
    """When the second of two identical parts has stored its files, waits for the first to be
    recorded in the session and commits the upload, before the second records itself."""

    def __init__(self):
        super().__init__()
        self.service: IngestionService | None = None
        self.part_saves = 0

    async def save(self, key, value, etag=None):
        await super().save(key, value, etag)
        if key.startswith("part:"):
            self.part_saves += 1
            if self.part_saves == 2:
                upload = next(k for k in self.items if k.startswith("upload:"))
                while not UploadSession.model_validate_json(self.items[upload].value).parts:
                    await asyncio.sleep(0)
                await self.service.commit(upload.removeprefix("upload:"))


def test_the_same_part_sent_twice_while_the_upload_is_committed_keeps_the_committed_rows():
    state, blobs = CommitBetween(), FakeBlobStore()
    service = IngestionService(DatasetRepository(state, blobs), FakePublisher(), Settings())
    state.service = service

    async def race():
        session = await service.start_upload("iris", target="species")
        return await asyncio.gather(
            *(service.put_part(session.id, 1, IRIS, "text/csv") for _ in range(2)), return_exceptions=True
        )

    results = asyncio.run(race())
    assert sum(isinstance(r, Conflict) and "committed while this part was on its way" in str(r) for r in results) == 1
    rows = asyncio.run(service.rows("iris", "1", 0, 10))
    assert rows.total == 3 and len(rows.rows) == 3


def test_a_session_that_keeps_changing_under_a_part_is_a_409_saying_to_send_it_again():
    class Racing(FakeStateStore):
        async def get(self, key):
            found = await super().get(key)
            if key.startswith("upload:") and found is not None:
                await super().save(key, found.value)  # someone else wrote it meanwhile
            return found

    service = IngestionService(DatasetRepository(Racing(), FakeBlobStore()), FakePublisher(), Settings())

    async def put():
        session = await service.start_upload("iris", target="species")
        await service.put_part(session.id, 1, IRIS, "text/csv")

    with pytest.raises(
        Conflict, match="is busy: other requests changed it each time this one tried; send this one again"
    ):
        asyncio.run(put())
    assert service.repo.blobs.blobs == {}, "the part's files are not left behind"


class FailingCommit(FakeStateStore):
    """Fails the next commit's write of the dataset record when `fail` is set, as a state store
    that went away would; runs `on_read` once at the next read of the dataset record."""

    def __init__(self):
        super().__init__()
        self.fail = False
        self.on_read: Callable[[], Awaitable[Any]] | None = None

    async def save(self, key, value, etag=None):
        if key == "dataset:iris" and etag is not None and self.fail:
            self.fail = False
            raise SidecarUnavailable("the state store went away")
        await super().save(key, value, etag)

    async def get(self, key):
        if key == "dataset:iris" and self.on_read is not None:
            action, self.on_read = self.on_read, None
            await action()
        return await super().get(key)


def test_a_commit_begun_again_while_expiry_ends_the_dead_one_wins_and_keeps_the_parts():
    state = FailingCommit()
    service = IngestionService(DatasetRepository(state, FakeBlobStore()), FakePublisher(), Settings())
    long_ago = datetime.now(UTC) - timedelta(days=2)

    async def backdate(session: UploadSession | None) -> UploadSession | None:
        return session and session.model_copy(update={"created_at": long_ago, "committing_since": long_ago})

    async def race() -> tuple[list[str], UploadSession | None]:
        await service.upload_once("iris", IRIS, "text/csv", target="species")
        session = await service.start_upload("iris")
        await service.put_part(session.id, 1, b"sepal,petal,species\n1,1,a\n", "text/csv")
        state.fail = True
        with pytest.raises(SidecarUnavailable):
            await service.commit(session.id)
        # The commit began two days ago and its process died; the open uploads say so too.
        await service.repo.update_session(session.id, backdate)
        await state.save("uploads:open", json.dumps({session.id: long_ago.isoformat()}).encode())
        # Expiry finds no version of it; before expiry aborts it, the client commits again.
        state.on_read = lambda: service.commits.mark_committing(session.id)
        expired = await service.expire_uploads()
        stuck = await service.repo.session(session.id)
        await service.commit(session.id)
        return expired, stuck

    expired, stuck = asyncio.run(race())
    assert expired == [] and stuck is not None and stuck.state == "committing"
    rows = asyncio.run(service.rows("iris", "2", 0, 10))
    assert [r["species"] for r in rows.rows] == ["a"]
    assert asyncio.run(service.repo.open_uploads()) == {}
