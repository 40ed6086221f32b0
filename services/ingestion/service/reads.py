"""Reading what was committed: datasets, version manifests, pages of rows, and the parts a
download streams."""

import asyncio
from collections.abc import AsyncIterator

import pyarrow as pa

from services.ingestion.domain import uploads, versions, views
from services.ingestion.domain.model import DatasetRecord, Manifest, PartFile
from services.ingestion.repository import DatasetRepository
from services.ingestion.settings import Settings


class Reads:
    def __init__(self, repo: DatasetRepository, settings: Settings):
        self.repo, self.settings = repo, settings

    async def dataset(self, name: str) -> DatasetRecord:
        found = await self.repo.dataset(name)
        if found is None:
            raise uploads.no_dataset(name)
        return found

    async def datasets(self, offset: int = 0, limit: int = 100) -> views.DatasetList:
        """One page of the datasets, in order of name."""
        views.check_page(offset, limit, self.settings.max_page_datasets)
        names = await self.repo.names()
        records = await asyncio.gather(*(self.repo.dataset(n) for n in names[offset : offset + limit]))
        return views.DatasetList(
            datasets=[views.summary(r) for r in records if r is not None], total=len(names), offset=offset, limit=limit
        )

    async def manifest(self, name: str, version: str) -> Manifest:
        """`version`: a number or 'latest'."""
        record = await self.dataset(name)
        return await self.repo.manifest(name, versions.resolve(record, version))

    async def rows(self, name: str, version: str, offset: int, limit: int) -> views.RowsPage:
        views.check_page(offset, limit, self.settings.max_page_rows)
        manifest = await self.manifest(name, version)
        rows, start = [], 0
        for part in manifest.parts:
            end = start + part.rows
            if end > offset and start < offset + limit:
                table = await self._rows_of(manifest, part)
                lo = max(offset - start, 0)
                rows.extend(table.slice(lo, offset + limit - start - lo).to_pylist())
            start = end
            if start >= offset + limit:
                break
        return views.RowsPage(
            dataset=name, version=manifest.version, offset=offset, limit=limit, total=manifest.row_count, rows=rows
        )

    async def require_parts(self, manifest: Manifest) -> None:
        """Raises Lost unless every part of the version is still stored. A download asks before
        its first byte: once streaming through Dapr it could no longer tell the client, because
        daprd ends a response whose app stream broke off as if it were complete."""
        of = f"dataset {manifest.dataset!r} version {manifest.version}"
        for part in manifest.parts:
            await self.repo.require_part(part.key, of)

    async def parts(self, manifest: Manifest) -> AsyncIterator[pa.Table]:
        for part in manifest.parts:
            yield await self._rows_of(manifest, part)

    async def _rows_of(self, manifest: Manifest, part: PartFile) -> pa.Table:
        return await self.repo.part_rows(part.key, f"dataset {manifest.dataset!r} version {manifest.version}")
