"""What predicts for a loaded model version: ONNX Runtime over its compiled file (the default,
when training's check passed), or scikit-learn over its skops pipeline. Both read the columns
the decoders make (domain/columns.py) and answer predictions and, for classifiers, class
probabilities in the order of `classes`; batching wraps either.

A classifier predicts its most probable class on both (as training evaluates), so the label
never disagrees with the probabilities answered beside it.
"""

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.pipeline import Pipeline

from services.common import onnxfiles
from services.common.contracts import NUMERIC, ModelCard, Task, VersionInfo
from services.common.contracts.coercion import OBJECT, dtype
from services.inference.domain.columns import Columns

ONNX, SKLEARN = "onnxruntime", "sklearn"
Result = tuple[np.ndarray, np.ndarray | None]  # predictions, and class probabilities when asked for


class Runtime(Protocol):
    name: str
    classes: list[Any] | None  # classifiers only, in the order of the probabilities' columns

    def predict(self, rows: Columns, probabilities: bool) -> Result: ...


@dataclass(frozen=True)
class Compiling:
    """When and how compiled models are served (the settings of the same names)."""

    enabled: bool = True
    off_for: frozenset[str] = frozenset()  # models served by scikit-learn all the same
    threads: int = 1  # per predict call
    inline_rows: int = 0  # predict calls of at most this many rows run on the event loop

    def on_for(self, model: str) -> bool:
        return self.enabled and model not in self.off_for


@dataclass(frozen=True)
class Choice:
    """The runtime a version is to be served with, and why not compiled when it is not."""

    runtime: str
    reason: str | None = None


def choose(info: VersionInfo, compiled: bool) -> Choice:
    """`compiled`: whether compiled serving is on for this model (a setting)."""
    if not compiled:
        return Choice(SKLEARN, "compiled serving is turned off for this model")
    if info.onnx is None:
        return Choice(SKLEARN, f"version {info.version} was registered before models were compiled")
    if info.onnx.artifact is None:
        return Choice(SKLEARN, info.onnx.check.reason or "training made no ONNX file for it")
    return Choice(ONNX)


class SklearnRuntime:
    name = SKLEARN

    def __init__(self, pipeline: Pipeline, card: ModelCard):
        self.pipeline, self.card = pipeline, card
        self.classification = card.task == Task.CLASSIFICATION and hasattr(pipeline, "predict_proba")
        classes = getattr(pipeline, "classes_", None) if card.task == Task.CLASSIFICATION else None
        self.classes = None if classes is None else np.asarray(classes).tolist()
        # Versions trained since compiling began read a missing category as a marker string, and
        # numbers at float32's precision (training's frames round them, as their ONNX twin reads them).
        compiled_era = card.missing_category is not None
        self._marked = [f.name for f in card.features if dtype(f.type) == OBJECT] if compiled_era else []
        self._rounded = [f.name for f in card.features if f.type in NUMERIC] if compiled_era else []

    def frame(self, rows: Columns) -> pd.DataFrame:
        """The rows as the pipeline was fitted on them (training's `frame`)."""
        if self._marked or self._rounded:
            marker = self.card.missing_category or ""
            rows = {
                **rows,
                **{name: onnxfiles.strings(rows[name], marker) for name in self._marked},
                **{name: rows[name].astype(np.float32).astype(np.float64) for name in self._rounded},
            }
        # Each column keeps its dtype: pandas would make strings of an object column of strings,
        # and the pipeline was fitted on objects.
        return pd.DataFrame({name: pd.Series(values, dtype=values.dtype, copy=False) for name, values in rows.items()})

    def predict(self, rows: Columns, probabilities: bool) -> Result:
        frame = self.frame(rows)
        if probabilities and self.classification:
            proba = self.pipeline.predict_proba(frame)
            return np.asarray(self.pipeline.classes_)[proba.argmax(axis=1)], proba
        return np.asarray(self.pipeline.predict(frame)), None


class OnnxRuntime:
    name = ONNX

    def __init__(self, session: ort.InferenceSession, card: ModelCard):
        self.session, self.card = session, card
        outputs = [o.name for o in session.get_outputs()]
        self.classification = card.task == Task.CLASSIFICATION
        # skl2onnx names a classifier's outputs (label, probabilities) and a regressor's (variable).
        self._outputs = outputs[1:2] if self.classification else outputs[:1]
        self.classes = list(card.classes) if self.classification else None
        self._labels = np.asarray(card.classes, dtype=object)

    def predict(self, rows: Columns, probabilities: bool) -> Result:
        (out,) = self.session.run(self._outputs, onnxfiles.feed(rows, self.card.features))
        if self.classification:
            proba = np.asarray(out, dtype=np.float64)
            return self._labels[proba.argmax(axis=1)], proba if probabilities else None
        return np.asarray(out, dtype=np.float64).ravel(), None
