"""What ingestion's routes take and answer, beside the records answered as they are stored
(a dataset, a manifest: model.py), and the functions that make the answers of records."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.common.contracts import DATASET_NAME, Task
from services.ingestion.domain.errors import BadInput
from services.ingestion.domain.model import (
    DatasetRecord,
    Manifest,
    PartReport,
    Stored,
    UploadPhase,
    UploadSession,
)
from services.ingestion.domain.schema import Column, Schema


class DatasetSpec(BaseModel):
    """What creating a dataset takes."""

    name: str = Field(pattern=DATASET_NAME, description="lower-case letters, digits, '-' and '_'")
    task: Task
    target: str = Field(min_length=1)
    columns: list[Column] | None = Field(None, description="omit to infer the schema from the first upload")

    def record(self, max_columns: int) -> DatasetRecord:
        """The new dataset's record; BadInput when the declared schema is not one."""
        schema = None
        if self.columns is not None:
            if len(self.columns) > max_columns:
                raise BadInput(
                    f"the schema declares {len(self.columns)} columns; a dataset may have at most {max_columns}"
                )
            try:
                schema = Schema(task=self.task, target=self.target, columns=self.columns)
            except ValueError as exc:
                raise BadInput(f"the schema is not valid: {exc}") from None
        return DatasetRecord(name=self.name, task=self.task, target=self.target, schema_=schema)


class DatasetSummary(BaseModel):
    name: str
    task: Task
    target: str
    versions: int
    latest_version: int | None
    latest_rows: int | None
    created_at: datetime


def summary(record: DatasetRecord) -> DatasetSummary:
    latest = record.latest
    return DatasetSummary(
        name=record.name,
        task=record.task,
        target=record.target,
        versions=len(record.versions),
        latest_version=latest.version if latest else None,
        latest_rows=latest.row_count if latest else None,
        created_at=record.created_at,
    )


class DatasetList(BaseModel):
    """One page of the datasets, by name."""

    datasets: list[DatasetSummary]
    total: int
    offset: int
    limit: int


def check_page(offset: int, limit: int, most: int) -> None:
    """Refuses a page a list cannot answer (the routes check the bounds they know; the
    largest page is a setting)."""
    if offset < 0 or not 1 <= limit <= most:
        raise BadInput(f"offset must be >= 0 and limit between 1 and {most}")


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


def upload_state(session: UploadSession) -> UploadState:
    return UploadState(
        upload_id=session.id,
        dataset=session.dataset,
        state=session.state,
        parts=sorted(session.parts),
        rows_accepted=sum(p.rows for p in session.parts.values()),
        version=session.version,
        created_at=session.created_at,
        schema_=session.schema_,
    )


class PartResult(PartReport):
    """The answer to one part of a multi-part upload."""

    part: int
    unchanged: bool  # the same part was received before: nothing stored again
    schema_: Schema = Field(alias="schema")


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
