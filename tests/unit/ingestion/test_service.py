"""Use cases under races the API tests cannot line up."""

import asyncio

import pytest

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
