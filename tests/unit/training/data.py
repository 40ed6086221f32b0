"""Small datasets for the training tests: every column type, missing values included."""

import numpy as np
import pandas as pd
import pyarrow as pa

from services.common.contracts import DatasetSchema

MIXED = DatasetSchema.model_validate(
    {
        "task": "classification",
        "target": "label",
        "columns": [
            {"name": "size", "type": "number", "missing": "keep", "fill_value": None},
            {"name": "rooms", "type": "integer"},
            {"name": "colour", "type": "category"},
            {"name": "sold", "type": "boolean"},
            {"name": "note", "type": "text"},
            {"name": "label", "type": "category"},
        ],
    }
)


def mixed_rows(n: int = 60, seed: int = 0) -> pa.Table:
    """Rows of MIXED as ingestion stores them (an Arrow table, nulls for missing values); the
    label follows size and colour, so a model can learn it."""
    rng = np.random.default_rng(seed)
    size = rng.normal(100, 20, n)
    colour = rng.choice(["red", "green", "blue"], n)
    label = np.where((size > 100) | (colour == "red"), "yes", "no")

    def holes(values: list) -> list:
        return [None if i % 7 == 3 else v for i, v in enumerate(values)]

    return pa.table(
        {
            "size": pa.array(holes(size.tolist()), pa.float64()),
            "rooms": pa.array(holes(rng.integers(1, 6, n).tolist()), pa.int64()),
            "colour": pa.array(holes(colour.tolist()), pa.string()),
            "sold": pa.array(holes(rng.choice([True, False], n).tolist()), pa.bool_()),
            "note": pa.array([f"note {i}" for i in range(n)], pa.string()),
            "label": pa.array(label.tolist(), pa.string()),
        }
    )


def separable(n: int = 40) -> tuple[pd.DataFrame, DatasetSchema]:
    """Two classes a single threshold on x splits, far apart."""
    x = np.r_[np.linspace(0, 1, n // 2), np.linspace(10, 11, n - n // 2)]
    rows = pd.DataFrame({"x": x, "y": ["low"] * (n // 2) + ["high"] * (n - n // 2)})
    schema = DatasetSchema.model_validate(
        {
            "task": "classification",
            "target": "y",
            "columns": [{"name": "x", "type": "number"}, {"name": "y", "type": "category"}],
        }
    )
    return rows, schema


# The same columns, predicting the size from the others (label is a category feature here).
MIXED_REGRESSION = DatasetSchema.model_validate(MIXED.model_dump() | {"task": "regression", "target": "size"})
