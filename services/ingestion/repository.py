"""Where ingestion keeps things, over the state store and blob ports.

State (small, read often): one record per dataset, the dataset index, upload sessions and
version manifests. Blobs (big, written once): the rows of each part as Parquet, and the
part's row fingerprints. Cloud state stores limit item size (DynamoDB: 400 KB), so rows
never go into state.

Documents several writers change (a dataset record, an upload session, the two indexes) are
changed only through Documents.update: a change function, re-applied to the newer document
when another writer got there first.
"""

import asyncio
import io
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from services.common.ports import BlobStore, NotFound, StateStore
from services.common.state import Change, Documents
from services.ingestion.domain.errors import Lost
from services.ingestion.domain.model import (
    DatasetIndex,
    DatasetRecord,
    Manifest,
    OpenUploads,
    PartRecord,
    UploadSession,
    VersionRef,
)

M = TypeVar("M", bound=BaseModel)
INDEX = "datasets"
OPEN_UPLOADS = "uploads:open"


def parquet_bytes(table: pa.Table) -> bytes:
    """Snappy (pyarrow's default codec, fast). Dictionary encoding only for string columns:
    tried on numbers it costs more than half the write time and rarely pays off. Columns
    chunked alike write faster, hence combine_chunks."""
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    sink = io.BytesIO()
    pq.write_table(table.combine_chunks(), sink, use_dictionary=strings)
    return sink.getvalue()


async def _referenced(documents: Documents[M], key: str, what: str) -> M:
    """A document another one points at: missing means the store lost it."""
    found = await documents.get(key)
    if found is None:
        raise Lost(f"{what} is missing (state key {key!r}); it was lost from the state store")
    return found


class DatasetRepository:
    def __init__(self, state: StateStore, blobs: BlobStore):
        self.state, self.blobs = state, blobs
        self._datasets = Documents(state, DatasetRecord)
        self._index = Documents(state, DatasetIndex)
        self._sessions = Documents(state, UploadSession)
        self._open = Documents(state, OpenUploads)
        self._manifests = Documents(state, Manifest)
        self._parts = Documents(state, PartRecord)

    # datasets

    async def dataset(self, name: str) -> DatasetRecord | None:
        return await self._datasets.get(f"dataset:{name}")

    async def create_dataset(self, record: DatasetRecord) -> None:
        """Raises ConcurrencyConflict when a dataset of that name exists."""
        await self._datasets.create(f"dataset:{record.name}", record)
        await self.index(record.name)

    async def update_dataset(
        self, name: str, change: Change[DatasetRecord], attempts: int = 20
    ) -> DatasetRecord | None:
        """Compare-and-swap, retried: see Documents.update. A change given None may create the
        record; the caller then indexes it."""
        return await Documents(self.state, DatasetRecord, attempts).update(f"dataset:{name}", change)

    async def names(self) -> list[str]:
        index = await self._index.get(INDEX)
        return index.names if index else []

    async def index(self, name: str) -> None:
        def add(index: DatasetIndex | None) -> DatasetIndex:
            index = index or DatasetIndex()
            if name not in index.names:
                index.names = sorted([*index.names, name])
            return index

        await self._index.update(INDEX, add)

    # upload sessions

    async def session(self, upload_id: str) -> UploadSession | None:
        return await self._sessions.get(f"upload:{upload_id}")

    async def create_session(self, session: UploadSession) -> None:
        def add(uploads: OpenUploads | None) -> OpenUploads:
            uploads = uploads or OpenUploads()
            uploads.root[session.id] = session.created_at.isoformat()
            return uploads

        await self._sessions.create(f"upload:{session.id}", session)
        await self._open.update(OPEN_UPLOADS, add)

    async def update_session(self, upload_id: str, change: Change[UploadSession]) -> UploadSession | None:
        return await self._sessions.update(f"upload:{upload_id}", change)

    async def open_uploads(self) -> dict[str, str]:
        """Upload id -> when it started, for uploads neither committed nor aborted yet."""
        found = await self._open.get(OPEN_UPLOADS)
        return found.root if found else {}

    async def forget_upload(self, upload_id: str) -> None:
        def remove(uploads: OpenUploads | None) -> OpenUploads | None:
            if uploads is not None:
                uploads.root.pop(upload_id, None)
            return uploads

        await self._open.update(OPEN_UPLOADS, remove)

    # manifests: one key per version, written before the dataset record points at it

    async def manifest(self, dataset: str, ref: VersionRef) -> Manifest:
        return await _referenced(
            self._manifests, ref.manifest_key, f"the manifest of dataset {dataset!r} version {ref.version}"
        )

    async def save_manifest(self, manifest: Manifest) -> str:
        key = f"manifest:{manifest.dataset}:v{manifest.version}:{manifest.upload_id}"
        await self._manifests.put(key, manifest)
        return key

    async def delete_manifest(self, key: str) -> None:
        await self._manifests.delete(key)

    # parts: rows and fingerprints as blobs, their account in state

    async def put_part(self, record: PartRecord, table: pa.Table, hashes: np.ndarray) -> None:
        # Encoding is CPU work: off the event loop, so other requests go on meanwhile.
        data = await asyncio.to_thread(parquet_bytes, table)
        await asyncio.gather(
            self.blobs.put(f"{record.key}.parquet", data),
            self.blobs.put(f"{record.key}.hashes", hashes.astype("<u8").tobytes()),
            self._parts.put(f"part:{record.key}", record),
        )

    async def part_record(self, key: str) -> PartRecord:
        return await _referenced(self._parts, f"part:{key}", f"the record of part {key!r}")

    async def _blob(self, key: str, of: str) -> bytes:
        try:
            return await self.blobs.get(key)
        except NotFound:
            raise Lost(
                f"the stored rows of {of} are missing (part {key!r}); the data was lost from the blob store"
            ) from None

    async def part_rows(self, key: str, of: str) -> pa.Table:
        """`of` names what the part belongs to, for the error when its file was lost."""
        return pq.read_table(io.BytesIO(await self._blob(f"{key}.parquet", of)))

    async def require_part(self, key: str, of: str) -> None:
        """Raises Lost unless the part's rows are stored (it reads them: the blob port has no
        cheaper way to ask, and not every blob binding can list)."""
        await self._blob(f"{key}.parquet", of)

    async def part_hashes(self, key: str, of: str) -> np.ndarray:
        return np.frombuffer(await self._blob(f"{key}.hashes", of), dtype="<u8")

    async def delete_part(self, key: str) -> None:
        """Deletes whatever of a part exists: a crash may have left only some of its files."""
        await self.state.delete(f"part:{key}")
        for suffix in (".parquet", ".hashes"):
            try:
                await self.blobs.delete(f"{key}{suffix}")
            except NotFound:
                pass
