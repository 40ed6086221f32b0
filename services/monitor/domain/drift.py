"""Drift: how a window of captured inputs, and the model's answers to them, differ from what
training saw (the reference distributions on the version's model card), feature by feature.

Per feature, over the window's rows:
- the population stability index (PSI) of the present values against the reference's bins
  (numbers) or categories (categories, booleans; every category training did not name counts
  in one "other" bin, unseen ones included): sum over bins of (a - e) * ln(a / e), a the
  window's share and e training's, either floored at `epsilon` so an empty bin counts rather
  than divides by zero;
- the share of rows missing the value, and of rows holding a category training never saw;
- drifted: PSI above the threshold (0.2, the customary "significant shift"), or a missing share
  more than `missing_rise` above training's.
The model's predictions get the same against training's predictions: a classifier's class
balance, a regressor's bins.

Pure and deterministic: the same window gives the same report.
"""

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.common.contracts import NUMERIC, ColumnType, ModelCard, Task
from services.common.contracts.coercion import MISSING_CATEGORY, WrongType, boolean, category, number
from services.common.contracts.monitoring import (
    BOOLEAN_KEYS,
    CategoricalReference,
    FeatureReference,
    NumericReference,
    label_key,
)
from services.common.errors import ClientError
from services.common.events import FeatureDrift

PREDICTED = "class"
"""The type `categorical_drift` reads predictions as: any label the model has, as label_key names it."""

Window = Sequence[Mapping[str, Any]] | pd.DataFrame
"""Captured inputs: one mapping per record (a name absent is a missing value), or a frame."""


@dataclass(frozen=True)
class DriftSettings:
    threshold: float = 0.2
    """PSI above which a feature has drifted: 0.1 to 0.2 is customarily a moderate shift, above
    0.2 a significant one."""
    missing_rise: float = 0.1
    """A missing share this much above training's is drift too, whatever the PSI."""
    min_rows: int = 50
    """Rows a window needs before anything is called drift (PSI None below)."""
    rows_per_bin: int = 20
    """Present values per bin a PSI needs, too: between two samples of one distribution the PSI
    averages about (bins - 1) / rows, so 10 bins over 50 values would read 0.18 from noise
    alone; at 20 per bin that noise stays near 0.05, well below the threshold."""
    epsilon: float = 1e-4
    """The share an empty bin counts as."""


@dataclass(frozen=True)
class DriftReport:
    rows: int
    features: dict[str, FeatureDrift]
    """Every feature the reference describes, by name."""
    output: FeatureDrift | None
    """The predictions against training's; None: none given, or no reference of them."""

    @property
    def drifted(self) -> list[str]:
        """The features that drifted, by name, and "output" when the predictions did."""
        names = [name for name, drift in self.features.items() if drift.drifted]
        return names + (["output"] if self.output is not None and self.output.drifted else [])


class NoReference(ClientError):
    """The version's card records no reference distributions: it was trained before they were."""

    status = 409


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, epsilon: float = 1e-4) -> float:
    """The population stability index of `actual` shares against `expected` ones, bin by bin."""
    e = np.maximum(np.asarray(expected, dtype=float), epsilon)
    a = np.maximum(np.asarray(actual, dtype=float), epsilon)
    # Each term is >= 0 (a - e and ln(a / e) share their sign): the sum is too.
    return float(np.sum((a - e) * np.log(a / e)))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _number(value: Any) -> float:
    """A value as a float, NaN when missing or not a number (inference refuses those, so they
    only come from elsewhere: counting them missing keeps one window's report whole)."""
    try:
        return number(_plain(value), ColumnType.NUMBER)
    except WrongType:
        return math.nan


def _key(value: Any, type_: str) -> str | None:
    """A category (or boolean, or class) as the reference names it; None when missing or not
    of its type."""
    value = _plain(value)
    try:
        if type_ == ColumnType.BOOLEAN:
            return None if value is None else BOOLEAN_KEYS[int(boolean(value))]
        if type_ == PREDICTED:
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else label_key(value)
        coerced = category(value)
    except WrongType:
        return None
    return None if not isinstance(coerced, str) or coerced == MISSING_CATEGORY else coerced


def _enough(present: int, bins: int, settings: DriftSettings) -> bool:
    return present >= max(settings.min_rows, settings.rows_per_bin * bins)


def _judged(
    reference: FeatureReference, rows: int, missing: int, score: float | None, unseen: int, settings: DriftSettings
) -> FeatureDrift:
    if rows < settings.min_rows:
        score = None
    missing_share = missing / rows if rows else 0.0
    drifted = rows >= settings.min_rows and (
        (score is not None and score > settings.threshold)
        or missing_share - reference.missing_share > settings.missing_rise
    )
    return FeatureDrift(
        psi=score, missing_share=missing_share, unseen_share=unseen / rows if rows else 0.0, drifted=drifted
    )


def numeric_drift(reference: NumericReference, values: Iterable[Any], settings: DriftSettings) -> FeatureDrift:
    """A number's drift: its present values over the reference's bins."""
    array = np.array([_number(v) for v in values], dtype=float)
    present = array[~np.isnan(array)]
    bins = len(reference.edges) + 1
    score = None
    if reference.shares and _enough(len(present), bins, settings):
        counts = np.bincount(np.searchsorted(reference.edges, present, side="right"), minlength=bins)
        score = psi(reference.shares, counts / len(present), settings.epsilon)
    return _judged(reference, len(array), len(array) - len(present), score, 0, settings)


def categorical_drift(
    reference: CategoricalReference,
    values: Iterable[Any],
    type_: str,
    settings: DriftSettings,
    known: Collection[str] | None = None,
) -> FeatureDrift:
    """A category's (a boolean's with type_ "boolean", a prediction's with PREDICTED) drift: its
    present values over the reference's named categories and "other". `known` is every category
    training saw (the card's, when it lists them): values outside it are unseen. Without it,
    the reference's named categories are every one training saw when it names all (no other
    share); else unseen ones cannot be told from the others and none is counted."""
    keys = [_key(v, type_) for v in values]
    present = [k for k in keys if k is not None]
    if known is None and reference.other_share == 0:
        known = reference.shares.keys()
    seen = set(known) if known is not None else None
    unseen = sum(1 for k in present if k not in seen) if seen is not None else 0
    named = sorted(reference.shares)
    score = None
    if (reference.shares or reference.other_share) and _enough(len(present), len(named) + 1, settings):
        counts = pd.Series(present, dtype=object).value_counts()
        live = np.array([counts.get(n, 0) for n in named] + [0], dtype=float)
        live[-1] = len(present) - live[:-1].sum()  # the others, unseen ones included
        expected = [reference.shares[n] for n in named] + [reference.other_share]
        score = psi(expected, live / len(present), settings.epsilon)
    return _judged(reference, len(keys), len(keys) - len(present), score, unseen, settings)


def _column(inputs: Window, name: str) -> list[Any]:
    if isinstance(inputs, pd.DataFrame):
        return inputs[name].tolist() if name in inputs.columns else [None] * len(inputs)
    return [row.get(name) for row in inputs]


def check(
    card: ModelCard, inputs: Window, outputs: Sequence[Any] | None = None, settings: DriftSettings | None = None
) -> DriftReport:
    """The drift of a window of captured inputs (and of the model's predictions for them, when
    given) against the reference distributions of the card of the version that answered."""
    settings = settings or DriftSettings()
    reference = card.reference
    if reference is None:
        raise NoReference(
            "this model version records no reference distributions (it was trained before they were): "
            "train a new version to check its drift"
        )
    features: dict[str, FeatureDrift] = {}
    for feature in card.features:
        ref = reference.features.get(feature.name)
        values = _column(inputs, feature.name)
        if isinstance(ref, NumericReference) and feature.type in NUMERIC:
            features[feature.name] = numeric_drift(ref, values, settings)
        elif isinstance(ref, CategoricalReference) and feature.type not in NUMERIC:
            features[feature.name] = categorical_drift(ref, values, feature.type, settings, feature.categories)
    output = None
    if outputs is not None and reference.output is not None:
        if isinstance(reference.output, NumericReference) and card.task == Task.REGRESSION:
            output = numeric_drift(reference.output, outputs, settings)
        elif isinstance(reference.output, CategoricalReference) and card.task == Task.CLASSIFICATION:
            classes = [label_key(c) for c in card.classes] or None
            output = categorical_drift(reference.output, outputs, PREDICTED, settings, classes)
    return DriftReport(rows=len(inputs), features=features, output=output)
