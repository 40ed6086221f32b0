"""Making and finding a version, without a store: the rows an upload's parts repeat, the
number a version gets, and what a version reference names."""

import numpy as np
import pytest

from services.common import contracts
from services.ingestion.domain import versions
from services.ingestion.domain.errors import BadInput, Conflict, Missing
from services.ingestion.domain.model import DatasetRecord, Manifest, PartRecord, PartReport
from services.ingestion.domain.schema import Column, Schema

SCHEMA = Schema(task="classification", target="y", columns=[Column(name="y", type="category")])


def part(key: str, rows: int) -> PartRecord:
    report = PartReport(
        rows_received=rows,
        rows_accepted=rows,
        rows_rejected=1,
        duplicates_dropped=0,
        rejected_rows=[],
        unknown_columns=[],
        absent_columns=[],
    )
    profile = {"rows": rows, "columns": {"y": {"rows": rows, "missing": 0, "counts": {"a": rows}}}}
    return PartRecord(number=1, sha256="0" * 64, key=key, rows=rows, report=report, profile=profile)


def test_rows_repeating_a_row_of_an_earlier_part_are_the_ones_dropped():
    hashes = [np.array([1, 2, 3], dtype=np.uint64), np.array([3, 4, 1, 5], dtype=np.uint64)]
    every, keep = versions.first_rows(hashes)
    assert every.tolist() == [1, 2, 3, 3, 4, 1, 5]
    assert keep.tolist() == [True, True, True, False, True, False, True]


def test_a_draft_sums_its_parts_and_its_content_hash_follows_the_rows_kept():
    parts = [part("p1", 2), part("p2", 3)]
    kept = np.array([7, 8, 9, 10, 11], dtype=np.uint64)
    draft = versions.draft("d", "u1", SCHEMA, parts, kept, duplicates=2)
    assert (draft.version, draft.row_count, draft.rows_rejected, draft.duplicates_dropped) == (0, 5, 2, 2)
    assert draft.profile["rows"] == 5 and draft.profile["class_balance"] == {"a": 1.0}
    assert draft.sha256 != versions.draft("d", "u1", SCHEMA, parts, kept[::-1].copy(), 2).sha256


def test_a_draft_is_numbered_next_and_added_with_its_event_owed():
    record = DatasetRecord(name="d", task="classification", target="y")
    draft = versions.draft("d", "u1", SCHEMA, [part("p1", 1)], np.array([1], dtype=np.uint64), 0)
    first = versions.numbered(record, draft)
    assert first is not None and first.version == 1
    versions.add(record, first, "manifest:d:1")
    assert record.latest is not None and record.latest.upload_id == "u1" and record.outbox == [1]
    assert versions.numbered(record, draft) is None, "the same content as the latest version adds nothing"
    other = Schema(task="classification", target="z", columns=[Column(name="z", type="category")])
    with pytest.raises(Conflict, match="changed its schema"):
        versions.numbered(record, draft.model_copy(update={"schema_hash": other.hash()}))


def test_a_version_reference_is_a_number_or_latest():
    record = DatasetRecord(name="d", task="classification", target="y")
    with pytest.raises(Missing, match="no versions yet"):
        versions.resolve(record, "latest")
    draft = versions.draft("d", "u1", SCHEMA, [part("p1", 1)], np.array([1], dtype=np.uint64), 0)
    versions.add(record, draft.model_copy(update={"version": 1}), "manifest:d:1")
    assert versions.resolve(record, "latest").version == versions.resolve(record, "1").version == 1
    with pytest.raises(Missing, match=r"no version 2; it has \[1\]"):
        versions.resolve(record, "2")
    with pytest.raises(BadInput, match="a number or 'latest'"):
        versions.resolve(record, "first")


def test_a_manifest_as_ingestion_serves_it_reads_as_the_shared_contract_says():
    """Ingestion's manifest is the stored one, richer than the contract its readers use
    (services/common/contracts): every field the contract names is one ingestion serves."""
    draft = versions.draft("d", "u1", SCHEMA, [part("p1", 1)], np.array([1], dtype=np.uint64), 0)
    served = draft.model_copy(update={"version": 1}).model_dump(mode="json")
    read = contracts.Manifest.model_validate(served)
    assert read.model_dump(mode="json").keys() <= served.keys()
    assert read.schema_.target == "y" and read.row_count == 1 and read.sha256 == draft.sha256
    for contract, own in (
        (contracts.Manifest, Manifest),
        (contracts.DatasetSchema, Schema),
        (contracts.Column, Column),
    ):
        assert contract.model_fields.keys() <= own.model_fields.keys(), contract.__name__
