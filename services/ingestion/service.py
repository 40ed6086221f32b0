"""Ingestion's use cases. Each gets its dependencies (repository, publisher, settings) from
the IngestionService it is a method of; none knows HTTP or Dapr."""

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from services.common.ports import ConcurrencyConflict, EventPublisher
from services.ingestion import outbox
from services.ingestion.domain import profile as profiles
from services.ingestion.domain.errors import BadInput, Conflict, Missing, TooLarge
from services.ingestion.domain.model import (
    DatasetRecord,
    Manifest,
    PartFile,
    PartRecord,
    PartRef,
    UploadSession,
    VersionRef,
)
from services.ingestion.domain.parse import Limits, parse
from services.ingestion.domain.rows import first_occurrences
from services.ingestion.domain.schema import NAME, Column, Schema, Task, infer_schema, is_valid_name
from services.ingestion.domain.validate import Validated, validate
from services.ingestion.repository import DatasetRepository
from services.ingestion.settings import Settings

log = logging.getLogger(__name__)


class DatasetSpec(BaseModel):
    """What POST /api/datasets takes."""

    name: str = Field(pattern=NAME, description="lower-case letters, digits, '-' and '_'")
    task: Task
    target: str = Field(min_length=1)
    columns: list[Column] | None = Field(None, description="omit to infer the schema from the first upload")


class IngestionService:
    def __init__(self, repo: DatasetRepository, publisher: EventPublisher, settings: Settings):
        self.repo, self.publisher, self.settings = repo, publisher, settings
        self.limits = Limits(settings.max_columns, settings.max_field_chars)

    # datasets

    async def create_dataset(self, spec: DatasetSpec) -> DatasetRecord:
        schema = None
        if spec.columns is not None:
            if len(spec.columns) > self.settings.max_columns:
                raise BadInput(f"the schema declares {len(spec.columns)} columns; a dataset may have at most "
                               f"{self.settings.max_columns}")
            try:
                schema = Schema(task=spec.task, target=spec.target, columns=spec.columns)
            except ValueError as exc:
                raise BadInput(f"the schema is not valid: {exc}") from None
        record = DatasetRecord(name=spec.name, task=spec.task, target=spec.target, schema=schema)
        try:
            await self.repo.create_dataset(record)
        except ConcurrencyConflict:
            raise Conflict(f"dataset {spec.name!r} exists already") from None
        return record

    async def dataset(self, name: str) -> DatasetRecord:
        found = await self.repo.dataset(name)
        if found is None:
            raise Missing(f"dataset {name!r} does not exist; create it with POST /api/datasets "
                          f"or upload with ?target=<column> to create it from the data")
        return found[0]

    async def datasets(self) -> list[dict[str, Any]]:
        records = await asyncio.gather(*(self.repo.dataset(n) for n in await self.repo.names()))
        return [r[0].summary() for r in records if r is not None]

    # uploads

    async def start_upload(self, name: str, target: str | None = None, task: Task | None = None) -> UploadSession:
        session = await self._new_session(name, target, task)
        await self.repo.create_session(session)
        return session

    async def _new_session(self, name: str, target: str | None, task: Task | None) -> UploadSession:
        """A session for an existing dataset, or for a new one when the target is named."""
        found = await self.repo.dataset(name)
        if found is None and target is None:
            await self.dataset(name)  # raises the message that says how to create it
        if found is None:
            if not is_valid_name(name):
                raise BadInput(f"{name!r} is not a valid dataset name: use lower-case letters, digits, '-' and '_'")
            return UploadSession(id=uuid.uuid4().hex, dataset=name, target=target, task=task)
        record = found[0]
        if target is not None and target != record.target:
            raise Conflict(f"dataset {name!r} has target {record.target!r}, not {target!r}")
        if task is not None and task != record.task:
            raise Conflict(f"dataset {name!r} is for {record.task}, not {task}")
        return UploadSession(id=uuid.uuid4().hex, dataset=name, target=record.target, task=record.task,
                             schema=record.schema_)

    async def upload_of(self, name: str, upload_id: str) -> UploadSession:
        found = await self.repo.session(upload_id)
        if found is None or found[0].dataset != name:
            raise Missing(f"dataset {name!r} has no upload {upload_id!r}")
        return found[0]

    async def _open_session(self, upload_id: str) -> tuple[UploadSession, str]:
        found = await self.repo.session(upload_id)
        if found is None:
            raise Missing(f"upload {upload_id!r} does not exist (or was aborted)")
        if found[0].state == "aborted":
            raise Conflict(f"upload {upload_id!r} was aborted; start a new one")
        return found

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.settings.max_part_bytes:
            raise TooLarge.part(str(len(body)), self.settings.max_part_bytes)

    async def put_part(self, upload_id: str, number: int, body: bytes, content_type: str | None) -> dict[str, Any]:
        if not 1 <= number <= self.settings.max_parts:
            raise BadInput(f"part numbers go from 1 to {self.settings.max_parts}, not {number}")
        self._check_size(body)
        sha = hashlib.sha256(body).hexdigest()
        session, _ = await self._open_session(upload_id)
        if session.state == "committed":
            raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; start a new upload")
        existing = session.parts.get(number)
        if existing is not None and existing.sha256 == sha:  # a retried part: nothing stored again
            return {"part": number, "unchanged": True, **(await self.repo.part_record(existing.key)).report}
        schema, validated, profile = await self._prepare(body, content_type, session)
        return await self._store_part(session, number, sha, schema, validated, profile, body, content_type)

    async def _prepare(self, body: bytes, content_type: str | None, session: UploadSession
                       ) -> tuple[Schema, Validated, dict[str, Any]]:
        """Parses, validates and profiles in a worker thread: CPU work must not stall the
        event loop, which serves the other parts in flight meanwhile."""

        def work() -> tuple[Schema, Validated, dict[str, Any]]:
            parsed = parse(body, content_type, self.limits, session.schema_)
            schema = session.schema_ or self._infer(parsed.table, session)
            validated = validate(parsed, schema, self.settings.max_field_chars, self.settings.max_listed_rejections)
            return schema, validated, profiles.part_profile(validated.table, schema)

        return await asyncio.to_thread(work)

    async def _store_part(self, session: UploadSession, number: int, sha: str, schema: Schema,
                          validated: Validated, profile: dict[str, Any], body: bytes,
                          content_type: str | None) -> dict[str, Any]:
        upload_id = session.id
        key = f"datasets/{session.dataset}/uploads/{upload_id}/part-{number:05d}-{sha[:16]}"
        part = PartRecord(number=number, sha256=sha, key=key, rows=validated.accepted, report=validated.report(),
                          profile=profile)
        await self.repo.put_part(part, validated.table, validated.hashes)
        while True:
            session, etag = await self._open_session(upload_id)
            if session.state == "committed":
                await self.repo.delete_part(key)
                raise Conflict(f"upload {upload_id!r} was committed while this part was on its way")
            if session.schema_ is not None and session.schema_ != schema:
                # Another part inferred the schema first: validate against that one instead.
                await self.repo.delete_part(key)
                return await self.put_part(upload_id, number, body, content_type)
            replaced = session.parts.get(number)
            session.schema_ = schema
            session.parts[number] = PartRef(sha256=sha, key=key, rows=part.rows)
            try:
                await self.repo.save_session(session, etag)
                break
            except ConcurrencyConflict:
                continue  # parts racing to record themselves: read again and retry
        if replaced is not None and replaced.key != key:
            await self.repo.delete_part(replaced.key)
        return {"part": number, "unchanged": False, **part.report, "schema": schema.model_dump(mode="json")}

    def _infer(self, table: pa.Table, session: UploadSession) -> Schema:
        try:
            return infer_schema(table, session.target, session.task)
        except ValueError as exc:
            raise BadInput(str(exc)) from None

    async def abort(self, upload_id: str) -> None:
        await self._end_session(upload_id, "aborted")

    async def expire_uploads(self, now: datetime | None = None) -> list[str]:
        """Aborts uploads left open longer than the upload TTL, deleting their parts."""
        now = now or datetime.now(UTC)
        expired = []
        for upload_id, started in (await self.repo.open_uploads()).items():
            if (now - datetime.fromisoformat(started)).total_seconds() < self.settings.upload_ttl_s:
                continue
            try:
                await self.abort(upload_id)
            except (Missing, Conflict):
                await self.repo.forget_upload(upload_id)  # committed or gone already
            expired.append(upload_id)
        return expired

    async def commit(self, upload_id: str) -> dict[str, Any]:
        session, etag = await self._open_session(upload_id)
        if session.state == "committed":
            return await self._committed(session.dataset, session.version, unchanged=False)
        if not session.parts or session.schema_ is None:
            raise BadInput(f"upload {upload_id!r} has no parts yet; PUT at least one part before committing")
        schema = session.schema_
        records = await asyncio.gather(*(self.repo.part_record(session.parts[n].key) for n in sorted(session.parts)))
        parts, hashes, duplicates = await self._drop_duplicates_across_parts(list(records), schema)

        def summarise() -> tuple[str, dict[str, Any]]:
            digest = hashlib.sha256(schema.hash().encode() + hashes.astype("<u8").tobytes()).hexdigest()
            merged = None
            for part in parts:
                merged = profiles.merge(merged, part.profile)
            return digest, profiles.finish(merged, schema)

        digest, profile = await asyncio.to_thread(summarise)
        rejected = sum(p.report["rows_rejected"] for p in parts)
        duplicates += sum(p.report["duplicates_dropped"] for p in parts)

        for _ in range(self.settings.commit_attempts):
            record, record_etag = await self._dataset_for_commit(session, schema)
            done = next((v for v in record.versions if v.upload_id == upload_id), None)
            if done is not None:  # an earlier try of this commit got through
                version, unchanged = done.version, False
                kept = {p.key for p in (await self.repo.manifest(done.manifest_key)).parts}
                break
            if record.schema_ is not None and record.schema_.hash() != schema.hash():
                raise Conflict(f"dataset {record.name!r} changed its schema while this upload was open; "
                               f"upload again")
            latest = record.latest
            if latest is not None and latest.sha256 == digest:
                version, unchanged, kept = latest.version, True, set()  # its rows are stored already
                break
            version = latest.version + 1 if latest else 1
            manifest = Manifest(dataset=record.name, version=version, upload_id=upload_id, schema=schema,
                                schema_hash=schema.hash(), parts=[PartFile(key=p.key, rows=p.rows) for p in parts],
                                row_count=int(len(hashes)), sha256=digest, profile=profile,
                                rows_rejected=rejected, duplicates_dropped=duplicates)
            key = await self.repo.save_manifest(manifest)
            record.schema_ = schema
            record.versions.append(VersionRef(version=version, manifest_key=key, upload_id=upload_id,
                                              row_count=manifest.row_count, sha256=digest,
                                              created_at=manifest.created_at))
            record.outbox.append(version)
            try:
                await self.repo.save_dataset(record, record_etag)  # the commit point
                unchanged, kept = False, {p.key for p in parts}
                break
            except ConcurrencyConflict:
                continue  # another commit to this dataset won the race for this number: try the next
        else:
            raise Conflict(f"dataset {session.dataset!r} is busy: {self.settings.commit_attempts} commits raced "
                           f"this one; commit again")
        await self._end_session(upload_id, "committed", version, frozenset(kept))
        try:
            await self.flush_outbox(session.dataset)
        except Exception as exc:  # the version is committed; the relay publishes its event later
            log.warning("event for %s v%s not published yet, will retry: %s", session.dataset, version, exc)
        return await self._committed(session.dataset, version, unchanged)

    async def _dataset_for_commit(self, session: UploadSession, schema: Schema) -> tuple[DatasetRecord, str]:
        while True:
            found = await self.repo.dataset(session.dataset)
            if found is not None:
                return found
            record = DatasetRecord(name=session.dataset, task=schema.task, target=schema.target, schema=schema)
            try:
                await self.repo.create_dataset(record)
            except ConcurrencyConflict:
                pass  # created by someone else meanwhile: read theirs

    async def _drop_duplicates_across_parts(self, parts: list[PartRecord], schema: Schema
                                            ) -> tuple[list[PartRecord], np.ndarray, int]:
        """Rows equal to a row of an earlier part are dropped; parts that lose rows are rewritten.
        Returns the parts, the fingerprints of the rows kept, and how many were dropped."""
        hashes = await asyncio.gather(*(self.repo.part_hashes(p.key) for p in parts))
        every = np.concatenate(hashes)
        keep = np.zeros(len(every), dtype=bool)
        keep[await asyncio.to_thread(first_occurrences, every)] = True
        if keep.all():
            return parts, every, 0
        result, offset, dropped = [], 0, 0
        for part, part_hashes in zip(parts, hashes, strict=True):
            mask = keep[offset:offset + len(part_hashes)]
            offset += len(part_hashes)
            if mask.all():
                result.append(part)
                continue
            table = (await self.repo.part_rows(part.key)).filter(pa.array(mask))
            rewritten = part.model_copy(update={"key": f"{part.key}-dedup", "rows": table.num_rows,
                                                "profile": profiles.part_profile(table, schema)})
            await self.repo.put_part(rewritten, table, part_hashes[mask])
            dropped += int((~mask).sum())
            result.append(rewritten)
        return result, every[keep], dropped

    async def _end_session(self, upload_id: str, state: Literal["committed", "aborted"], version: int | None = None,
                           kept: frozenset[str] = frozenset()) -> None:
        """Closes the upload and deletes the part files no version uses: all of them on abort
        or when the upload matched the latest version; otherwise the originals of parts
        rewritten without cross-part duplicates, and parts that arrived while the commit ran."""
        while True:
            session, etag = await self._open_session(upload_id)
            if state == "aborted" and session.state == "committed":
                raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; it cannot be aborted")
            session.state, session.version = state, version
            try:
                await self.repo.save_session(session, etag)
                break
            except ConcurrencyConflict:
                continue
        await self.repo.forget_upload(upload_id)
        for part in session.parts.values():
            for key in (part.key, f"{part.key}-dedup"):
                if key not in kept:
                    await self.repo.delete_part(key)

    async def _committed(self, name: str, version: int | None, unchanged: bool) -> dict[str, Any]:
        manifest = await self.manifest(name, str(version))
        return {"dataset": name, "version": manifest.version, "unchanged": unchanged,
                "row_count": manifest.row_count, "sha256": manifest.sha256,
                "rows_rejected": manifest.rows_rejected, "duplicates_dropped": manifest.duplicates_dropped,
                "schema": manifest.schema_.model_dump(mode="json"), "profile": manifest.profile}

    async def upload_once(self, name: str, body: bytes, content_type: str | None, target: str | None = None,
                          task: Task | None = None) -> dict[str, Any]:
        """Validates first and stores only then, so a refused body leaves nothing behind."""
        self._check_size(body)
        session = await self._new_session(name, target, task)
        schema, validated, profile = await self._prepare(body, content_type, session)
        session.schema_ = schema
        await self.repo.create_session(session)
        try:
            report = await self._store_part(session, 1, hashlib.sha256(body).hexdigest(), schema, validated,
                                            profile, body, content_type)
            result = await self.commit(session.id)
        except Exception:
            try:
                await self.abort(session.id)
            except Conflict:
                pass  # committed after all
            raise
        return result | {"upload": {k: v for k, v in report.items() if k not in ("part", "unchanged", "schema")}}

    # events: at least once, through the dataset record's outbox (see outbox.py)

    async def flush_outbox(self, name: str) -> int:
        return await outbox.flush(self.repo, self.publisher, name)

    async def flush_all(self) -> int:
        return await outbox.flush_all(self.repo, self.publisher)

    # read side

    async def manifest(self, name: str, version: str) -> Manifest:
        record = await self.dataset(name)
        if version == "latest":
            ref = record.latest
            if ref is None:
                raise Missing(f"dataset {name!r} has no versions yet")
        else:
            if not version.isdigit():
                raise BadInput(f"a version is a number or 'latest', not {version!r}")
            ref = record.version(int(version))
            if ref is None:
                raise Missing(f"dataset {name!r} has no version {version}; "
                              f"it has {[v.version for v in record.versions] or 'none'}")
        return await self.repo.manifest(ref.manifest_key)

    async def rows(self, name: str, version: str, offset: int, limit: int) -> dict[str, Any]:
        if offset < 0 or not 1 <= limit <= self.settings.max_page_rows:
            raise BadInput(f"offset must be >= 0 and limit between 1 and {self.settings.max_page_rows}")
        manifest = await self.manifest(name, version)
        rows, start = [], 0
        for part in manifest.parts:
            end = start + part.rows
            if end > offset and start < offset + limit:
                table = await self.repo.part_rows(part.key)
                lo = max(offset - start, 0)
                rows.extend(table.slice(lo, offset + limit - start - lo).to_pylist())
            start = end
            if start >= offset + limit:
                break
        return {"dataset": name, "version": manifest.version, "offset": offset, "limit": limit,
                "total": manifest.row_count, "rows": rows}

    async def parts(self, manifest: Manifest) -> AsyncIterator[pa.Table]:
        for part in manifest.parts:
            yield await self.repo.part_rows(part.key)

