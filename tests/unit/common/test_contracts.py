"""The contracts: one copy of what services share, light enough for the CLI to import."""

import math
import subprocess
import sys
from typing import get_args

import pytest

from services.common.contracts import ColumnType, DatasetSchema, Manifest, ModelCard, Task, TaskName, coercion


def test_importing_the_contracts_pulls_in_no_service_dependency():
    heavy = ("fastapi", "starlette", "httpx", "dapr", "cloudevents", "pyarrow", "numpy", "pandas", "sklearn")
    code = f"import sys, services.common.contracts; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_payloads_task_names_every_task_there_is():
    assert set(get_args(TaskName)) == set(Task)
    card = ModelCard.model_validate(
        {"task": "regression", "target": "y", "features": [{"name": "x", "type": "number"}]}
    )
    assert card.task is Task.REGRESSION and card.model_dump(mode="json")["task"] == "regression"


def test_a_feature_type_is_a_column_type_when_it_is_one_and_kept_as_sent_when_not():
    card = ModelCard.model_validate(
        {
            "task": "regression",
            "target": "y",
            "features": [{"name": "x", "type": "number"}, {"name": "d", "type": "date"}],
        }
    )
    assert [type(f.type) for f in card.features] == [ColumnType, str]
    assert [f.type for f in card.features] == ["number", "date"]
    assert not card.all_numeric


def test_the_manifest_reads_what_ingestion_serves_and_ignores_what_it_does_not_know():
    served = {
        "dataset": "houses",
        "version": 3,
        "schema": {"task": "regression", "target": "price", "columns": [{"name": "price", "type": "number"}]},
        "schema_hash": "h",
        "row_count": 10,
        "sha256": "s",
        "parts": [{"key": "k", "rows": 10}],
        "upload_id": "u",
    }
    manifest = Manifest.model_validate(served)
    assert (manifest.schema_.task, manifest.schema_.target_type) == (Task.REGRESSION, ColumnType.NUMBER)
    assert manifest.model_dump(mode="json")["schema"]["target"] == "price"


def test_a_schema_without_its_target_is_refused():
    with pytest.raises(ValueError, match="target 'y' is not one of the columns"):
        DatasetSchema.model_validate(
            {"task": "classification", "target": "y", "columns": [{"name": "x", "type": "text"}]}
        )


@pytest.mark.parametrize("value", [1, 1.0, "1"])
def test_one_category_however_its_value_arrives(value):
    assert coercion.coerce(value, ColumnType.CATEGORY) == "1"


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (True, "boolean", 1.0),
        (0, "boolean", 0.0),
        (3, "integer", 3.0),
        (2.5, "number", 2.5),
        (None, "number", math.nan),
        (math.nan, "category", math.nan),
        (None, "boolean", math.nan),
    ],
)
def test_numbers_and_booleans_are_floats_and_missing_is_nan(value, type_, expected):
    assert coercion.coerce(value, type_) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("value", "type_", "words"),
    [
        (True, "number", "expected a number"),
        ("3", "integer", "expected a number"),
        (2.5, "integer", "expected an integer"),
        (math.inf, "number", "expected a finite number"),
        (2, "boolean", "expected true or false"),
        ([1], "category", "expected a string"),
    ],
)
def test_a_value_that_cannot_be_its_type_is_refused_in_words(value, type_, words):
    with pytest.raises(coercion.WrongType, match=words):
        coercion.coerce(value, type_)


def test_numbers_and_booleans_read_as_floats_the_rest_as_objects():
    assert [coercion.dtype(t) for t in ColumnType] == ["float64", "float64", "object", "float64", "object"]
