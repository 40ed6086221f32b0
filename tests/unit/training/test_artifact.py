import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from services.common.contracts import Task
from services.training.domain import artifact
from services.training.domain.errors import ArtifactRejected
from services.training.domain.estimators import ESTIMATORS
from services.training.domain.train import fit_and_evaluate
from tests.unit.training.data import MIXED, MIXED_REGRESSION, mixed_rows

SMALL = {"random_forest": {"n_estimators": 5}, "gradient_boosting": {"max_iter": 5}}
CASES = [(task, name) for task, by_name in ESTIMATORS.items() for name in by_name]


@pytest.fixture
def no_loading(monkeypatch):
    """Fails the test if anything is deserialized."""

    def refuse(*args, **kwargs):
        raise AssertionError("skops.io.loads was called")

    monkeypatch.setattr(sio, "loads", refuse)


@pytest.mark.parametrize(("task", "estimator"), CASES)
def test_every_allow_listed_pipeline_round_trips_through_skops_with_its_sha256(task, estimator):
    schema = MIXED if task == Task.CLASSIFICATION else MIXED_REGRESSION
    trained = fit_and_evaluate(mixed_rows(), schema, estimator, SMALL.get(estimator, {}), seed=0)
    data = artifact.dumps(trained.pipeline)
    loaded = artifact.load(data, artifact.sha256(data))
    np.testing.assert_array_equal(loaded.predict(trained.X_test), trained.pipeline.predict(trained.X_test))


def test_integer_and_boolean_class_labels_round_trip():
    X = pd.DataFrame({"x": np.arange(20.0)})
    for y in (np.arange(20) % 3, np.arange(20) % 2 == 0):
        data = artifact.dumps(Pipeline([("model", LogisticRegression())]).fit(X, y))
        assert artifact.load(data, artifact.sha256(data)).classes_.tolist() == sorted(set(y.tolist()))


def test_tampered_bytes_are_refused_before_anything_is_read(no_loading):
    data = bytearray(artifact.dumps(Pipeline([("model", LogisticRegression())]).fit([[0.0], [1.0]], [0, 1])))
    recorded = artifact.sha256(bytes(data))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ArtifactRejected, match=f"not the recorded {recorded}: it was changed") as caught:
        artifact.load(bytes(data), recorded)
    assert caught.value.status == 500


def double(X):
    return np.asarray(X) * 2


class Custom:
    pass


def test_a_file_holding_an_arbitrary_function_is_refused_naming_it(no_loading):
    pipeline = Pipeline([("f", FunctionTransformer(double)), ("model", LogisticRegression())]).fit(
        [[0.0], [1.0]], [0, 1]
    )
    data = artifact.dumps(pipeline)
    with pytest.raises(ArtifactRejected, match="names types no pipeline of ours holds") as caught:
        artifact.load(data, artifact.sha256(data))
    assert caught.value.details["types"] == [f"{__name__}.double"]


def test_a_file_holding_a_class_of_its_own_is_refused(no_loading):
    data = sio.dumps({"model": Custom()})
    with pytest.raises(ArtifactRejected, match=f"{__name__}.Custom"):
        artifact.load(data, artifact.sha256(data))


def test_a_file_that_is_not_skops_is_refused(no_loading):
    data = b"\x80\x04not a zip"
    with pytest.raises(ArtifactRejected, match="not a readable skops file"):
        artifact.load(data, artifact.sha256(data))


def test_a_skops_file_of_something_else_than_a_pipeline_is_refused():
    data = artifact.dumps(LogisticRegression())
    with pytest.raises(ArtifactRejected, match="holds a LogisticRegression, not a Pipeline"):
        artifact.load(data, artifact.sha256(data))
