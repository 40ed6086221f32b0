"""Fit and evaluate: the CPU-bound part of a job, made to run in another process.

Everything here is a top-level function of picklable arguments returning picklable results,
so the service can hand it to a ProcessPoolExecutor and keep its event loop (and its health
checks) answering while a model fits. `train_artifact` is the one to run there: it returns
the skops bytes, the ONNX bytes (when the pipeline compiled: compiled.py) and the card rather
than the fitted objects, which are larger to send back and would only be serialized afterwards
anyway.
"""

from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

from services.common.contracts import DatasetSchema, Feature, Task
from services.common.contracts.coercion import MISSING_CATEGORY
from services.common.contracts.monitoring import ReferenceDistributions
from services.training.domain.artifact import dumps, load, sha256
from services.training.domain.card import Lineage, ModelCard, signature
from services.training.domain.compiled import compile_pipeline
from services.training.domain.estimators import Bounds, validate
from services.training.domain.evaluate import Holdout, Label, Metrics, score, split
from services.training.domain.pipeline import (
    COMPILED,
    Framing,
    Rows,
    build_pipeline,
    features_and_target,
    fit,
    frame,
    framing_of,
)
from services.training.domain.reference import reference, sample

# Native threads (OpenMP, BLAS) per fit. The worker process is the unit of parallelism; on 2
# cores, 2 OpenMP threads made histogram boosting 12x slower on 100k rows and 2x on iris
# (measured), as they spin against the service and each other.
THREADS = 1


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline  # fitted on the training part
    metrics: Metrics  # on the holdout
    X_test: pd.DataFrame  # the holdout, kept to score another model (the champion) on it
    y_test: np.ndarray
    features: list[Feature]
    classes: list[Label] | None  # classifiers only
    train_rows: int
    fit_s: float
    eval_s: float
    reference: ReferenceDistributions | None = None  # what training saw, for the monitor's drift checks


@dataclass(frozen=True)
class TrainingResult:
    artifact: bytes  # the skops file
    card: ModelCard  # card.sha256 is the artifact's; card.metrics the holdout's; card.onnx the check's result
    onnx: bytes | None  # the ONNX file, when the pipeline converted and passed the check
    reference: ReferenceDistributions | None = None  # the registry's card records it


def holdout(rows: Rows, schema: DatasetSchema, seed: int, framing: Framing = COMPILED) -> Holdout:
    """The split a job with this seed uses: drawn again from the same rows, it is the same
    (however they are framed: `frame` keeps every row)."""
    X, y = features_and_target(frame(rows, schema, framing), schema)
    return split(X, y, schema.task, seed)


def fit_and_evaluate(
    rows: Rows, schema: DatasetSchema, estimator: str, params: dict[str, Any], seed: int, bounds: Bounds | None = None
) -> TrainedModel:
    # Checked again here: the job may have been queued by an older version of the service.
    checked = validate(schema.task, estimator, params, bounds)
    data = holdout(rows, schema, seed)
    pipeline = build_pipeline(schema, estimator, checked, seed, bounds)
    with threadpool_limits(limits=THREADS):
        started = perf_counter()
        fit(pipeline, data.X_train, data.y_train)
        fitted = perf_counter()
        metrics = score(pipeline, data.X_test, data.y_test, schema.task)
        scored = perf_counter()
        # What the monitor will measure drift against: the training rows and the model's answers on them.
        sampled = sample(data.X_train, seed)
        seen = reference(sampled, schema.features, pipeline.predict(sampled), schema.task)
    classes = pipeline.classes_.tolist() if schema.task == Task.CLASSIFICATION else None
    return TrainedModel(
        pipeline=pipeline,
        metrics=metrics,
        X_test=data.X_test,
        y_test=data.y_test,
        features=signature(data.X_train, schema.features),
        classes=classes,
        train_rows=len(data.y_train),
        fit_s=fitted - started,
        eval_s=scored - fitted,
        reference=seen,
    )


def train_artifact(rows: Rows, schema: DatasetSchema, lineage: Lineage, bounds: Bounds | None = None) -> TrainingResult:
    """Fit, evaluate, serialize and compile. The estimator, params and seed are the lineage's
    own, so the card cannot disagree with what was fitted; `bounds` are those the job was
    admitted with (a forest's null max_depth is built as the depth bound). A pipeline that does
    not compile still gives its skops file: the card says why there is no ONNX file."""
    trained = fit_and_evaluate(rows, schema, lineage.estimator, lineage.params, lineage.seed, bounds)
    data = dumps(trained.pipeline)
    with threadpool_limits(limits=THREADS):
        compiled = compile_pipeline(trained.pipeline, trained.features, schema.task, trained.X_test)
    card = ModelCard(
        sha256=sha256(data),
        task=schema.task,
        target=schema.target,
        target_type=schema.target_type,
        features=trained.features,
        classes=trained.classes,
        metrics=trained.metrics,
        train_rows=trained.train_rows,
        fit_s=trained.fit_s,
        eval_s=trained.eval_s,
        lineage=lineage.model_copy(update={"params": validate(schema.task, lineage.estimator, lineage.params, bounds)}),
        versions={"scikit-learn": sklearn.__version__, "skops": skops.__version__, "numpy": np.__version__},
        missing_category=MISSING_CATEGORY,  # as COMPILED frames read it
        onnx=compiled.model,
        compile_s=compiled.convert_s + compiled.check_s,
    )
    return TrainingResult(artifact=data, card=card, onnx=compiled.data, reference=trained.reference)


def score_on_holdout(
    artifact: bytes, expected_sha256: str, rows: Rows, schema: DatasetSchema, seed: int, missing_category: str | None
) -> Metrics:
    """A stored model's metrics on the holdout a job with this seed draws from these rows: the
    champion is judged on the rows the new model was. (Drawn again rather than stored: the
    split depends on the rows and the seed only.) The rows are framed as the model reads them,
    by its card's `missing_category`: a champion fitted before models were compiled (None)
    reads NaN for a missing category, and unrounded numbers."""
    pipeline = load(artifact, expected_sha256)
    data = holdout(rows, schema, seed, framing_of(missing_category))
    with threadpool_limits(limits=THREADS):
        return score(pipeline, data.X_test, data.y_test, schema.task)
