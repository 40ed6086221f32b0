"""The model card written beside each artifact: what the model reads, what it predicts, how
well, and where it came from."""

from collections.abc import Sequence

import pandas as pd
from pydantic import BaseModel

from services.common.contracts import NUMERIC, ColumnType, Feature, Task
from services.common.contracts import models as registry
from services.common.contracts.coercion import MISSING_CATEGORY
from services.training.domain.evaluate import Label, Metrics


class Lineage(registry.Lineage):
    """Where a model comes from, as the registry records it, and the seed it was fitted with:
    the job's own description, passed in by the caller."""

    seed: int


MAX_CATEGORIES = 1000
"""A category feature with more categories than this in training records none (the card stays
small; inference then warns of no unseen category for it)."""


def signature(X: pd.DataFrame, features: Sequence[Feature]) -> list[Feature]:
    """The features as the card lists them, with what training saw of each in X (the rows the
    model was fitted on, as `pipeline.frame` coerced them): the categories of a category
    feature, the range of a numeric one. A column with no value at all records nothing."""
    signed = []
    for feature in features:
        values = X[feature.name].dropna()
        seen: dict[str, object] = {}
        if feature.type == ColumnType.CATEGORY:
            categories = sorted({str(v) for v in values} - {MISSING_CATEGORY})
            if categories and len(categories) <= MAX_CATEGORIES:
                seen["categories"] = categories
        elif feature.type in NUMERIC and len(values):
            seen.update(min=float(values.min()), max=float(values.max()))
        signed.append(feature.model_copy(update=seen))
    return signed


class ModelCard(BaseModel):
    format: str = "skops"
    sha256: str  # of the artifact's bytes
    task: Task
    target: str
    target_type: ColumnType
    features: list[Feature]  # the input columns, each as `pipeline.frame` coerces it
    classes: list[Label] | None  # classifiers only, in the order of predict_proba's columns
    metrics: Metrics  # on the holdout
    train_rows: int
    fit_s: float
    eval_s: float
    lineage: Lineage
    # What loaded the model's classes when it was written: a loader with other versions may
    # still read the file, but its answers are not guaranteed to be the same.
    versions: dict[str, str]
    missing_category: str | None = None
    """What the model reads for a missing category (None: NaN, models fitted before compiling)."""
    onnx: registry.OnnxModel | None = None
    """The compiled model's check (its file is beside this one when it passed)."""
    compile_s: float | None = None
    """Seconds spent converting and checking the ONNX model."""
