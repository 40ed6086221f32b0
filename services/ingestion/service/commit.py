"""Committing an upload: its parts become one new version of the dataset, all of it or
nothing, and the version's event goes out through the dataset record's outbox."""

import asyncio
import logging
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from services.common import tracing
from services.common.ports import ConcurrencyConflict, EventPublisher, SidecarUnavailable
from services.common.state import Busy
from services.ingestion import outbox
from services.ingestion.domain import profile as profiles
from services.ingestion.domain import uploads, versions
from services.ingestion.domain.errors import Conflict
from services.ingestion.domain.model import DatasetRecord, Manifest, PartRecord, UploadSession
from services.ingestion.domain.schema import Schema
from services.ingestion.domain.views import CommitResult
from services.ingestion.metrics import IngestionMetrics, outcome_of
from services.ingestion.repository import DatasetRepository
from services.ingestion.service.reads import Reads
from services.ingestion.service.sessions import Sessions
from services.ingestion.settings import Settings

log = logging.getLogger(__name__)


class Commits:
    def __init__(
        self,
        repo: DatasetRepository,
        publisher: EventPublisher,
        settings: Settings,
        sessions: Sessions,
        reads: Reads,
        metrics: IngestionMetrics | None = None,
    ):
        self.repo, self.publisher, self.settings = repo, publisher, settings
        self.sessions, self.reads = sessions, reads
        self.metrics = metrics or IngestionMetrics()

    async def commit(self, upload_id: str) -> CommitResult:
        """As _commit, counted (a success by _finish, or as repeated), in a span of its own (the
        version's event, published in it, carries its trace on to training)."""
        with tracing.span("commit", {"upload": upload_id}) as span:
            try:
                result = await self._commit(upload_id)
            except Exception as exc:
                self.metrics.committed(outcome_of(exc))
                raise
            span.set_attributes({"dataset": result.dataset, "version": result.version, "rows": result.row_count})
            return result

    async def _commit(self, upload_id: str) -> CommitResult:
        """Makes the upload's parts one new version, all of it or nothing.

        The session is first marked committing, by its own compare-and-swap: from then on it
        takes no parts and cannot be aborted, so nothing deletes the files the version is made
        of. A commit that finds it committing already (an earlier one failed, or died) goes on,
        and finishes it."""
        session = await self.sessions.open(upload_id)
        retried = False
        if session.state != "committed":
            session, retried = await self.mark_committing(upload_id)
        if session.state == "committed":
            manifest = await self.reads.manifest(session.dataset, str(session.version))
            self.metrics.committed("repeated")
            return CommitResult.of(manifest, unchanged=False)
        schema = uploads.committable(session)
        if retried:  # the earlier commit may have made the version before it stopped
            record = await self.repo.dataset(session.dataset)
            made = record.version_of(upload_id) if record is not None else None
            if made is not None:
                return await self._finish(session, await self.repo.manifest(session.dataset, made), unchanged=False)
        parts, hashes, duplicates = await self._parts_without_repeats(session, schema)
        draft = await asyncio.to_thread(
            versions.draft, session.dataset, session.id, schema, parts, hashes, duplicates, session.origin
        )
        manifest, unchanged = await self._commit_version(draft)
        return await self._finish(session, manifest, unchanged)

    async def mark_committing(self, upload_id: str) -> tuple[UploadSession, bool]:
        """The session as marked committing (or as committed, by a commit that finished
        meanwhile), and whether it was committing already."""
        retried = False

        def mark(current: UploadSession | None) -> UploadSession:
            nonlocal retried
            current = uploads.usable(current, upload_id)
            retried = current.state == "committing"
            if current.state == "committed":
                return current
            uploads.committable(current)
            current.state, current.committing_since = "committing", datetime.now(UTC)
            return current

        return await self.sessions.update(upload_id, mark), retried

    async def _finish(self, session: UploadSession, manifest: Manifest, unchanged: bool) -> CommitResult:
        kept = frozenset() if unchanged else frozenset(p.key for p in manifest.parts)
        await self.sessions.end(session.id, "committed", manifest.version, kept)
        self.metrics.committed("unchanged" if unchanged else "committed", 0 if unchanged else manifest.row_count)
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
        every, keep = await asyncio.to_thread(versions.first_rows, hashes)
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
            manifest = versions.numbered(record, draft)
            if manifest is None:
                return record  # the same content as the latest version: nothing to add
            # Saved before the record points at it, so that no version is without its manifest.
            key = await self.repo.save_manifest(manifest)
            written[key] = manifest
            versions.add(record, manifest, key)
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
                log.warning(
                    "manifests %s of upload %s left in place: %s", sorted(written), upload_id, exc, exc_info=True
                )
                return
        mine = record.version_of(upload_id) if record is not None else None
        for key in written.keys() - {mine.manifest_key if mine else ""}:
            await self.repo.delete_manifest(key)

    # events: at least once, through the dataset record's outbox (see outbox.py)

    async def _announce(self, name: str) -> None:
        try:
            await self.flush_outbox(name)
        except (SidecarUnavailable, ConcurrencyConflict) as exc:  # the bus or the store away: expected
            log.warning("events of dataset %s not published yet, will retry: %s", name, exc)
        except Exception as exc:  # the version is committed; the relay publishes its event later
            log.warning("events of dataset %s not published yet, will retry: %s", name, exc, exc_info=True)

    async def flush_outbox(self, name: str) -> int:
        return await outbox.flush(self.repo, self.publisher, name)

    async def flush_all(self) -> int:
        return await outbox.flush_all(self.repo, self.publisher)
