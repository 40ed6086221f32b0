"""Reference distributions: what training saw of each feature and of the model's predictions,
recorded on the model card so that the monitor can measure drift against them (population
stability index over these bins and categories, missing and unseen shares).

Small and fixed in size whatever the data: at most REFERENCE_BINS bins per number and
REFERENCE_CATEGORIES named categories per category, computed on at most MAX_ROWS rows.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from services.common.contracts import NUMERIC, ColumnType, Feature, Task
from services.common.contracts.coercion import MISSING_CATEGORY
from services.common.contracts.monitoring import (
    BOOLEAN_KEYS,
    REFERENCE_BINS,
    REFERENCE_CATEGORIES,
    REFERENCE_KEY_LENGTH,
    CategoricalReference,
    FeatureReference,
    NumericReference,
    ReferenceDistributions,
    label_key,
)

MAX_ROWS = 100_000
"""Rows a reference is computed from, at most (a seeded sample beyond): quantiles and shares of
100k rows are as good as of millions, and predicting on them stays a fraction of the fit."""
VALUES_PER_BIN = 20
"""Training values per bin, at least: a bin's share in a smaller sample is mostly noise, which
the population stability index would later read as drift (its expected value between two
samples of one distribution is about (bins - 1) / rows). Fewer values, fewer bins (2 at least)."""


def sample(X: pd.DataFrame, seed: int, limit: int = MAX_ROWS) -> pd.DataFrame:
    """The rows a reference is computed from: all of them, or a sample of `limit` drawn with
    the job's seed (the same rows give the same reference)."""
    return X if len(X) <= limit else X.sample(n=limit, random_state=seed)


def numeric(values: pd.Series | np.ndarray) -> NumericReference:
    """Quantile bins of the present values (NaN is missing), with each bin's share."""
    array = np.asarray(values, dtype=float)
    rows = len(array)
    present = array[~np.isnan(array)]
    missing = (rows - len(present)) / rows if rows else 0.0
    if not len(present):
        return NumericReference(missing_share=missing)
    edges = _edges(present, min(REFERENCE_BINS, max(2, len(present) // VALUES_PER_BIN)))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return NumericReference(edges=edges, shares=(counts / len(present)).tolist(), missing_share=missing)


def _edges(present: np.ndarray, bins: int) -> list[float]:
    """The inner edges of `bins` quantile bins, none of them a value training saw: an edge at a
    value many rows share (an integer, a rounded number, a tree's prediction) would put the same
    number on either side of it when it arrives as float32 rather than float64, or from ONNX
    rather than scikit-learn. Such an edge moves halfway down to the next smaller value seen, so
    the tie stays whole in the upper bin; one at the smallest value is dropped (nothing below)."""
    distinct = np.unique(present)
    edges: set[float] = set()
    for q in np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]):
        i = int(np.searchsorted(distinct, q, side="left"))
        if i < len(distinct) and distinct[i] == q:
            if i == 0:
                continue
            q = distinct[i - 1] / 2 + distinct[i] / 2  # halves first: no overflow near float's limit
        edges.add(float(q))
    return sorted(edges)


def categorical(keys: pd.Series) -> CategoricalReference:
    """The share of each of the most frequent categories among the present values (NaN or None
    is missing), and of all the others together. `keys` are the categories as strings."""
    rows = len(keys)
    present = keys[keys.notna()]
    missing = (rows - len(present)) / rows if rows else 0.0
    if not len(present):
        return CategoricalReference(missing_share=missing)
    counts = present.value_counts()
    # Most frequent first, ties by name: the same data names the same categories.
    ranked = sorted(
        ((int(n), str(k)) for k, n in counts.items() if len(str(k)) <= REFERENCE_KEY_LENGTH),
        key=lambda item: (-item[0], item[1]),
    )[:REFERENCE_CATEGORIES]
    shares = {key: n / len(present) for n, key in ranked}
    other = (len(present) - sum(n for n, _ in ranked)) / len(present)
    return CategoricalReference(shares=shares, other_share=other, missing_share=missing)


def feature(values: pd.Series, type_: str) -> FeatureReference:
    """A feature's reference from its column as `pipeline.frame` makes it: numbers as floats,
    booleans as 0/1 floats, categories as strings with MISSING_CATEGORY (or NaN) for missing."""
    if type_ in NUMERIC:
        return numeric(values)
    if type_ == ColumnType.BOOLEAN:
        return categorical(values.map(lambda v: None if pd.isna(v) else BOOLEAN_KEYS[int(v != 0)]))
    missing = values.isna() | (values == MISSING_CATEGORY)
    return categorical(values.where(~missing, None).map(lambda v: None if v is None else label_key(v)))


def output(predictions: np.ndarray, task: Task) -> FeatureReference:
    """The model's predictions: a classifier's class balance, a regressor's quantile bins."""
    if task == Task.REGRESSION:
        return numeric(predictions.astype(float))
    return categorical(pd.Series([label_key(p) for p in predictions.tolist()], dtype=object))


def reference(
    X: pd.DataFrame, features: Sequence[Feature], predictions: np.ndarray | None, task: Task
) -> ReferenceDistributions:
    """The reference of the rows X (framed by `pipeline.frame`; the training split, or its
    `sample`) and of the model's predictions on them.

    Predictions rather than the target: the monitor compares them with live predictions, the
    only output it sees before ground truth arrives, and the target would count the model's own
    errors as drift. On the training rows rather than the holdout: four times the rows, so less
    noise in the shares, and the same rows the features' references describe (a model that fits
    its training rows closely predicts there about as the target reads, which is what a live
    class balance should be compared with anyway)."""
    return ReferenceDistributions(
        rows=len(X),
        features={f.name: feature(X[f.name], f.type) for f in features if f.name in X.columns},
        output=output(predictions, task) if predictions is not None else None,
    )
