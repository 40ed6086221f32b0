import math
import statistics

import pyarrow as pa

from services.ingestion.domain import profile
from services.ingestion.domain.schema import Column, Schema

SCHEMA = Schema(
    task="classification",
    target="y",
    columns=[Column(name="x", type="number"), Column(name="t", type="text"), Column(name="y", type="category")],
)


def table(xs, ts, ys) -> pa.Table:
    return pa.table({"x": pa.array(xs, pa.float64()), "t": pa.array(ts, pa.string()), "y": pa.array(ys, pa.string())})


def test_merged_part_profiles_equal_the_profile_of_all_rows():
    a = table([1.0, 2.0, None], ["ab", None, "abcd"], ["p", "q", "p"])
    b = table([10.0, 4.0], ["a", "abc"], ["p", "p"])
    merged = profile.finish(profile.merge(profile.part_profile(a, SCHEMA), profile.part_profile(b, SCHEMA)), SCHEMA)
    whole = profile.finish(profile.part_profile(pa.concat_tables([a, b]), SCHEMA), SCHEMA)
    assert merged["rows"] == whole["rows"] == 5
    for key in ("min", "max", "missing", "present"):
        assert merged["columns"]["x"][key] == whole["columns"]["x"][key]
    assert math.isclose(merged["columns"]["x"]["mean"], statistics.mean([1, 2, 10, 4]))
    assert math.isclose(merged["columns"]["x"]["std"], statistics.stdev([1, 2, 10, 4]))
    assert merged["columns"]["t"] | {} == {"type": "text", "missing": 1, "present": 4, "min_length": 1, "max_length": 4}
    assert merged["columns"]["y"]["counts"] == {"p": 4, "q": 1}
    assert merged["class_balance"] == {"p": 0.8, "q": 0.2}


def test_a_column_missing_in_one_part_merges():
    a = table([None, None], ["a", "b"], ["p", "q"])
    b = table([3.0], ["c"], ["p"])
    merged = profile.finish(profile.merge(profile.part_profile(a, SCHEMA), profile.part_profile(b, SCHEMA)), SCHEMA)
    assert merged["columns"]["x"] | {} == {
        "type": "number",
        "missing": 2,
        "present": 1,
        "min": 3.0,
        "max": 3.0,
        "mean": 3.0,
        "std": 0.0,
    }


def test_summary_for_the_event():
    p = profile.finish(profile.part_profile(table([1.0, None], ["a", "b"], ["p", "q"]), SCHEMA), SCHEMA)
    assert profile.summary(p) == {"rows": 2, "columns": 3, "missing_values": 1, "class_balance": {"p": 0.5, "q": 0.5}}
