"""A seeded holdout and the metrics of a fitted pipeline on it.

`score` takes any fitted pipeline, so the current champion is scored on the new version's
holdout exactly as the new model is: both numbers then describe the same rows.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from services.common.contracts import Task
from services.training.domain.errors import DatasetTooSmall, IncompatibleModel

TEST_SIZE = 0.2
MIN_ROWS = 10
PRIMARY_METRIC = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "r2"}  # higher is better for both

Label = str | int | float | bool


class ClassificationMetrics(BaseModel):
    task: Literal[Task.CLASSIFICATION] = Task.CLASSIFICATION
    rows: int  # in the holdout
    accuracy: float
    f1_macro: float
    roc_auc: float | None  # binary, or one-vs-rest macro for more classes; None: see notes
    log_loss: float | None
    labels: list[Label]  # the confusion matrix's rows (true) and columns (predicted), in order
    confusion_matrix: list[list[int]]
    notes: dict[str, str] = Field(default_factory=dict)  # metric -> why it is None


class RegressionMetrics(BaseModel):
    task: Literal[Task.REGRESSION] = Task.REGRESSION
    rows: int
    rmse: float
    mae: float
    r2: float


Metrics = ClassificationMetrics | RegressionMetrics


@dataclass(frozen=True)
class Holdout:
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    stratified: bool


def split(X: pd.DataFrame, y: np.ndarray, task: Task, seed: int, test_size: float = TEST_SIZE) -> Holdout:
    """The same rows, task and seed always give the same holdout, so it can be drawn again
    (in another process, for the champion) instead of being stored."""
    rows = len(y)
    if rows < MIN_ROWS:
        raise DatasetTooSmall(
            f"{rows} rows with a target: at least {MIN_ROWS} are needed to fit a model and hold "
            f"{test_size:.0%} back to evaluate it"
        )
    n_test = math.ceil(rows * test_size)
    stratify = None
    if task == Task.CLASSIFICATION:
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise DatasetTooSmall(
                f"every row has the class {classes.tolist()[0]!r}: classification needs at least 2 classes"
            )
        # Stratify when every class can go to both sides (a class of one row cannot), with room
        # for each class on each side.
        stratified_test = max(n_test, len(classes))
        if counts.min() >= 2 and rows - stratified_test >= len(classes):
            n_test, stratify = stratified_test, y
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=n_test, random_state=seed, stratify=stratify)
    return Holdout(X_train, y_train, X_test, y_test, stratified=stratify is not None)


def score(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, task: Task) -> Metrics:
    """The metrics of a fitted pipeline on these rows (a holdout)."""
    absent = sorted(set(getattr(pipeline, "feature_names_in_", [])) - set(X.columns))
    if absent:
        raise IncompatibleModel(f"the model reads the columns {absent}, which these rows do not have")
    if task == Task.REGRESSION:
        predicted = pipeline.predict(X)
        return RegressionMetrics(
            rows=len(y),
            rmse=float(np.sqrt(mean_squared_error(y, predicted))),
            mae=float(mean_absolute_error(y, predicted)),
            r2=float(r2_score(y, predicted)),
        )
    # Predictions from the probabilities when there are some: every classifier of ours predicts
    # the most probable class, and running the model over the rows once instead of twice is a
    # quarter of the evaluation time at a million rows.
    proba = pipeline.predict_proba(X) if hasattr(pipeline, "predict_proba") else None
    predicted = pipeline.classes_[proba.argmax(axis=1)] if proba is not None else pipeline.predict(X)
    labels = np.unique(np.concatenate([pipeline.classes_, y, predicted]))
    roc_auc, loss, notes = _probability_metrics(pipeline.classes_, proba, y)
    return ClassificationMetrics(
        rows=len(y),
        accuracy=float(accuracy_score(y, predicted)),
        f1_macro=float(f1_score(y, predicted, average="macro", labels=labels, zero_division=0)),
        roc_auc=roc_auc,
        log_loss=loss,
        labels=labels.tolist(),
        confusion_matrix=confusion_matrix(y, predicted, labels=labels).tolist(),
        notes=notes,
    )


def _probability_metrics(
    classes: np.ndarray, proba: np.ndarray | None, y: np.ndarray
) -> tuple[Any, Any, dict[str, str]]:
    """ROC AUC and log loss, or None with the reason when these rows cannot give them."""
    # As Python values (tolist), so the reasons read ['b'] rather than [np.str_('b')].
    unseen = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
    absent = sorted(set(classes.tolist()) - set(np.unique(y).tolist()))
    if proba is None:
        reason = "the model gives no probabilities"
        return None, None, {"roc_auc": reason, "log_loss": reason}
    if unseen:
        reason = f"the rows hold classes the model never saw: {unseen}"
        return None, None, {"roc_auc": reason, "log_loss": reason}
    loss = float(log_loss(y, proba, labels=classes))
    if absent:
        return None, loss, {"roc_auc": f"the rows hold no example of the classes {absent}"}
    if len(classes) == 2:
        return float(roc_auc_score(y, proba[:, 1])), loss, {}
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)), loss, {}
