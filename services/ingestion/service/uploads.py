"""Uploads: sessions that take a dataset's new rows in parts (each validated and stored as it
arrives) until a commit makes them a version, or an abort or expiry drops them; and the
one-shot upload, a session of one part committed at once."""

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.contracts import Origin, Task
from services.ingestion.domain import profile as profiles
from services.ingestion.domain import uploads
from services.ingestion.domain.errors import BadInput, Conflict, Missing, NoValidRows, TooLarge
from services.ingestion.domain.model import PartRecord, PartRef, UploadSession
from services.ingestion.domain.parse import Limits, parse
from services.ingestion.domain.schema import Schema, infer_schema
from services.ingestion.domain.validate import Validated, validate
from services.ingestion.domain.views import PartResult, UploadResult
from services.ingestion.metrics import IngestionMetrics, outcome_of
from services.ingestion.repository import DatasetRepository
from services.ingestion.service.commit import Commits
from services.ingestion.service.sessions import Sessions
from services.ingestion.settings import Settings

log = logging.getLogger(__name__)


class Uploads:
    def __init__(
        self,
        repo: DatasetRepository,
        settings: Settings,
        sessions: Sessions,
        commits: Commits,
        metrics: IngestionMetrics | None = None,
    ):
        self.repo, self.settings, self.sessions, self.commits = repo, settings, sessions, commits
        self.metrics = metrics or IngestionMetrics()
        self.limits = Limits(settings.max_columns, settings.max_field_chars)

    async def start(
        self, name: str, target: str | None = None, task: Task | None = None, origin: Origin | None = None
    ) -> UploadSession:
        """`origin`: the monitor's, for a retrain; the version the session commits keeps it."""
        session = uploads.new_session(name, await self.repo.dataset(name), target, task, origin)
        await self.repo.create_session(session)
        return session

    async def of(self, name: str, upload_id: str) -> UploadSession:
        """The dataset's upload, in whatever state."""
        found = await self.repo.session(upload_id)
        if found is None or found.dataset != name:
            raise Missing(f"dataset {name!r} has no upload {upload_id!r}")
        return found

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.settings.max_part_bytes:
            raise TooLarge.part(str(len(body)), self.settings.max_part_bytes)

    async def put_part(self, upload_id: str, number: int, body: bytes, content_type: str | None) -> PartResult:
        """As _put_part, counted."""
        self.metrics.received(len(body))
        try:
            result = await self._put_part(upload_id, number, body, content_type)
        except Exception as exc:
            self.metrics.parts.labels(outcome_of(exc)).inc()
            raise
        self.metrics.parts.labels("unchanged" if result.unchanged else "stored").inc()
        return result

    async def _put_part(self, upload_id: str, number: int, body: bytes, content_type: str | None) -> PartResult:
        if not 1 <= number <= self.settings.max_parts:
            raise BadInput(f"part numbers go from 1 to {self.settings.max_parts}, not {number}")
        self._check_size(body)
        sha = hashlib.sha256(body).hexdigest()
        session = await self.sessions.open(upload_id)
        if session.state == "committed":
            raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; start a new upload")
        if session.state == "committing":
            raise Conflict(uploads.takes_no_parts(upload_id))
        existing = session.parts.get(number)
        if existing is not None and existing.sha256 == sha and session.schema_ is not None:
            # A retried part: nothing stored again.
            report = (await self.repo.part_record(existing.key)).report
            return PartResult(part=number, unchanged=True, schema_=session.schema_, **dict(report))
        schema, validated, profile = await self._prepare(body, content_type, session)
        stored = await self._store_part(session, number, sha, schema, validated, profile)
        if stored is None:  # another part inferred the schema first: validate against that one instead
            return await self._put_part(upload_id, number, body, content_type)
        self.metrics.stored(validated.accepted, validated.rejected, validated.duplicates)
        return PartResult(part=number, unchanged=False, schema_=schema, **dict(stored.report))

    async def _prepare(
        self, body: bytes, content_type: str | None, session: UploadSession
    ) -> tuple[Schema, Validated, dict[str, Any]]:
        """Parses, validates and profiles in a worker thread: CPU work must not stall the
        event loop, which serves the other parts in flight meanwhile."""

        def work() -> tuple[Schema, Validated, dict[str, Any]]:
            parsed = parse(body, content_type, self.limits, session.schema_)
            schema = session.schema_
            if schema is None:
                try:
                    schema = infer_schema(parsed.table, session.target, session.task)
                except ValueError as exc:
                    raise BadInput(str(exc)) from None
            validated = validate(parsed, schema, self.settings.max_field_chars, self.settings.max_listed_rejections)
            return schema, validated, profiles.part_profile(validated.table, schema)

        try:
            return await asyncio.to_thread(work)
        except NoValidRows as exc:  # refused, and nothing stored: its rows count all the same
            self.metrics.refused(exc.details)
            raise

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
            current = uploads.usable(current, upload_id)
            if current.state == "committed":
                raise Conflict(f"upload {upload_id!r} was committed while this part was on its way")
            if current.state == "committing":
                raise Conflict(uploads.takes_no_parts(upload_id))
            if current.schema_ is not None and current.schema_ != schema:
                return current
            replaced = current.parts.get(number)
            current.schema_ = schema
            current.parts[number] = ref
            return current

        try:
            current = await self.sessions.update(upload_id, record_part)
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

    async def abort(self, upload_id: str) -> None:
        """Refused while a commit runs: the version it makes is made of the parts."""
        await self.sessions.end(upload_id, "aborted")

    async def expire(self, now: datetime | None = None) -> list[str]:
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
                made = await self.sessions.end_abandoned(session, cutoff)
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

    async def upload_once(
        self, name: str, body: bytes, content_type: str | None, target: str | None = None, task: Task | None = None
    ) -> UploadResult:
        """Validates first and stores only then, so a refused body leaves nothing behind."""
        self.metrics.received(len(body))
        self._check_size(body)
        session = uploads.new_session(name, await self.repo.dataset(name), target, task)
        schema, validated, profile = await self._prepare(body, content_type, session)
        session.schema_ = schema
        await self.repo.create_session(session)
        try:
            await self._store_part(session, 1, hashlib.sha256(body).hexdigest(), schema, validated, profile)
            self.metrics.stored(validated.accepted, validated.rejected, validated.duplicates)
            result = await self.commits.commit(session.id)
        except Exception:
            try:  # no commit of this session runs any more: its own just stopped
                await self.sessions.end_abandoned(session, datetime.now(UTC))
            except Conflict:
                pass  # committed after all
            raise
        return UploadResult(**dict(result), upload=validated.report())
