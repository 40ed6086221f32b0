"""A scikit-learn Pipeline built from a dataset schema, and the frames it reads.

The pipeline holds scikit-learn objects only (no function or class of ours), so whoever loads
the artifact (inference) needs scikit-learn and nothing of training's code. The price: input
must arrive as `frame` makes it, by the coercion rules both services share
(services/common/contracts/coercion.py: numbers as floats, categories as strings, booleans as
0/1, a missing number as NaN); the model card lists the features and their types for that purpose.

The pipelines trained since models were compiled read their frames as the compiled model reads
its tensors (COMPILED): a missing category is the string MISSING_CATEGORY (ONNX has no NaN among
strings: the category imputer looks for the marker instead), and numbers are rounded to
float32's precision (the ONNX model's inputs are float32: a tree fitted on float64 values that
float32 cannot tell apart would split between them, and its compiled twin could not). Those
trained before read NaN and float64 (BEFORE_COMPILING); `framing_of` tells which a model version
reads, by its card.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from services.common.contracts import NUMERIC, ColumnType, DatasetSchema, Task, coercion
from services.common.contracts.coercion import MISSING_CATEGORY
from services.training.domain.errors import BadRows, DatasetTooSmall, NoFeatures
from services.training.domain.estimators import Bounds, lookup

# A table, a frame, or Parquet bytes (as ingestion serves a version): bytes are the cheapest to
# send to a worker process.
Rows: TypeAlias = pa.Table | pd.DataFrame | bytes
CALIBRATION_FOLDS = 3  # at most, for linear_svm's probabilities
# What a missing category is in a frame: the marker string, or NaN (for pipelines fitted before
# the marker).
Missing: TypeAlias = str | float
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Framing:
    """How a pipeline's frames are made."""

    missing_category: Missing
    """What a missing category is."""
    float32: bool
    """Whether numbers are rounded to float32's precision."""


COMPILED = Framing(MISSING_CATEGORY, float32=True)
BEFORE_COMPILING = Framing(coercion.MISSING, float32=False)


def _column(values: pd.Series, type_: str, name: str, missing: Missing = MISSING_CATEGORY) -> pd.Series:
    """A whole column at once: the rows come typed (Arrow's types, as ingestion stored them),
    so only categories need the rule applied value by value."""
    if coercion.dtype(type_) == coercion.OBJECT:
        if pd.api.types.is_string_dtype(values):  # as Arrow strings arrive: no value to convert
            return values.astype(object).where(values.notna(), missing)
        return values.astype(object).map(lambda value: _category(value, type_, name, missing)).astype(object)
    try:
        # Booleans as 0/1 floats: one numeric dtype however they arrive (bool, object with
        # None), so the imputer sees NaN as missing and the encoder one kind of value.
        return pd.to_numeric(values.astype(object), errors="raise").astype(coercion.FLOAT)
    except (TypeError, ValueError):
        raise BadRows(f"column {name!r} should hold {type_} values; it holds {values.dtype}") from None


def _category(value: Any, type_: str, name: str, missing: Missing) -> Any:
    if pd.isna(value):  # None, NaN, and pandas' own missing values
        return missing
    if isinstance(value, np.generic):  # numpy's scalars, as an object column may hold them
        value = value.item()
    try:
        return coercion.category(value)
    except coercion.WrongType as e:
        raise BadRows(f"column {name!r} should hold {type_} values: {e}") from None


def _pandas(rows: Rows) -> pd.DataFrame:
    if isinstance(rows, bytes):
        rows = pq.read_table(pa.BufferReader(rows))
    return rows.to_pandas() if isinstance(rows, pa.Table) else rows


def parquet(data: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes, which `frame` reads back as it was."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), sink)
    return bytes(sink.getvalue().to_pybytes())


def frame(rows: Rows, schema: DatasetSchema, framing: Framing = COMPILED) -> pd.DataFrame:
    """The schema's feature columns and (when present) its target, each coerced to the one
    dtype the pipeline expects and framed as `framing` says (COMPILED for a pipeline to fit; a
    version's card says what it reads: `framing_of`). Columns the schema does not name are left
    out."""
    data = _pandas(rows)
    names = [f.name for f in schema.features]
    absent = [n for n in names if n not in data.columns]
    if absent:
        raise BadRows(f"the rows lack the columns {absent} that the schema names")
    columns = {f.name: _column(data[f.name], f.type, f.name, framing.missing_category) for f in schema.features}
    if framing.float32:
        for f in schema.features:
            if f.type in NUMERIC:
                columns[f.name] = _float32(columns[f.name], f.name)
    if schema.target in data.columns:
        columns[schema.target] = _target(data[schema.target], schema)
    return pd.DataFrame(columns, index=data.index)


def _float32(values: pd.Series, name: str) -> pd.Series:
    """The numbers as float32 holds them, still as float64s."""
    beyond = values.abs() > FLOAT32_MAX
    if beyond.any():
        raise BadRows(
            f"column {name!r} holds {float(values[beyond].iloc[0])!r}, beyond float32's range (+-{FLOAT32_MAX:.3g}) in "
            f"which models read numbers; scale the column down"
        )
    return values.astype(np.float32).astype(coercion.FLOAT)


def _target(values: pd.Series, schema: DatasetSchema) -> pd.Series:
    if schema.task == Task.REGRESSION or schema.target_type == ColumnType.NUMBER:
        return _column(values, ColumnType.NUMBER, schema.target)
    # Class labels keep their own kind (integers stay integers), so predictions read as the
    # dataset wrote them; a missing label stays None and is dropped by features_and_target.
    return values.astype(object).where(values.notna(), None)


def features_and_target(data: pd.DataFrame, schema: DatasetSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """X and y from a frame made by `frame`; a row without its target cannot be learned from
    and is dropped (ingestion rejects such rows, so this is a guard, not a policy)."""
    if schema.target not in data.columns:
        raise BadRows(f"the rows lack the target column {schema.target!r}")
    known = data[data[schema.target].notna()]
    y = known[schema.target].to_numpy()
    if schema.task == Task.CLASSIFICATION and schema.target_type == ColumnType.INTEGER:
        y = y.astype("int64")
    return known[[f.name for f in schema.features]], y


def build_pipeline(
    schema: DatasetSchema, estimator: str, params: Mapping[str, Any], seed: int, bounds: Bounds | None = None
) -> Pipeline:
    """Impute numbers (unless the estimator takes missing ones itself; and scale them for the
    estimators that need it), impute booleans, impute and one-hot categories, then the
    estimator. The target and text columns are not features (no step turns free text into
    numbers yet). Every step is one skl2onnx converts."""
    numbers = [f.name for f in schema.features if f.type in NUMERIC]
    booleans = [f.name for f in schema.features if f.type == ColumnType.BOOLEAN]
    categories = [f.name for f in schema.features if f.type == ColumnType.CATEGORY]
    if not numbers and not booleans and not categories:
        raise NoFeatures(
            f"nothing to learn from: every column but the target {schema.target!r} is text; "
            f"declare some as number, integer, category or boolean"
        )
    spec = lookup(schema.task, estimator)
    steps = []
    if numbers and spec.reads_missing:
        steps.append(("numbers", "passthrough", numbers))
    elif numbers:
        scale = [("scale", StandardScaler())] if spec.scaled else []
        steps.append(("numbers", Pipeline([("impute", SimpleImputer(strategy="median")), *scale]), numbers))
    if booleans:
        # 0/1 already: imputed, not one-hot encoded (two columns saying one thing).
        steps.append(("booleans", SimpleImputer(strategy="most_frequent"), booleans))
    if categories:
        # Dense output: histogram gradient boosting takes no sparse input. An unseen category at
        # predict time becomes all zeros rather than an error.
        impute = SimpleImputer(strategy="most_frequent", missing_values=MISSING_CATEGORY)
        encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        steps.append(("categories", Pipeline([("impute", impute), ("onehot", encode)]), categories))
    model = spec.build(params, seed, bounds)
    return Pipeline([("features", ColumnTransformer(steps, remainder="drop")), ("model", model)])


def framing_of(missing_category: str | None) -> Framing:
    """How a model version's frames are made, by what its card says a missing category is:
    the marker for those trained since models were compiled, None (NaN) for those before (a
    champion fitted then is still scored on the frames it reads)."""
    if missing_category is None:
        return BEFORE_COMPILING
    return Framing(missing_category, float32=True)


def fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """Fit in place, first fitting linear_svm's calibration folds to the smallest class, and
    leaving out the columns these rows hold no value of."""
    _without_empty_columns(pipeline, X)
    model = pipeline[-1]
    if isinstance(model, CalibratedClassifierCV):
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            raise DatasetTooSmall(
                f"linear_svm calibrates its probabilities by cross-validation and needs at least 2 "
                f"training rows of each class; class {labels.tolist()[counts.argmin()]!r} has {counts.min()}: "
                f"add rows or choose another estimator"
            )
        model.set_params(cv=min(CALIBRATION_FOLDS, int(counts.min())))
    return pipeline.fit(X, y)


def _without_empty_columns(pipeline: Pipeline, X: pd.DataFrame) -> None:
    """A column with no value in the training rows teaches nothing: it is left out, as text is.
    (Its imputer would drop it anyway, which the converted imputer does not do: the ONNX model
    would then not run.) The model still takes it as an input, and ignores it."""
    features = pipeline.named_steps["features"]
    kept = []
    for name, transformer, columns in features.transformers:
        present = [c for c in columns if (X[c].notna() & (X[c] != MISSING_CATEGORY)).any()]
        if present:
            kept.append((name, transformer, present))
    if not kept:
        raise NoFeatures(
            f"nothing to learn from: the feature columns {list(X.columns)} hold no value in the training rows"
        )
    features.set_params(transformers=kept)
