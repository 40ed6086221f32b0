"""Compiled models: every allow-listed estimator converts to ONNX and passes the check against
scikit-learn on a mixed-type dataset; what fails (a conversion, the check, the size bound) gives
no ONNX file and a reason, and never fails the training."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from threadpoolctl import threadpool_limits

from services.common import onnxfiles
from services.common.contracts import DatasetSchema, Feature, Task
from services.common.contracts.coercion import MISSING_CATEGORY
from services.common.modelfiles import load, sha256
from services.training.domain import compiled
from services.training.domain.card import Lineage
from services.training.domain.compiled import compile_pipeline
from services.training.domain.estimators import ESTIMATORS
from services.training.domain.pipeline import build_pipeline, features_and_target, fit, frame
from services.training.domain.train import fit_and_evaluate, train_artifact
from tests.unit.training.data import MIXED, MIXED_REGRESSION, mixed_rows

EVERY = [(task, name) for task, by_name in ESTIMATORS.items() for name in by_name]
SCHEMAS = {Task.CLASSIFICATION: MIXED, Task.REGRESSION: MIXED_REGRESSION}


def lineage(estimator: str) -> Lineage:
    return Lineage(
        dataset="mixed", dataset_version=1, schema_hash="h", estimator=estimator, params={}, seed=3, job_id="job-1"
    )


def onnx_answers(data: bytes, features: list[Feature], rows: pd.DataFrame, task: Task) -> np.ndarray:
    """What inference's compiled runtime reads: the probabilities, or the predictions."""
    inputs = onnxfiles.feed({f.name: rows[f.name] for f in features}, features)
    outputs = onnxfiles.session(data, sha256(data)).run(None, inputs)
    return outputs[1] if task == Task.CLASSIFICATION else outputs[0].ravel()


@pytest.mark.parametrize(("task", "estimator"), EVERY, ids=[f"{t.value}-{e}" for t, e in EVERY])
def test_every_allow_listed_estimator_converts_and_passes_the_check_on_mixed_types(task, estimator):
    schema = SCHEMAS[task]
    result = train_artifact(mixed_rows(300), schema, lineage(estimator))
    card, onnx = result.card, result.card.onnx
    assert onnx is not None and result.onnx is not None, onnx and onnx.check.reason
    check = onnx.check
    assert check.passed and check.reason is None and onnx.artifact is None  # stored by the activity
    assert check.max_difference is not None and check.tolerance is not None
    assert 0 <= check.max_difference <= check.tolerance == 1e-4
    assert check.rows > card.metrics.rows  # the holdout and the edge rows
    # The opsets the file imports: at most the target ones (skl2onnx writes the lowest that do).
    assert int(onnx.versions["opset ai.onnx"]) <= 17 and int(onnx.versions["opset ai.onnx.ml"]) <= 3
    assert card.missing_category == MISSING_CATEGORY and card.compile_s is not None and card.compile_s > 0
    # The file reads the rows inference gives it, missing values and an unseen category included.
    rows = frame(mixed_rows(40, seed=9), schema)
    rows.loc[0, "colour"] = "purple"
    pipeline = load(result.artifact, card.sha256)
    ours = onnx_answers(result.onnx, card.features, rows, task)
    theirs = pipeline.predict_proba(rows) if task == Task.CLASSIFICATION else pipeline.predict(rows)
    assert np.abs(ours - theirs).max() <= 1e-4


def trained(estimator: str = "logistic_regression", rows: int = 200):
    return fit_and_evaluate(mixed_rows(rows), MIXED, estimator, {}, seed=0)


def test_the_check_runs_the_holdout_and_edge_rows():
    model = trained()
    rows, kinds = compiled.check_rows(model.X_test, model.features)
    assert (
        len(kinds) == len(rows) and kinds[0] == "a holdout row" and kinds[len(model.X_test)] == "every feature missing"
    )
    assert "'size' far above its training range" in kinds and "'colour' missing" in kinds
    holdout, edges = rows.iloc[: len(model.X_test)], rows.iloc[len(model.X_test) :]
    pd.testing.assert_frame_equal(holdout, model.X_test.reset_index(drop=True).astype(holdout.dtypes))
    every_missing = edges.iloc[0]
    assert np.isnan(every_missing["size"]) and np.isnan(every_missing["sold"])
    assert every_missing["colour"] == MISSING_CATEGORY
    assert (edges["colour"] == compiled.UNSEEN).sum() == compiled.EDGE_BASE_ROWS
    size = next(f for f in model.features if f.name == "size")
    assert size.min is not None and size.max is not None
    width = size.max - size.min
    assert edges["size"].min() == pytest.approx(size.min - 1000 * width)
    assert edges["size"].max() == pytest.approx(size.max + 1000 * width)
    assert rows["colour"].dtype == object and rows["rooms"].dtype == np.float64


def test_extreme_numbers_stay_inside_float32():
    feature = Feature(name="x", type="number", min=-1e36, max=1e36)
    low, high = compiled._far(pd.Series([0.0]), feature)
    assert (low, high) == (-compiled.FLOAT32_SAFE, compiled.FLOAT32_SAFE)
    assert np.isfinite(np.float32(low)) and np.isfinite(np.float32(high))


def test_a_file_that_answers_otherwise_than_the_pipeline_is_not_kept_and_says_why(monkeypatch):
    model = trained()
    named = compiled.name_inputs

    def swapped(graph, names):  # size and rooms trade places: the ONNX model reads them wrongly
        named(graph, ["rooms", "size", *names[2:]])

    monkeypatch.setattr(compiled, "name_inputs", swapped)
    result = compile_pipeline(model.pipeline, model.features, Task.CLASSIFICATION, model.X_test)
    check = result.model.check
    assert result.data is None and not check.passed and result.model.artifact is None
    assert check.reason is not None and check.reason.endswith("served by scikit-learn from its skops file")
    assert "served another class than scikit-learn" in check.reason or "over the tolerance" in check.reason
    assert check.max_difference is not None and check.tolerance is not None
    assert check.max_difference > check.tolerance


def test_probabilities_over_the_tolerance_fail_the_check(monkeypatch):
    model = trained("random_forest")
    monkeypatch.setattr(compiled, "PROBABILITY_TOLERANCE", 1e-12)
    result = compile_pipeline(model.pipeline, model.features, Task.CLASSIFICATION, model.X_test)
    assert result.data is None and result.model.check.reason is not None
    assert "probabilities differ from scikit-learn's by up to" in result.model.check.reason
    assert "over the tolerance 1e-12" in result.model.check.reason


def test_regression_predictions_over_the_tolerance_fail_the_check(monkeypatch):
    model = fit_and_evaluate(mixed_rows(200), MIXED_REGRESSION, "ridge", {}, seed=0)
    monkeypatch.setattr(compiled, "REGRESSION_TOLERANCE", 0.0)
    result = compile_pipeline(model.pipeline, model.features, Task.REGRESSION, model.X_test)
    assert result.data is None and "predictions differ from scikit-learn's" in (result.model.check.reason or "")


def test_a_pipeline_that_does_not_convert_gives_the_reason_and_the_training_goes_on(monkeypatch):
    def refuse(*args):
        raise RuntimeError("Unable to find a shape calculator for type <class 'Mystery'>.")

    monkeypatch.setattr(compiled, "convert", refuse)
    result = train_artifact(mixed_rows(100), MIXED, lineage("random_forest"))
    assert result.onnx is None and result.artifact  # the skops file all the same
    assert result.card.onnx is not None
    check = result.card.onnx.check
    assert not check.passed and check.reason is not None
    assert check.reason.startswith("the pipeline could not be converted to ONNX (RuntimeError: Unable to find")


def test_a_file_over_the_size_bound_is_not_kept(monkeypatch):
    model = trained("random_forest")
    nodes = compiled.tree_nodes(model.pipeline)
    assert nodes == sum(tree.tree_.node_count for tree in model.pipeline[-1].estimators_) > 0
    assert compiled.tree_nodes(trained("gradient_boosting").pipeline) > 0  # boosted trees are counted too
    # A forest whose nodes alone are over the bound is not even converted.
    monkeypatch.setattr(compiled, "MAX_ONNX_BYTES", nodes * compiled.BYTES_PER_NODE - 1)
    monkeypatch.setattr(compiled, "convert", lambda *args: pytest.fail("converted all the same"))
    result = compile_pipeline(model.pipeline, model.features, Task.CLASSIFICATION, model.X_test)
    assert result.data is None and f"({nodes:,} tree nodes), over the" in (result.model.check.reason or "")
    # Otherwise the converted file's own size decides.
    monkeypatch.undo()
    linear = trained("logistic_regression")
    assert compiled.tree_nodes(linear.pipeline) == 0
    monkeypatch.setattr(compiled, "MAX_ONNX_BYTES", 1000)
    result = compile_pipeline(linear.pipeline, linear.features, Task.CLASSIFICATION, linear.X_test)
    reason = result.model.check.reason or ""
    assert result.data is None and "MiB, over the 0 MiB a model file may be; fewer or shallower trees" in reason


def test_inputs_are_named_as_the_features_whatever_their_names():
    # skl2onnx makes identifiers of names; a feature may also take the name of an output.
    data = load_iris(as_frame=True)
    rows = data.frame.rename(columns={"petal width (cm)": "label"}).assign(species=data.target_names[data.target])
    names = [c for c in rows.columns if c not in ("target", "species")]
    schema = DatasetSchema.model_validate(
        {
            "task": "classification",
            "target": "species",
            "columns": [{"name": n, "type": "number"} for n in names] + [{"name": "species", "type": "category"}],
        }
    )
    X, y = features_and_target(frame(rows, schema), schema)
    with threadpool_limits(limits=1):  # as training fits: OpenMP threads spinning on 2 cores cost 10x
        pipeline = fit(build_pipeline(schema, "gradient_boosting", {}, seed=0), X, y)
        result = compile_pipeline(pipeline, schema.features, Task.CLASSIFICATION, X)
    assert result.data is not None, result.model.check.reason
    session = onnxfiles.session(result.data, sha256(result.data))
    assert [i.name for i in session.get_inputs()] == names
    assert "sepal length (cm)" in names and "label" in names
