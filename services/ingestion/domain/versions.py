"""A version's making and finding, without the store: which rows of an upload's parts repeat
an earlier row, what the version's manifest says, which number it gets, and which version a
reference names."""

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.common.contracts import Origin
from services.ingestion.domain import profile as profiles
from services.ingestion.domain.errors import BadInput, Conflict, Missing
from services.ingestion.domain.model import DatasetRecord, Manifest, PartFile, PartRecord, VersionRef
from services.ingestion.domain.rows import first_occurrences
from services.ingestion.domain.schema import Schema


def first_rows(hashes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The fingerprints of the parts' rows in order (given part by part), and over them True
    for each row that repeats no earlier row of any part. Duplicates within a part are gone
    already, so what this drops is a row repeated across parts."""
    every = np.concatenate(hashes)
    keep = np.zeros(len(every), dtype=bool)
    keep[first_occurrences(every)] = True
    return every, keep


def draft(
    dataset: str,
    upload_id: str,
    schema: Schema,
    parts: list[PartRecord],
    hashes: np.ndarray,
    duplicates: int,
    origin: Origin | None = None,
) -> Manifest:
    """The manifest the upload's version will have, but for its number (0 here), which the
    commit gives it. `hashes` are the fingerprints of the rows kept, in order; `duplicates`
    how many rows repeating an earlier part were dropped; `origin` the session's, if any."""
    digest = hashlib.sha256(schema.hash().encode() + hashes.astype("<u8").tobytes()).hexdigest()
    merged: dict[str, Any] | None = None
    for part in parts:
        merged = profiles.merge(merged, part.profile)
    return Manifest(
        dataset=dataset,
        version=0,
        upload_id=upload_id,
        schema_=schema,
        schema_hash=schema.hash(),
        parts=[PartFile(key=p.key, rows=p.rows) for p in parts],
        row_count=int(len(hashes)),
        sha256=digest,
        profile=profiles.finish(merged or {}, schema),
        rows_rejected=sum(p.report.rows_rejected for p in parts),
        duplicates_dropped=duplicates + sum(p.report.duplicates_dropped for p in parts),
        origin=origin,
    )


def numbered(record: DatasetRecord, draft: Manifest) -> Manifest | None:
    """The draft as the dataset's next version; None when it holds what the latest version
    holds already (nothing to add). Refused when the dataset's schema changed since the
    upload began."""
    if record.schema_ is not None and record.schema_.hash() != draft.schema_hash:
        raise Conflict(f"dataset {record.name!r} changed its schema while this upload was open; upload again")
    latest = record.latest
    if latest is not None and latest.sha256 == draft.sha256:
        return None
    return draft.model_copy(update={"version": latest.version + 1 if latest else 1})


def add(record: DatasetRecord, manifest: Manifest, key: str) -> None:
    """Records the version, its manifest saved under `key`, and owes its event (the outbox)."""
    record.schema_ = manifest.schema_
    record.versions.append(
        VersionRef(
            version=manifest.version,
            manifest_key=key,
            upload_id=manifest.upload_id,
            row_count=manifest.row_count,
            sha256=manifest.sha256,
            created_at=manifest.created_at,
        )
    )
    record.outbox.append(manifest.version)


def resolve(record: DatasetRecord, version: str) -> VersionRef:
    """The version a reference names: a number or 'latest'."""
    if version == "latest":
        if record.latest is None:
            raise Missing(f"dataset {record.name!r} has no versions yet")
        return record.latest
    if not version.isdigit():
        raise BadInput(f"a version is a number or 'latest', not {version!r}")
    found = record.version(int(version))
    if found is None:
        raise Missing(
            f"dataset {record.name!r} has no version {version}; it has {[v.version for v in record.versions] or 'none'}"
        )
    return found
