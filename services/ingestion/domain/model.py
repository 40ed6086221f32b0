"""What ingestion stores: dataset records, version manifests, upload sessions."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class DatasetRecord(Stored):
    """One key per dataset. Committing a version is one compare-and-swap of this record."""

    name: str = Field(pattern=NAME)
    task: Task
    target: str
    schema_: Schema | None = Field(None, alias="schema")  # None until the first upload infers it
    created_at: datetime = Field(default_factory=now)
    versions: list[VersionRef] = Field(default_factory=list)
    outbox: list[int] = Field(default_factory=list)  # committed versions whose event is not yet published

    @property
    def latest(self) -> VersionRef | None:
        return self.versions[-1] if self.versions else None

    def version(self, number: int) -> VersionRef | None:
        return next((v for v in self.versions if v.version == number), None)

    def summary(self) -> dict[str, Any]:
        latest = self.latest
        return {"name": self.name, "task": self.task, "target": self.target, "versions": len(self.versions),
                "latest_version": latest.version if latest else None,
                "latest_rows": latest.row_count if latest else None, "created_at": self.created_at}


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


class PartRef(Stored):
    """What an upload session keeps of each part: small, so the session stays small."""

    sha256: str  # of the body as received: a retried identical part is recognised by it
    key: str     # blob key prefix: <key>.parquet holds the rows, <key>.hashes their fingerprints
    rows: int


class PartRecord(PartRef):
    """The whole account of a part, stored under its own key."""

    number: int
    report: dict[str, Any]
    profile: dict[str, Any]


class UploadSession(Stored):
    id: str
    dataset: str
    target: str
    task: Task | None = None
    schema_: Schema | None = Field(None, alias="schema")
    state: Literal["open", "committed", "aborted"] = "open"
    created_at: datetime = Field(default_factory=now)
    parts: dict[int, PartRef] = Field(default_factory=dict)
    version: int | None = None  # once committed

    def public(self) -> dict[str, Any]:
        return {"upload_id": self.id, "dataset": self.dataset, "state": self.state,
                "parts": sorted(self.parts), "rows_accepted": sum(p.rows for p in self.parts.values()),
                "version": self.version, "created_at": self.created_at,
                "schema": self.schema_.model_dump(mode="json") if self.schema_ else None}
