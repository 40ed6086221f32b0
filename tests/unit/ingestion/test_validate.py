import numpy as np
import pytest

from services.ingestion.domain.errors import NoValidRows
from services.ingestion.domain.parse import Limits, parse
from services.ingestion.domain.schema import Column, Schema
from services.ingestion.domain.validate import validate

LIMITS = Limits(max_columns=50, max_field_chars=20)


def schema(*columns: Column, target: str = "y", task: str = "classification") -> Schema:
    return Schema(task=task, target=target, columns=list(columns))


def run(body: bytes, s: Schema, listed: int = 20):
    return validate(parse(body, "text/csv", LIMITS), s, LIMITS.max_field_chars, listed)


NUMERIC = schema(
    Column(name="x", type="number"),
    Column(name="n", type="integer"),
    Column(name="b", type="boolean"),
    Column(name="y", type="category"),
)


def test_values_are_coerced_to_their_column_types():
    v = run(b"x,n,b,y\n 1.5 ,3,Yes, a \n-2e3,4.0,0,b\n", NUMERIC)
    assert v.table.to_pylist() == [
        {"x": 1.5, "n": 3, "b": True, "y": "a"},
        {"x": -2000.0, "n": 4, "b": False, "y": "b"},
    ]
    assert v.report().rows_rejected == 0


def test_bad_values_reject_their_row_with_the_row_number_and_reason():
    v = run(b"x,n,b,y\n1,2,true,a\nabc,2,true,a\n1,2.5,true,a\n1,2,maybe,a\ninf,2,true,a\n", NUMERIC)
    assert v.accepted == 1 and v.rejected == 4
    assert [(p.row, p.reason) for p in v.problems] == [
        (2, "column 'x': 'abc' is not a number"),
        (3, "column 'n': '2.5' is not an integer"),
        (4, "column 'b': 'maybe' is not a boolean"),
        (5, "column 'x': 'inf' is not a finite number"),
    ]


def test_only_the_first_n_rejections_are_listed_but_all_are_counted():
    body = b"x,n,b,y\n" + b"bad,1,true,a\n" * 30 + b"1,1,true,a\n"
    v = run(body, NUMERIC, listed=5)
    assert v.rejected == 30 and len(v.problems) == 5 and v.accepted == 1


def test_a_missing_target_rejects_the_row_other_missing_values_are_kept():
    v = run(b"x,n,b,y\n,NA,,a\n1,2,true,\n", NUMERIC)
    assert v.table.to_pylist() == [{"x": None, "n": None, "b": None, "y": "a"}]
    assert [(p.row, p.reason) for p in v.problems] == [(2, "the target 'y' is missing")]


def test_missing_policies_reject_and_fill():
    s = schema(
        Column(name="a", type="number", missing="reject"),
        Column(name="b", type="integer", missing="fill", fill_value=0),
        Column(name="c", type="category", missing="fill", fill_value="unknown"),
        Column(name="y", type="category"),
    )
    v = run(b"a,b,c,y\n1,,,p\n,5,z,q\n", s)
    assert v.table.to_pylist() == [{"a": 1.0, "b": 0, "c": "unknown", "y": "p"}]
    assert [(p.row, p.reason) for p in v.problems] == [(2, "column 'a' is missing")]


def test_exact_duplicate_rows_are_dropped_after_coercion():
    v = run(b"x,n,b,y\n1,2,true,a\n1.0,2,TRUE,a\n1,2,true,b\n1,2,true,a\n", NUMERIC)
    assert v.accepted == 2 and v.duplicates == 2
    assert [r["y"] for r in v.table.to_pylist()] == ["a", "b"]
    assert len(v.hashes) == 2 and v.hashes[0] != v.hashes[1]


def test_unknown_columns_are_ignored_and_absent_ones_reported_as_missing():
    v = run(b"x,y,extra\n1,a,zzz\n", NUMERIC)
    assert v.unknown_columns == ["extra"] and v.absent_columns == ["n", "b"]
    assert v.table.column_names == ["x", "n", "b", "y"]
    assert v.table.to_pylist() == [{"x": 1.0, "n": None, "b": None, "y": "a"}]


def test_a_body_without_the_target_column_is_refused_outright():
    with pytest.raises(NoValidRows, match="target column 'y' is not in the data"):
        run(b"x,n\n1,2\n", NUMERIC)


def test_a_body_of_only_bad_rows_is_refused_with_the_first_reasons():
    with pytest.raises(NoValidRows, match=r"all 2 rows were rejected; the first: row 1: column 'x'") as failure:
        run(b"x,n,b,y\nq,1,true,a\nr,1,true,a\n", NUMERIC)
    assert failure.value.details["rows_rejected"] == 2


def test_overlong_fields_are_rejected():
    s = schema(Column(name="t", type="text"), Column(name="y", type="category"))
    v = run(b"t,y\nshort,a\n" + b"x" * 21 + b",a\n", s)
    assert v.accepted == 1 and v.problems[0].reason == "column 't': the value is longer than 20 characters"


def test_malformed_rows_count_as_rejected_with_their_numbers():
    v = run(b"x,n,b,y\n1,2,true,a\n1,2\nbad,2,true,a\n", NUMERIC)
    assert v.received == 3 and v.rejected == 2
    assert [(p.row, p.reason) for p in v.problems] == [
        (2, "has 2 fields, the header has 4"),
        (3, "column 'x': 'bad' is not a number"),
    ]


def test_integers_beyond_64_bits_are_rejected_not_wrapped():
    v = run(b"x,n,b,y\n1,99999999999999999999,true,a\n1,7,true,a\n", NUMERIC)
    assert v.table["n"].to_pylist() == [7]
    assert v.problems[0].reason == "column 'n': '99999999999999999999' is not an integer"


def test_row_fingerprints_do_not_depend_on_chunking():
    body = b"x,n,b,y\n" + b"".join(f"{i},{i},true,c{i % 3}\n".encode() for i in range(100))
    v = run(body, NUMERIC)
    again = run(body, NUMERIC)
    assert np.array_equal(v.hashes, again.hashes)
    assert len(set(v.hashes.tolist())) == 100


def test_one_huge_integer_among_many_rejects_only_its_row():
    v = run(b"x,n,b,y\n1,5,true,a\n1,99999999999999999999,true,a\n1,-7,true,a\n1,6.0,true,a\n", NUMERIC)
    assert v.table["n"].to_pylist() == [5, -7, 6]
    assert [(p.row, p.reason) for p in v.problems] == [(2, "column 'n': '99999999999999999999' is not an integer")]


@pytest.mark.parametrize(
    "typed, shown",
    [
        (False, ["'inf'", "'-1e309'", "'Infinity'"]),  # read as strings, then coerced
        (True, ["'inf'", "'-inf'", "'inf'"]),  # read typed by the CSV reader
    ],
)
def test_infinite_numbers_reject_their_row_as_not_finite(typed, shown):
    s = schema(Column(name="x", type="number"), Column(name="y", type="category"))
    parsed = parse(b"x,y\n1,a\ninf,a\n-1e309,b\nInfinity,a\n2,b\n", "text/csv", LIMITS, s if typed else None)
    v = validate(parsed, s, LIMITS.max_field_chars, 20)
    assert v.table["x"].to_pylist() == [1.0, 2.0]
    assert [p.reason for p in v.problems] == [f"column 'x': {value} is not a finite number" for value in shown]


def test_a_fill_value_is_checked_against_its_column_type_up_front():
    with pytest.raises(ValueError, match="fill_value 'abc' is not a number"):
        Column(name="x", type="number", missing="fill", fill_value="abc")
    with pytest.raises(ValueError, match="fill_value inf is not a finite number"):
        Column(name="x", type="number", missing="fill", fill_value=float("inf"))
    with pytest.raises(ValueError, match="fill_value 1.5 is not an integer"):
        Column(name="x", type="integer", missing="fill", fill_value=1.5)
    with pytest.raises(ValueError, match="fill_value 'maybe' is not a boolean"):
        Column(name="x", type="boolean", missing="fill", fill_value="maybe")
    assert Column(name="x", type="boolean", missing="fill", fill_value=" No ").fill().as_py() is False
