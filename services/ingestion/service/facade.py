"""The one object ingestion's routes and background jobs call. Each use case lives in the part
it belongs to (uploads.py, commit.py, reads.py, sharing sessions.py); this builds them over
one repository and hands each call on, so a route needs to know only this."""

from collections.abc import AsyncIterator
from datetime import datetime

import pyarrow as pa

from services.common.contracts import Origin, Task
from services.common.ports import ConcurrencyConflict, EventPublisher
from services.ingestion.domain.errors import Conflict
from services.ingestion.domain.model import DatasetRecord, Manifest, UploadSession
from services.ingestion.domain.views import CommitResult, DatasetList, DatasetSpec, PartResult, RowsPage, UploadResult
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.repository import DatasetRepository
from services.ingestion.service.commit import Commits
from services.ingestion.service.reads import Reads
from services.ingestion.service.sessions import Sessions
from services.ingestion.service.uploads import Uploads
from services.ingestion.settings import Settings


class IngestionService:
    def __init__(
        self,
        repo: DatasetRepository,
        publisher: EventPublisher,
        settings: Settings,
        metrics: IngestionMetrics | None = None,
    ):
        self.repo, self.settings = repo, settings
        metrics = metrics or IngestionMetrics()
        self.sessions = Sessions(repo)
        self.reads = Reads(repo, settings)
        self.commits = Commits(repo, publisher, settings, self.sessions, self.reads, metrics)
        self.uploads = Uploads(repo, settings, self.sessions, self.commits, metrics)

    # datasets

    async def create_dataset(self, spec: DatasetSpec) -> DatasetRecord:
        record = spec.record(self.settings.max_columns)
        try:
            await self.repo.create_dataset(record)
        except ConcurrencyConflict:
            raise Conflict(f"dataset {spec.name!r} exists already") from None
        return record

    async def dataset(self, name: str) -> DatasetRecord:
        return await self.reads.dataset(name)

    async def datasets(self, offset: int = 0, limit: int = 100) -> DatasetList:
        return await self.reads.datasets(offset, limit)

    # uploads

    async def start_upload(
        self, name: str, target: str | None = None, task: Task | None = None, origin: Origin | None = None
    ) -> UploadSession:
        return await self.uploads.start(name, target, task, origin)

    async def upload_of(self, name: str, upload_id: str) -> UploadSession:
        return await self.uploads.of(name, upload_id)

    async def put_part(self, upload_id: str, number: int, body: bytes, content_type: str | None) -> PartResult:
        return await self.uploads.put_part(upload_id, number, body, content_type)

    async def abort(self, upload_id: str) -> None:
        await self.uploads.abort(upload_id)

    async def expire_uploads(self, now: datetime | None = None) -> list[str]:
        return await self.uploads.expire(now)

    async def upload_once(
        self, name: str, body: bytes, content_type: str | None, target: str | None = None, task: Task | None = None
    ) -> UploadResult:
        return await self.uploads.upload_once(name, body, content_type, target, task)

    # commits and their events

    async def commit(self, upload_id: str) -> CommitResult:
        return await self.commits.commit(upload_id)

    async def flush_outbox(self, name: str) -> int:
        return await self.commits.flush_outbox(name)

    async def flush_all(self) -> int:
        return await self.commits.flush_all()

    # versions

    async def manifest(self, name: str, version: str) -> Manifest:
        return await self.reads.manifest(name, version)

    async def rows(self, name: str, version: str, offset: int, limit: int) -> RowsPage:
        return await self.reads.rows(name, version, offset, limit)

    async def require_parts(self, manifest: Manifest) -> None:
        await self.reads.require_parts(manifest)

    def parts(self, manifest: Manifest) -> AsyncIterator[pa.Table]:
        return self.reads.parts(manifest)
