"""Inference serves the model files training writes: the file loads, and records coerced by
inference's per-value path (records.columns) predict what training's own frames (pipeline.frame)
predicted. The two paths apply one set of rules (services/common/contracts/coercion.py) to
different containers; this holds them to the same answers on models training itself makes."""

import numpy as np
import pandas as pd
import pytest

from services.common.contracts import Column, DatasetSchema, ModelCard
from services.common.contracts.coercion import MISSING_CATEGORY
from services.inference.domain import modelfile, records
from services.inference.runtimes import SklearnRuntime
from services.training.domain import artifact, pipeline
from tests.unit.training.data import MIXED, mixed_rows


def card(schema: DatasetSchema) -> ModelCard:
    return ModelCard(
        task=schema.task, target=schema.target, features=schema.features, missing_category=MISSING_CATEGORY
    )


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "gradient_boosting", "linear_svm"])
def test_a_model_file_training_writes_loads_and_predicts_the_same_from_records(estimator):
    rows = mixed_rows()
    data = pipeline.frame(rows, MIXED)
    X, y = pipeline.features_and_target(data, MIXED)
    fitted = pipeline.fit(pipeline.build_pipeline(MIXED, estimator, {}, seed=0), X, y)
    file = artifact.dumps(fitted)

    runtime = SklearnRuntime(modelfile.load(file, artifact.sha256(file)), card(MIXED))
    ours = records.columns(rows.to_pylist(), MIXED.features)
    # What inference answers when probabilities are asked: the most probable class, from one pass.
    predictions, proba = runtime.predict(ours, True)
    assert predictions.tolist() == fitted.predict(X).tolist()
    assert proba is not None and np.allclose(proba, fitted.predict_proba(X))
    assert runtime.predict(ours, False)[0].tolist() == fitted.predict(X).tolist()


@pytest.mark.parametrize(
    ("type_", "values"),
    [
        ("category", [1, 1.0, "1", None, "a", True]),
        ("boolean", [True, False, None, 1, 0]),
        ("integer", [1, 2, None]),
        ("number", [1.5, None, 2, float("nan")]),
    ],
)
def test_training_and_inference_make_one_column_of_the_same_values(type_, values):
    schema = DatasetSchema(
        task="regression", target="y", columns=[Column(name="x", type=type_), Column(name="y", type="number")]
    )
    trained = pipeline.frame(pd.DataFrame({"x": pd.Series(values, dtype=object), "y": 0.0}), schema)["x"]
    runtime = SklearnRuntime(pipeline.build_pipeline(schema, "ridge", {}, seed=0), card(schema))
    served = runtime.frame(records.columns([{"x": v} for v in values], schema.features))["x"]
    pd.testing.assert_series_equal(trained, served, check_names=False)
