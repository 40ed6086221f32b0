"""The changes to skl2onnx 1.20's tree conversion (services/training/domain/onnx_shim.py): the
first is needed, and the first test fails when skl2onnx converts HistGradientBoosting without
it; the second makes compiled boosting split every value as scikit-learn does."""

import pandas as pd
import skl2onnx.common.tree_ensemble as tree_ensemble
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from services.common import onnxfiles
from services.common.contracts import DatasetSchema, Task
from services.training.domain import onnx_shim
from services.training.domain.compiled import compile_pipeline
from services.training.domain.pipeline import build_pipeline, features_and_target, fit, frame


def convert(model):
    return convert_sklearn(
        model,
        initial_types=[("x", FloatTensorType([None, 4]))],
        target_opset=dict(onnxfiles.TARGET_OPSET),
        options={id(model): {"zipmap": False}},
    )


def test_histogram_gradient_boosting_converts_only_with_the_shim():
    X, y = load_iris(return_X_y=True)
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    onnx_shim.remove()
    try:
        try:
            convert(model)
        except Exception as e:  # the failure the shim is for (its words are those of the error's cause)
            said = " ".join(str(x) for x in (e, e.__cause__, e.__context__) if x is not None)
            assert "Expected an int, got a boolean" in said, f"skl2onnx fails otherwise now: {said[:500]}"
        else:
            raise AssertionError(
                "skl2onnx converts HistGradientBoosting without the shim now: remove "
                "services/training/domain/onnx_shim.py and its call in compiled.py"
            )
    finally:
        onnx_shim.apply()
    assert convert(model).graph.node


def test_applying_the_shim_again_wraps_once():
    onnx_shim.apply()
    wrapped = tree_ensemble.add_node
    onnx_shim.apply()
    assert tree_ensemble.add_node is wrapped
    onnx_shim.remove()
    assert not hasattr(tree_ensemble.add_node, "__wrapped__")
    onnx_shim.apply()


def test_boosting_thresholds_are_floored_to_float32_so_a_value_at_a_midpoint_splits_alike(monkeypatch):
    # Decimal data: the split between 1.6 and 1.8 is their midpoint, and 1.7 is a value. In
    # float32, 1.7 is above the float64 midpoint but equal to its nearest float32.
    schema = DatasetSchema.model_validate(
        {
            "task": "classification",
            "target": "y",
            "columns": [{"name": "x", "type": "number"}, {"name": "y", "type": "category"}],
        }
    )
    rows = pd.DataFrame({"x": [1.6] * 30 + [1.8] * 30, "y": ["a"] * 30 + ["b"] * 30})
    X, y = features_and_target(frame(rows, schema), schema)
    with threadpool_limits(limits=1):
        pipeline = fit(build_pipeline(schema, "gradient_boosting", {"max_iter": 5}, seed=0), X, y)
    at_midpoint = frame(pd.DataFrame({"x": [1.7] * 5}), schema)
    assert pipeline.predict(at_midpoint).tolist() == ["b"] * 5
    floored = compile_pipeline(pipeline, schema.features, Task.CLASSIFICATION, at_midpoint)
    assert floored.data is not None, floored.model.check.reason

    onnx_shim.remove()
    original = tree_ensemble.add_node

    def int_only(*args, nodes_missing_value_tracks_true=0, **kwargs):  # the first part alone
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    setattr(int_only, onnx_shim._PATCHED, True)  # apply() then leaves it in place
    monkeypatch.setattr(tree_ensemble, "add_node", int_only)
    try:
        nearest = compile_pipeline(pipeline, schema.features, Task.CLASSIFICATION, at_midpoint)
    finally:
        monkeypatch.undo()
        onnx_shim.apply()
    assert nearest.data is None and "served another class than scikit-learn" in (nearest.model.check.reason or "")
