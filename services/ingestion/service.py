"""Ingestion's use cases. Each gets its dependencies (repository, publisher, settings) from
the IngestionService it is a method of; none knows HTTP or Dapr."""

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from services.common.ports import ConcurrencyConflict, EventPublisher
from services.common.state import Busy, Change
from services.ingestion import outbox
from services.ingestion.domain import profile as profiles
from services.ingestion.domain.errors import BadInput, Conflict, Missing, TooLarge
from services.ingestion.domain.model import (
    CommitResult,
    DatasetList,
    DatasetRecord,
    Manifest,
    PartFile,
    PartRecord,
    PartRef,
    PartResult,
    RowsPage,
    UploadResult,
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
    """What creating a dataset takes."""

    name: str = Field(pattern=NAME, description="lower-case letters, digits, '-' and '_'")
    task: Task
    target: str = Field(min_length=1)
    columns: list[Column] | None = Field(None, description="omit to infer the schema from the first upload")


def being_committed(upload_id: str) -> str:
    return (
        f"upload {upload_id!r} is being committed, so it cannot be aborted; wait for the commit to finish "
        f"(if it failed, commit again: that finishes it), then read the version it made"
    )


def takes_no_parts(upload_id: str) -> str:
    return f"upload {upload_id!r} is being committed and takes no more parts; send more data in a new upload"


class IngestionService:
    def __init__(self, repo: DatasetRepository, publisher: EventPublisher, settings: Settings):
        self.repo, self.publisher, self.settings = repo, publisher, settings
        self.limits = Limits(settings.max_columns, settings.max_field_chars)

    # datasets

    async def create_dataset(self, spec: DatasetSpec) -> DatasetRecord:
        schema = None
        if spec.columns is not None:
            if len(spec.columns) > self.settings.max_columns:
                raise BadInput(
                    f"the schema declares {len(spec.columns)} columns; a dataset may have at most "
                    f"{self.settings.max_columns}"
                )
            try:
                schema = Schema(task=spec.task, target=spec.target, columns=spec.columns)
            except ValueError as exc:
                raise BadInput(f"the schema is not valid: {exc}") from None
        record = DatasetRecord(name=spec.name, task=spec.task, target=spec.target, schema_=schema)
        try:
            await self.repo.create_dataset(record)
        except ConcurrencyConflict:
            raise Conflict(f"dataset {spec.name!r} exists already") from None
        return record

    async def dataset(self, name: str) -> DatasetRecord:
        found = await self.repo.dataset(name)
        if found is None:
            raise Missing(
                f"dataset {name!r} does not exist; create it first, or upload with a target column "
                f"to create it from the data"
            )
        return found

    async def datasets(self, offset: int = 0, limit: int = 100) -> DatasetList:
        """One page of the datasets, in order of name."""
        self._check_page(offset, limit, self.settings.max_page_datasets)
        names = await self.repo.names()
        records = await asyncio.gather(*(self.repo.dataset(n) for n in names[offset : offset + limit]))
        return DatasetList(
            datasets=[r.summary() for r in records if r is not None], total=len(names), offset=offset, limit=limit
        )

    @staticmethod
    def _check_page(offset: int, limit: int, most: int) -> None:
        if offset < 0 or not 1 <= limit <= most:
            raise BadInput(f"offset must be >= 0 and limit between 1 and {most}")

    # uploads

    async def start_upload(self, name: str, target: str | None = None, task: Task | None = None) -> UploadSession:
        session = await self._new_session(name, target, task)
        await self.repo.create_session(session)
        return session

    async def _new_session(self, name: str, target: str | None, task: Task | None) -> UploadSession:
        """A session for an existing dataset, or for a new one when the target is named."""
        record = await self.repo.dataset(name)
        if record is None and target is None:
            await self.dataset(name)  # raises the message that says how to create it
        if record is None:
            if not is_valid_name(name):
                raise BadInput(f"{name!r} is not a valid dataset name: use lower-case letters, digits, '-' and '_'")
            return UploadSession(id=uuid.uuid4().hex, dataset=name, target=target, task=task)
        if target is not None and target != record.target:
            raise Conflict(f"dataset {name!r} has target {record.target!r}, not {target!r}")
        if task is not None and task != record.task:
            raise Conflict(f"dataset {name!r} is for {record.task}, not {task}")
        return UploadSession(
            id=uuid.uuid4().hex, dataset=name, target=record.target, task=record.task, schema_=record.schema_
        )

    async def upload_of(self, name: str, upload_id: str) -> UploadSession:
        found = await self.repo.session(upload_id)
        if found is None or found.dataset != name:
            raise Missing(f"dataset {name!r} has no upload {upload_id!r}")
        return found

    @staticmethod
    def _usable(session: UploadSession | None, upload_id: str) -> UploadSession:
        if session is None:
            raise Missing(f"upload {upload_id!r} does not exist (or was aborted)")
        if session.state == "aborted":
            raise Conflict(f"upload {upload_id!r} was aborted; start a new one")
        return session

    async def _open_session(self, upload_id: str) -> UploadSession:
        return self._usable(await self.repo.session(upload_id), upload_id)

    async def _update_session(self, upload_id: str, change: Change[UploadSession]) -> UploadSession:
        """Changes go through _usable first, so there is a session to return."""
        try:
            updated = await self.repo.update_session(upload_id, change)
        except Busy:
            raise Conflict(
                f"upload {upload_id!r} is busy: other requests changed it each time this one tried; send this one again"
            ) from None
        if updated is None:
            raise Missing(f"upload {upload_id!r} does not exist")
        return updated

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.settings.max_part_bytes:
            raise TooLarge.part(str(len(body)), self.settings.max_part_bytes)

    async def put_part(self, upload_id: str, number: int, body: bytes, content_type: str | None) -> PartResult:
        if not 1 <= number <= self.settings.max_parts:
            raise BadInput(f"part numbers go from 1 to {self.settings.max_parts}, not {number}")
        self._check_size(body)
        sha = hashlib.sha256(body).hexdigest()
        session = await self._open_session(upload_id)
        if session.state == "committed":
            raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; start a new upload")
        if session.state == "committing":
            raise Conflict(takes_no_parts(upload_id))
        existing = session.parts.get(number)
        if existing is not None and existing.sha256 == sha and session.schema_ is not None:
            # A retried part: nothing stored again.
            report = (await self.repo.part_record(existing.key)).report
            return PartResult(part=number, unchanged=True, schema_=session.schema_, **dict(report))
        schema, validated, profile = await self._prepare(body, content_type, session)
        stored = await self._store_part(session, number, sha, schema, validated, profile)
        if stored is None:  # another part inferred the schema first: validate against that one instead
            return await self.put_part(upload_id, number, body, content_type)
        return PartResult(part=number, unchanged=False, schema_=schema, **dict(stored.report))

    async def _prepare(
        self, body: bytes, content_type: str | None, session: UploadSession
    ) -> tuple[Schema, Validated, dict[str, Any]]:
        """Parses, validates and profiles in a worker thread: CPU work must not stall the
        event loop, which serves the other parts in flight meanwhile."""

        def work() -> tuple[Schema, Validated, dict[str, Any]]:
            parsed = parse(body, content_type, self.limits, session.schema_)
            schema = session.schema_ or self._infer(parsed.table, session)
            validated = validate(parsed, schema, self.settings.max_field_chars, self.settings.max_listed_rejections)
            return schema, validated, profiles.part_profile(validated.table, schema)

        return await asyncio.to_thread(work)

    async def _store_part(
        self,
        session: UploadSession,
        number: int,
        sha: str,
        schema: Schema,
        validated: Validated,
        profile: dict[str, Any],
    ) -> PartRecord | None:
        """Stores the part's files, then records it in the session. None when the session
        has meanwhile taken another schema than the one the part was validated with: the part
        is then not kept."""
        upload_id = session.id
        key = f"datasets/{session.dataset}/uploads/{upload_id}/part-{number:05d}-{sha[:16]}"
        part = PartRecord(
            number=number, sha256=sha, key=key, rows=validated.accepted, report=validated.report(), profile=profile
        )
        ref = PartRef(sha256=sha, key=key, rows=part.rows)
        await self.repo.put_part(part, validated.table, validated.hashes)
        replaced: PartRef | None = None

        def record_part(current: UploadSession | None) -> UploadSession:
            nonlocal replaced
            current = self._usable(current, upload_id)
            if current.state == "committed":
                raise Conflict(f"upload {upload_id!r} was committed while this part was on its way")
            if current.state == "committing":
                raise Conflict(takes_no_parts(upload_id))
            if current.schema_ is not None and current.schema_ != schema:
                return current
            replaced = current.parts.get(number)
            current.schema_ = schema
            current.parts[number] = ref
            return current

        try:
            current = await self._update_session(upload_id, record_part)
        except Exception:
            await self._delete_unrecorded(upload_id, key)
            raise
        if current.parts.get(number) != ref:
            await self._delete_unrecorded(upload_id, key)
            return None
        if replaced is not None and replaced.key != key:
            await self.repo.delete_part(replaced.key)
        return part

    async def _delete_unrecorded(self, upload_id: str, key: str) -> None:
        """Deletes the files of a part this request stored but could not record, unless the
        session records them after all: the same part sent twice at once has the same key,
        and the other request may have recorded it (and a commit kept it since)."""
        session = await self.repo.session(upload_id)
        if session is None or all(p.key != key for p in session.parts.values()):
            await self.repo.delete_part(key)

    def _infer(self, table: pa.Table, session: UploadSession) -> Schema:
        try:
            return infer_schema(table, session.target, session.task)
        except ValueError as exc:
            raise BadInput(str(exc)) from None

    async def abort(self, upload_id: str) -> None:
        """Refused while a commit runs: the version it makes is made of the parts."""
        await self._end_session(upload_id, "aborted")

    async def expire_uploads(self, now: datetime | None = None) -> list[str]:
        """Aborts uploads left open longer than the upload TTL, deleting their parts; returns
        their ids. An upload whose commit began longer than the TTL ago has lost that commit
        (its process died): it ends committed if the commit got as far as making the version,
        aborted if not."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(seconds=self.settings.upload_ttl_s)
        expired = []
        for upload_id, started in (await self.repo.open_uploads()).items():
            if datetime.fromisoformat(started) > cutoff:
                continue
            session = await self.repo.session(upload_id)
            if session is not None and session.state == "committing" and not session.committing_before(cutoff):
                continue  # its commit may still be running
            try:
                if session is None:
                    raise Missing(f"upload {upload_id!r} does not exist")
                made = await self._end_abandoned(session, cutoff)
                if made is not None:
                    log.info("upload %s: its commit stopped after making version %d; now committed", upload_id, made)
                    continue
            except (Missing, Conflict):
                # Committed or gone already; or a commit (re)started meanwhile: it stays listed.
                current = await self.repo.session(upload_id)
                if current is not None and current.state not in ("committed", "aborted"):
                    continue
                await self.repo.forget_upload(upload_id)
            expired.append(upload_id)
        return expired

    async def _end_abandoned(self, session: UploadSession, cutoff: datetime) -> int | None:
        """Ends an upload that no commit begun after the cutoff is working on: committed when
        the dataset has a version of it (a commit died after making it), keeping the version's
        files, and returns that version; otherwise aborted, its parts deleted (None). A commit
        that marks the session again meanwhile wins: the abort is then a Conflict."""
        record = await self.repo.dataset(session.dataset)
        mine = record.version_of(session.id) if record is not None else None
        if mine is None:
            await self._end_session(session.id, "aborted", committing_before=cutoff)
            return None
        manifest = await self.repo.manifest(session.dataset, mine)
        await self._end_session(session.id, "committed", mine.version, frozenset(p.key for p in manifest.parts))
        return mine.version

    async def commit(self, upload_id: str) -> CommitResult:
        """Makes the upload's parts one new version, all of it or nothing.

        The session is first marked committing, by its own compare-and-swap: from then on it
        takes no parts and cannot be aborted, so nothing deletes the files the version is made
        of. A commit that finds it committing already (an earlier one failed, or died) goes on,
        and finishes it."""
        session = await self._open_session(upload_id)
        retried = False
        if session.state != "committed":
            session, retried = await self._mark_committing(upload_id)
        if session.state == "committed":
            return CommitResult.of(await self.manifest(session.dataset, str(session.version)), unchanged=False)
        schema = self._committable(session)
        if retried:  # the earlier commit may have made the version before it stopped
            record = await self.repo.dataset(session.dataset)
            made = record.version_of(upload_id) if record is not None else None
            if made is not None:
                return await self._finish(session, await self.repo.manifest(session.dataset, made), unchanged=False)
        parts, hashes, duplicates = await self._parts_without_repeats(session, schema)
        draft = await self._summarise(session, schema, parts, hashes, duplicates)
        manifest, unchanged = await self._commit_version(draft)
        return await self._finish(session, manifest, unchanged)

    @staticmethod
    def _committable(session: UploadSession) -> Schema:
        if not session.parts or session.schema_ is None:
            raise BadInput(f"upload {session.id!r} has no parts yet; send at least one part before committing")
        return session.schema_

    async def _mark_committing(self, upload_id: str) -> tuple[UploadSession, bool]:
        """The session as marked committing (or as committed, by a commit that finished
        meanwhile), and whether it was committing already."""
        retried = False

        def mark(current: UploadSession | None) -> UploadSession:
            nonlocal retried
            current = self._usable(current, upload_id)
            retried = current.state == "committing"
            if current.state == "committed":
                return current
            self._committable(current)
            current.state, current.committing_since = "committing", datetime.now(UTC)
            return current

        return await self._update_session(upload_id, mark), retried

    async def _finish(self, session: UploadSession, manifest: Manifest, unchanged: bool) -> CommitResult:
        kept = frozenset() if unchanged else frozenset(p.key for p in manifest.parts)
        await self._end_session(session.id, "committed", manifest.version, kept)
        await self._announce(session.dataset)
        return CommitResult.of(manifest, unchanged)

    async def _parts_without_repeats(
        self, session: UploadSession, schema: Schema
    ) -> tuple[list[PartRecord], np.ndarray, int]:
        """The session's parts in order, rows equal to a row of an earlier part dropped (parts
        that lose rows are rewritten). Returns the parts, the fingerprints of the rows kept, and
        how many were dropped."""
        parts = list(
            await asyncio.gather(*(self.repo.part_record(session.parts[n].key) for n in sorted(session.parts)))
        )
        of = f"upload {session.id!r}"
        hashes = await asyncio.gather(*(self.repo.part_hashes(p.key, of) for p in parts))
        every = np.concatenate(hashes)
        keep = np.zeros(len(every), dtype=bool)
        keep[await asyncio.to_thread(first_occurrences, every)] = True
        if keep.all():
            return parts, every, 0
        result, offset, dropped = [], 0, 0
        for part, part_hashes in zip(parts, hashes, strict=True):
            mask = keep[offset : offset + len(part_hashes)]
            offset += len(part_hashes)
            if mask.all():
                result.append(part)
                continue
            table = (await self.repo.part_rows(part.key, of)).filter(pa.array(mask))
            rewritten = part.model_copy(
                update={
                    "key": f"{part.key}-dedup",
                    "rows": table.num_rows,
                    "profile": profiles.part_profile(table, schema),
                }
            )
            await self.repo.put_part(rewritten, table, part_hashes[mask])
            dropped += int((~mask).sum())
            result.append(rewritten)
        return result, every[keep], dropped

    async def _summarise(
        self, session: UploadSession, schema: Schema, parts: list[PartRecord], hashes: np.ndarray, duplicates: int
    ) -> Manifest:
        """The manifest the version will have, but for its number (0 here), which the commit
        gives it."""

        def work() -> tuple[str, dict[str, Any]]:
            digest = hashlib.sha256(schema.hash().encode() + hashes.astype("<u8").tobytes()).hexdigest()
            merged: dict[str, Any] | None = None
            for part in parts:
                merged = profiles.merge(merged, part.profile)
            return digest, profiles.finish(merged or {}, schema)

        digest, profile = await asyncio.to_thread(work)
        return Manifest(
            dataset=session.dataset,
            version=0,
            upload_id=session.id,
            schema_=schema,
            schema_hash=schema.hash(),
            parts=[PartFile(key=p.key, rows=p.rows) for p in parts],
            row_count=int(len(hashes)),
            sha256=digest,
            profile=profile,
            rows_rejected=sum(p.report.rows_rejected for p in parts),
            duplicates_dropped=duplicates + sum(p.report.duplicates_dropped for p in parts),
        )

    async def _commit_version(self, draft: Manifest) -> tuple[Manifest, bool]:
        """Gives the upload the next version number of its dataset: one compare-and-swap of the
        dataset record, which creates the dataset if it is new. Two commits racing for a number
        cannot both get it: the loser reads the record again and takes the next. Returns the
        manifest of the version the upload is now and whether that is the latest version
        already (identical content, nothing added)."""
        name, upload_id, schema = draft.dataset, draft.upload_id, draft.schema_
        written: dict[str, Manifest] = {}  # manifests saved for a number, by key

        async def add_version(record: DatasetRecord | None) -> DatasetRecord:
            record = record or DatasetRecord(name=name, task=schema.task, target=schema.target, schema_=schema)
            if record.version_of(upload_id) is not None:
                return record  # an earlier try of this commit got through
            if record.schema_ is not None and record.schema_.hash() != draft.schema_hash:
                raise Conflict(f"dataset {name!r} changed its schema while this upload was open; upload again")
            latest = record.latest
            if latest is not None and latest.sha256 == draft.sha256:
                return record  # the same content as the latest version: nothing to add
            manifest = draft.model_copy(update={"version": latest.version + 1 if latest else 1})
            # Saved before the record points at it, so that no version is without its manifest.
            key = await self.repo.save_manifest(manifest)
            written[key] = manifest
            record.schema_ = schema
            record.versions.append(
                VersionRef(
                    version=manifest.version,
                    manifest_key=key,
                    upload_id=upload_id,
                    row_count=manifest.row_count,
                    sha256=manifest.sha256,
                    created_at=manifest.created_at,
                )
            )
            record.outbox.append(manifest.version)
            return record

        record = None
        try:
            record = await self.repo.update_dataset(name, add_version, self.settings.commit_attempts)
        except Busy:
            raise Conflict(
                f"dataset {name!r} is busy: {self.settings.commit_attempts} commits raced this one; commit again"
            ) from None
        finally:
            await self._drop_unused_manifests(name, upload_id, written, record)
        mine = record.version_of(upload_id) if record is not None else None
        await self.repo.index(name)  # a dataset this commit created is listed from now on
        if mine is not None:
            return written.get(mine.manifest_key) or await self.repo.manifest(name, mine), False
        latest = record.latest if record is not None else None
        if latest is None:  # add_version leaves a version of this upload, or an identical latest one
            raise RuntimeError(f"committing upload {upload_id!r} left dataset {name!r} without its version")
        return await self.repo.manifest(name, latest), True

    async def _drop_unused_manifests(
        self, name: str, upload_id: str, written: dict[str, Manifest], record: DatasetRecord | None
    ) -> None:
        """Deletes the manifests a commit saved that no version uses: saved for numbers other
        commits got, or by a commit that ended without a version. A commit that failed has no
        record to tell, and the store may have failed after writing it (or another commit of
        the same upload got the version): the record is read again. When that fails too, they
        stay: a manifest no version uses is harmless, a version without its manifest is not."""
        if not written:
            return
        if record is None:
            try:
                record = await self.repo.dataset(name)
            except Exception as exc:
                log.warning("manifests %s of upload %s left in place: %s", sorted(written), upload_id, exc)
                return
        mine = record.version_of(upload_id) if record is not None else None
        for key in written.keys() - {mine.manifest_key if mine else ""}:
            await self.repo.delete_manifest(key)

    async def _end_session(
        self,
        upload_id: str,
        state: Literal["committed", "aborted"],
        version: int | None = None,
        kept: frozenset[str] = frozenset(),
        committing_before: datetime | None = None,
    ) -> None:
        """Closes the upload and deletes the part files no version uses: all of them on abort
        or when the upload matched the latest version; otherwise the originals of parts
        rewritten without cross-part duplicates. An abort is refused while the upload is
        committing, unless its commit began before `committing_before` (it died)."""

        def close(session: UploadSession | None) -> UploadSession:
            session = self._usable(session, upload_id)
            if state == "aborted" and session.state == "committed":
                raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; it cannot be aborted")
            if state == "aborted" and session.state == "committing":
                if committing_before is None or not session.committing_before(committing_before):
                    raise Conflict(being_committed(upload_id))
            session.state, session.version = state, version
            return session

        session = await self._update_session(upload_id, close)
        await self.repo.forget_upload(upload_id)
        for part in session.parts.values():
            for key in (part.key, f"{part.key}-dedup"):
                if key not in kept:
                    await self.repo.delete_part(key)

    async def _announce(self, name: str) -> None:
        try:
            await self.flush_outbox(name)
        except Exception as exc:  # the version is committed; the relay publishes its event later
            log.warning("events of dataset %s not published yet, will retry: %s", name, exc)

    async def upload_once(
        self, name: str, body: bytes, content_type: str | None, target: str | None = None, task: Task | None = None
    ) -> UploadResult:
        """Validates first and stores only then, so a refused body leaves nothing behind."""
        self._check_size(body)
        session = await self._new_session(name, target, task)
        schema, validated, profile = await self._prepare(body, content_type, session)
        session.schema_ = schema
        await self.repo.create_session(session)
        try:
            await self._store_part(session, 1, hashlib.sha256(body).hexdigest(), schema, validated, profile)
            result = await self.commit(session.id)
        except Exception:
            try:  # no commit of this session runs any more: its own just stopped
                await self._end_abandoned(session, datetime.now(UTC))
            except Conflict:
                pass  # committed after all
            raise
        return UploadResult(**dict(result), upload=validated.report())

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
                raise Missing(
                    f"dataset {name!r} has no version {version}; "
                    f"it has {[v.version for v in record.versions] or 'none'}"
                )
        return await self.repo.manifest(name, ref)

    async def rows(self, name: str, version: str, offset: int, limit: int) -> RowsPage:
        self._check_page(offset, limit, self.settings.max_page_rows)
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
        return RowsPage(
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
