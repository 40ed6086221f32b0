"""The upload sessions as stored: what uploads and commits both do to one (the rules of its
life are in domain/uploads.py)."""

from datetime import datetime
from typing import Literal

from services.common.state import Busy, Change
from services.ingestion.domain import uploads
from services.ingestion.domain.errors import Conflict, Missing
from services.ingestion.domain.model import UploadSession
from services.ingestion.repository import DatasetRepository


class Sessions:
    def __init__(self, repo: DatasetRepository):
        self.repo = repo

    async def open(self, upload_id: str) -> UploadSession:
        """The session, unless it is gone or aborted."""
        return uploads.usable(await self.repo.session(upload_id), upload_id)

    async def update(self, upload_id: str, change: Change[UploadSession]) -> UploadSession:
        """Changes go through uploads.usable first, so there is a session to return."""
        try:
            updated = await self.repo.update_session(upload_id, change)
        except Busy:
            raise Conflict(
                f"upload {upload_id!r} is busy: other requests changed it each time this one tried; send this one again"
            ) from None
        if updated is None:
            raise Missing(f"upload {upload_id!r} does not exist")
        return updated

    async def end(
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
        session = await self.update(
            upload_id, lambda current: uploads.close(current, upload_id, state, version, committing_before)
        )
        await self.repo.forget_upload(upload_id)
        for part in session.parts.values():
            for key in (part.key, f"{part.key}-dedup"):
                if key not in kept:
                    await self.repo.delete_part(key)

    async def end_abandoned(self, session: UploadSession, cutoff: datetime) -> int | None:
        """Ends an upload that no commit begun after the cutoff is working on: committed when
        the dataset has a version of it (a commit died after making it), keeping the version's
        files, and returns that version; otherwise aborted, its parts deleted (None). A commit
        that marks the session again meanwhile wins: the abort is then a Conflict."""
        record = await self.repo.dataset(session.dataset)
        mine = record.version_of(session.id) if record is not None else None
        if mine is None:
            await self.end(session.id, "aborted", committing_before=cutoff)
            return None
        manifest = await self.repo.manifest(session.dataset, mine)
        await self.end(session.id, "committed", mine.version, frozenset(p.key for p in manifest.parts))
        return mine.version
