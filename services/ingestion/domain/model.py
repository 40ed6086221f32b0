"""What ingestion stores (dataset records, version manifests, upload sessions, the indexes)
and what its use cases answer."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from services.ingestion.domain.schema import NAME, Schema, Task


def now() -> datetime:
    return datetime.now(UTC)


class Stored(BaseModel):
    # `schema` is the natural name but shadows a BaseModel attribute: store it under an alias.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class VersionRef(Stored):
    version: int
    manifest_key: str
    upload_id: str
    row_count: int
    sha256: str
    created_at: datetime


class DatasetSummary(BaseModel):
    name: str
    task: Task
    target: str
    versions: int
    latest_version: int | None
    latest_rows: int | None
    created_at: datetime


class DatasetInfo(Stored):
    """A dataset as clients see it."""

    name: str = Field(pattern=NAME)
    task: Task
    target: str
    schema_: Schema | None = Field(None, alias="schema")  # None until the first upload infers it
    created_at: datetime = Field(default_factory=now)
    versions: list[VersionRef] = Field(default_factory=list)


class DatasetRecord(DatasetInfo):
    """One key per dataset. Committing a version is one compare-and-swap of this record."""

    outbox: list[int] = Field(default_factory=list)  # committed versions whose event is not yet published

    @property
    def latest(self) -> VersionRef | None:
        return self.versions[-1] if self.versions else None

    def version(self, number: int) -> VersionRef | None:
        return next((v for v in self.versions if v.version == number), None)

    def version_of(self, upload_id: str) -> VersionRef | None:
        return next((v for v in self.versions if v.upload_id == upload_id), None)

    def summary(self) -> DatasetSummary:
        latest = self.latest
        return DatasetSummary(
            name=self.name,
            task=self.task,
            target=self.target,
            versions=len(self.versions),
            latest_version=latest.version if latest else None,
            latest_rows=latest.row_count if latest else None,
            created_at=self.created_at,
        )


class DatasetIndex(BaseModel):
    """The names of all datasets, under one key: the state store cannot list its keys."""

    names: list[str] = Field(default_factory=list)


class DatasetList(BaseModel):
    """One page of the datasets, by name."""

    datasets: list[DatasetSummary]
    total: int
    offset: int
    limit: int


class PartFile(Stored):
    key: str
    rows: int


class Manifest(Stored):
    dataset: str
    version: int
    upload_id: str
    schema_: Schema = Field(alias="schema")
    schema_hash: str
    parts: list[PartFile]
    row_count: int
    sha256: str  # over the schema and the fingerprints of the rows, in order
    profile: dict[str, Any]
    rows_rejected: int
    duplicates_dropped: int
    created_at: datetime = Field(default_factory=now)


class RejectedRow(BaseModel):
    row: int  # 1-based number of the data row in the body (the header is not counted)
    reason: str


class PartReport(Stored):
    """What validation did with one body."""

    rows_received: int
    rows_accepted: int
    rows_rejected: int
    duplicates_dropped: int  # exact duplicates of an earlier row of the same body
    rejected_rows: list[RejectedRow]  # the first ones, with reasons
    unknown_columns: list[str]  # in the data, not in the schema: ignored
    absent_columns: list[str]  # in the schema, not in the data: missing


class PartResult(PartReport):
    """The answer to one part of a multi-part upload."""

    part: int
    unchanged: bool  # the same part was received before: nothing stored again
    schema_: Schema = Field(alias="schema")


class PartRef(Stored):
    """What an upload session keeps of each part: small, so the session stays small."""

    sha256: str  # of the body as received: a retried identical part is recognised by it
    key: str  # blob key prefix: <key>.parquet holds the rows, <key>.hashes their fingerprints
    rows: int


class PartRecord(PartRef):
    """The whole account of a part, stored under its own key."""

    number: int
    report: PartReport
    profile: dict[str, Any]


UploadPhase = Literal["open", "committing", "committed", "aborted"]
"""open: takes parts. committing: a commit has fixed the parts and is making the version; no
more parts, no abort. committed, aborted: ended."""


class UploadState(Stored):
    """An upload session as clients see it."""

    upload_id: str
    dataset: str
    state: UploadPhase
    parts: list[int]
    rows_accepted: int
    version: int | None
    created_at: datetime
    schema_: Schema | None = Field(alias="schema")


class UploadSession(Stored):
    id: str
    dataset: str
    target: str
    task: Task | None = None
    schema_: Schema | None = Field(None, alias="schema")
    state: UploadPhase = "open"
    created_at: datetime = Field(default_factory=now)
    parts: dict[int, PartRef] = Field(default_factory=dict)
    version: int | None = None  # once committed
    committing_since: datetime | None = None  # when a commit last marked it committing

    def committing_before(self, cutoff: datetime) -> bool:
        """Whether its commit began before the cutoff: one that has run that long has died."""
        return self.state == "committing" and (self.committing_since or self.created_at) <= cutoff

    def public(self) -> UploadState:
        return UploadState(
            upload_id=self.id,
            dataset=self.dataset,
            state=self.state,
            parts=sorted(self.parts),
            rows_accepted=sum(p.rows for p in self.parts.values()),
            version=self.version,
            created_at=self.created_at,
            schema_=self.schema_,
        )


class OpenUploads(RootModel[dict[str, str]]):
    """Upload id -> when it started (ISO 8601), for uploads neither committed nor aborted."""

    root: dict[str, str] = Field(default_factory=dict)


class CommitResult(Stored):
    """The answer to a commit: the version the upload is now, or the latest one when the
    upload's content was identical to it (unchanged)."""

    dataset: str
    version: int
    unchanged: bool
    row_count: int
    sha256: str
    rows_rejected: int
    duplicates_dropped: int
    schema_: Schema = Field(alias="schema")
    profile: dict[str, Any]

    @classmethod
    def of(cls, manifest: Manifest, unchanged: bool) -> "CommitResult":
        return cls(
            dataset=manifest.dataset,
            version=manifest.version,
            unchanged=unchanged,
            row_count=manifest.row_count,
            sha256=manifest.sha256,
            rows_rejected=manifest.rows_rejected,
            duplicates_dropped=manifest.duplicates_dropped,
            schema_=manifest.schema_,
            profile=manifest.profile,
        )


class UploadResult(CommitResult):
    """The answer to a one-shot upload: the commit, and what validation did with the body."""

    upload: PartReport


class RowsPage(BaseModel):
    dataset: str
    version: int
    offset: int
    limit: int
    total: int
    rows: list[dict[str, Any]]
