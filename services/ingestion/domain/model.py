"""What ingestion stores: dataset records, version manifests, upload sessions and their
parts, the indexes. Some are answered as they are stored (a dataset, a manifest); the other
answers are in views.py."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from services.common.contracts import DATASET_NAME, Origin, Task
from services.ingestion.domain.schema import Schema


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


class DatasetInfo(Stored):
    """A dataset as clients see it."""

    name: str = Field(pattern=DATASET_NAME)
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


class DatasetIndex(BaseModel):
    """The names of all datasets, under one key: the state store cannot list its keys."""

    names: list[str] = Field(default_factory=list)


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
    origin: Origin | None = None  # why the version exists beyond an upload: a monitoring retrain's


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
    origin: Origin | None = None  # given at its start (a monitoring retrain); its commit copies it to the manifest

    def committing_before(self, cutoff: datetime) -> bool:
        """Whether its commit began before the cutoff: one that has run that long has died."""
        return self.state == "committing" and (self.committing_since or self.created_at) <= cutoff


class OpenUploads(RootModel[dict[str, str]]):
    """Upload id -> when it started (ISO 8601), for uploads neither committed nor aborted."""

    root: dict[str, str] = Field(default_factory=dict)
