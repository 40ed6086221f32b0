"""Where ingestion keeps things, over the state store and blob ports.

State (small, read often): one record per dataset, the dataset index, upload sessions and
version manifests. Blobs (big, written once): the rows of each part as Parquet, and the
part's row fingerprints. Cloud state stores limit item size (DynamoDB: 400 KB), so rows
never go into state.
"""

import asyncio
import io
import json
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from services.common.ports import BlobStore, ConcurrencyConflict, NotFound, StateStore
from services.ingestion.domain.model import DatasetRecord, Manifest, PartRecord, UploadSession

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


class DatasetRepository:
    def __init__(self, state: StateStore, blobs: BlobStore):
        self.state, self.blobs = state, blobs

    async def _load(self, key: str, model: type[M]) -> tuple[M, str] | None:
        """The stored model and its ETag, or None."""
        found = await self.state.get(key)
        return (model.model_validate_json(found.value), found.etag) if found else None

    async def _referenced(self, key: str, model: type[M]) -> M:
        """A record another record points at: missing means the store lost it."""
        found = await self._load(key, model)
        if found is None:
            raise LookupError(f"{model.__name__} {key!r} is referenced but missing")
        return found[0]

    # datasets

    async def dataset(self, name: str) -> tuple[DatasetRecord, str] | None:
        return await self._load(f"dataset:{name}", DatasetRecord)

    async def create_dataset(self, record: DatasetRecord) -> None:
        """Raises ConcurrencyConflict when a dataset of that name exists."""
        await self.state.create(f"dataset:{record.name}", record.model_dump_json().encode())
        await self._index(record.name)

    async def save_dataset(self, record: DatasetRecord, etag: str) -> None:
        """Compare-and-swap: raises ConcurrencyConflict when the record changed since read."""
        await self.state.save(f"dataset:{record.name}", record.model_dump_json().encode(), etag=etag)

    async def names(self) -> list[str]:
        return (await self._read(INDEX)).get("names", [])

    async def _index(self, name: str) -> None:
        await self._update(INDEX, lambda doc: doc | {"names": sorted(set(doc.get("names", [])) | {name})})

    # small JSON documents several writers change: read, change, compare-and-swap, repeat

    async def _read(self, key: str) -> dict:
        found = await self.state.get(key)
        return json.loads(found.value) if found else {}

    async def _update(self, key: str, change: Callable[[dict], dict]) -> None:
        while True:
            found = await self.state.get(key)
            before = json.loads(found.value) if found else {}
            after = change(dict(before))
            if after == before:
                return
            try:
                if found:
                    await self.state.save(key, json.dumps(after).encode(), etag=found.etag)
                else:
                    await self.state.create(key, json.dumps(after).encode())
                return
            except ConcurrencyConflict:
                continue  # someone else changed it meanwhile: read again

    # upload sessions

    async def session(self, upload_id: str) -> tuple[UploadSession, str] | None:
        return await self._load(f"upload:{upload_id}", UploadSession)

    async def create_session(self, session: UploadSession) -> None:
        await self.state.create(f"upload:{session.id}", session.model_dump_json().encode())
        await self._update(OPEN_UPLOADS, lambda doc: doc | {session.id: session.created_at.isoformat()})

    async def open_uploads(self) -> dict[str, str]:
        """Upload id -> when it started, for uploads neither committed nor aborted yet."""
        return await self._read(OPEN_UPLOADS)

    async def forget_upload(self, upload_id: str) -> None:
        await self._update(OPEN_UPLOADS, lambda doc: {k: v for k, v in doc.items() if k != upload_id})

    async def save_session(self, session: UploadSession, etag: str) -> None:
        await self.state.save(f"upload:{session.id}", session.model_dump_json().encode(), etag=etag)

    # manifests: one key per upload, written before the dataset record points at it

    async def manifest(self, key: str) -> Manifest:
        return await self._referenced(key, Manifest)

    async def save_manifest(self, manifest: Manifest) -> str:
        key = f"manifest:{manifest.dataset}:{manifest.upload_id}"
        await self.state.save(key, manifest.model_dump_json().encode())
        return key

    # parts: rows and fingerprints as blobs, their account in state

    async def put_part(self, record: PartRecord, table: pa.Table, hashes: np.ndarray) -> None:
        # Encoding is CPU work: off the event loop, so other requests go on meanwhile.
        data = await asyncio.to_thread(parquet_bytes, table)
        await asyncio.gather(self.blobs.put(f"{record.key}.parquet", data),
                             self.blobs.put(f"{record.key}.hashes", hashes.astype("<u8").tobytes()),
                             self.state.save(f"part:{record.key}", record.model_dump_json().encode()))

    async def part_record(self, key: str) -> PartRecord:
        return await self._referenced(f"part:{key}", PartRecord)

    async def part_rows(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(await self.blobs.get(f"{key}.parquet")))

    async def part_hashes(self, key: str) -> np.ndarray:
        return np.frombuffer(await self.blobs.get(f"{key}.hashes"), dtype="<u8")

    async def delete_part(self, key: str) -> None:
        """Deletes whatever of a part exists: a crash may have left only some of its files."""
        await self.state.delete(f"part:{key}")
        for suffix in (".parquet", ".hashes"):
            try:
                await self.blobs.delete(f"{key}{suffix}")
            except NotFound:
                pass
