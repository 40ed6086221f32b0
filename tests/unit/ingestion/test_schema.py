import pyarrow as pa
import pytest
from pydantic import ValidationError

from services.common.contracts import ColumnType, Task
from services.ingestion.domain.schema import Column, Schema, infer_schema


def strings(**columns) -> pa.Table:
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})


def test_inference_picks_the_narrowest_type_per_column():
    table = strings(
        i=["1", "2", None, "-3"],
        f=["1.5", "2", "1e3", None],
        b=["yes", "No", "TRUE", None],
        c=["red", "blue", "red", "red"],
        t=["a long note", "another", "third one", "fourth"],
        y=["a", "b", "a", "b"],
    )
    s = infer_schema(table, "y")
    assert {c.name: c.type for c in s.columns} == {
        "i": ColumnType.INTEGER,
        "f": ColumnType.NUMBER,
        "b": ColumnType.BOOLEAN,
        "c": ColumnType.CATEGORY,
        "t": ColumnType.TEXT,
        "y": ColumnType.CATEGORY,
    }
    assert s.task == Task.CLASSIFICATION


def test_zero_one_columns_are_integers_not_booleans():
    assert infer_schema(strings(z=["0", "1", "1"], y=["a", "b", "a"]), "y").column("z").type == ColumnType.INTEGER


def test_task_is_regression_for_a_continuous_target_and_classification_for_few_labels():
    assert infer_schema(strings(x=["1"] * 3, y=["1.5", "2.5", "3.5"]), "y").task == Task.REGRESSION
    labels = infer_schema(strings(x=["1"] * 3, y=["0", "1", "2"]), "y")
    assert labels.task == Task.CLASSIFICATION and labels.column("y").type == ColumnType.CATEGORY


def test_asking_for_regression_on_a_text_target_is_refused():
    with pytest.raises(ValueError, match="regression needs a numeric target"):
        infer_schema(strings(y=["a", "b"]), "y", Task.REGRESSION)


def test_unknown_target_is_refused_naming_the_columns():
    with pytest.raises(ValueError, match=r"target 'label' is not a column of the data; columns are \['x'\]"):
        infer_schema(strings(x=["1"]), "label")


def test_schema_rules():
    with pytest.raises(ValidationError, match="not one of the columns"):
        Schema(task="classification", target="y", columns=[Column(name="x", type="number")])
    with pytest.raises(ValidationError, match="named more than once"):
        Schema(task="classification", target="x", columns=[Column(name="x", type="number")] * 2)
    with pytest.raises(ValidationError, match="needs a fill_value"):
        Column(name="x", type="number", missing="fill")
    with pytest.raises(ValidationError, match="regression target must be a number"):
        Schema(task="regression", target="y", columns=[Column(name="y", type="category")])


def test_schema_hash_is_stable_and_changes_with_the_schema():
    a = Schema(task="classification", target="y", columns=[Column(name="y", type="category")])
    b = Schema(task="classification", target="y", columns=[Column(name="y", type="category", missing="reject")])
    assert a.hash() == Schema.model_validate(a.model_dump()).hash() and a.hash() != b.hash()


class CountedName(str):
    """A column name that counts how often it is compared with another."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_checking_a_wide_schema_for_repeated_names_compares_names_a_linear_number_of_times():
    n = 2_000  # comparing every pair would take n * (n - 1) / 2 = 1,999,000 comparisons
    columns = [Column.model_construct(name=CountedName(f"c{i}"), type=ColumnType.NUMBER) for i in range(n)]
    CountedName.comparisons = 0
    Schema(task="regression", target="c0", columns=columns)
    assert CountedName.comparisons <= 2 * n, "a quadratic check compares every pair of names"


def test_a_name_repeated_in_a_very_wide_schema_is_found():
    columns = [Column(name=f"c{i}", type="number") for i in range(100_000)]
    assert Schema(task="regression", target="c0", columns=columns).names[-1] == "c99999"
    with pytest.raises(ValidationError, match=r"named more than once: \['c7'\]"):
        Schema(task="regression", target="c0", columns=[*columns, Column(name="c7", type="number")])


def test_a_column_of_numbers_some_infinite_infers_as_number_and_one_of_only_infinities_does_not():
    table = strings(
        x=["1.5", "inf", "-1e309", "Infinity", None],
        all_inf=["inf", "-inf", "inf", "inf", "inf"],
        y=["a", "b", "a", "b", "a"],
    )
    s = infer_schema(table, "y")
    assert s.column("x").type == ColumnType.NUMBER
    assert s.column("all_inf").type != ColumnType.NUMBER
