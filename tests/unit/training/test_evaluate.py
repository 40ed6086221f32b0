import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.pipeline import Pipeline

from services.common.contracts import Task
from services.training.domain.errors import DatasetTooSmall, IncompatibleModel
from services.training.domain.estimators import validate
from services.training.domain.evaluate import ClassificationMetrics, RegressionMetrics, score, split
from services.training.domain.pipeline import build_pipeline, features_and_target, fit, frame
from services.training.domain.train import fit_and_evaluate
from tests.unit.training.data import MIXED, mixed_rows, separable


def constant(model, X: pd.DataFrame, y) -> Pipeline:
    return Pipeline([("model", model)]).fit(X, y)


def test_a_perfectly_separable_set_scores_perfectly():
    rows, schema = separable()
    metrics = fit_and_evaluate(rows, schema, "logistic_regression", {}, seed=0).metrics
    assert isinstance(metrics, ClassificationMetrics)
    assert (metrics.accuracy, metrics.f1_macro, metrics.roc_auc) == (1.0, 1.0, 1.0)
    assert metrics.labels == ["high", "low"]
    assert metrics.confusion_matrix == [[4, 0], [0, 4]]
    assert metrics.rows == 8 and metrics.notes == {}


def test_regression_metrics_on_a_hand_computed_case():
    X = pd.DataFrame({"x": [0.0, 0.0, 0.0, 0.0]})
    y = np.array([1.0, 2.0, 3.0, 6.0])
    metrics = score(constant(DummyRegressor(strategy="constant", constant=2.0), X, y), X, y, Task.REGRESSION)
    # errors -1, 0, 1, 4: MAE 6/4; RMSE sqrt(18/4); R2 1 - 18/14 (y's mean is 3)
    assert isinstance(metrics, RegressionMetrics)
    assert (metrics.rows, metrics.mae) == (4, 1.5)
    assert (metrics.rmse, metrics.r2) == (pytest.approx(4.5**0.5), pytest.approx(1 - 18 / 14))


def test_classification_metrics_on_a_hand_computed_case():
    X = pd.DataFrame({"x": np.zeros(4)})
    fitted = constant(DummyClassifier(strategy="constant", constant="a"), X, np.array(["a", "b", "a", "c"]))
    metrics = score(fitted, X, np.array(["a", "a", "b", "c"]), Task.CLASSIFICATION)
    assert metrics.accuracy == 0.5
    assert metrics.labels == ["a", "b", "c"]
    assert metrics.confusion_matrix == [[2, 0, 0], [1, 0, 0], [1, 0, 0]]
    assert metrics.f1_macro == pytest.approx((2 / 3) / 3)  # F1 of 'a' is 2/3, of 'b' and 'c' 0


def test_roc_auc_is_none_with_the_reason_when_the_rows_hold_one_class():
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    fitted = constant(DummyClassifier(strategy="prior"), X, np.array(["a", "a", "b", "b"]))
    metrics = score(fitted, X, np.array(["a", "a", "a", "a"]), Task.CLASSIFICATION)
    assert metrics.roc_auc is None and metrics.log_loss == pytest.approx(np.log(2))
    assert metrics.notes == {"roc_auc": "the rows hold no example of the classes ['b']"}


def test_probability_metrics_are_none_when_the_rows_hold_a_class_the_model_never_saw():
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    fitted = constant(DummyClassifier(strategy="prior"), X, np.array(["a", "b", "a"]))
    metrics = score(fitted, X, np.array(["a", "b", "c"]), Task.CLASSIFICATION)
    assert metrics.roc_auc is None and metrics.log_loss is None
    assert metrics.notes["log_loss"] == "the rows hold classes the model never saw: ['c']"
    assert metrics.labels == ["a", "b", "c"]


def test_multi_class_roc_auc_is_one_vs_rest():
    rows = mixed_rows(90, seed=1).to_pandas()
    rows["label"] = np.where(rows["colour"] == "red", "r", np.where(rows["size"] > 100, "big", "small"))
    metrics = fit_and_evaluate(rows, MIXED, "random_forest", {"n_estimators": 10}, seed=0).metrics
    assert isinstance(metrics, ClassificationMetrics)
    assert metrics.labels == ["big", "r", "small"] and metrics.roc_auc is not None and metrics.notes == {}


def test_the_same_data_config_and_seed_give_the_same_metrics():
    small = {"random_forest": {"n_estimators": 10}, "gradient_boosting": {"max_iter": 20}, "linear_svm": {}}
    for estimator, params in small.items():
        first, second = (fit_and_evaluate(mixed_rows(), MIXED, estimator, params, seed=3) for _ in range(2))
        assert first.metrics == second.metrics, estimator
        pd.testing.assert_frame_equal(first.X_test, second.X_test)


def test_another_seed_draws_another_holdout():
    first, second = (fit_and_evaluate(mixed_rows(), MIXED, "logistic_regression", {}, s) for s in (1, 2))
    assert list(first.X_test.index) != list(second.X_test.index)


def test_the_split_is_stratified_and_keeps_every_class_on_both_sides():
    X = pd.DataFrame({"x": np.arange(50.0)})
    y = np.array(["rare"] * 5 + ["common"] * 45)
    holdout = split(X, y, Task.CLASSIFICATION, seed=0)
    assert holdout.stratified
    assert sorted(holdout.y_test.tolist()) == ["common"] * 9 + ["rare"]
    assert (holdout.y_train == "rare").sum() == 4


def test_a_stratified_split_holds_back_at_least_as_many_rows_as_classes():
    # 20% of 10 rows is 2, too few to stratify 3 classes: scikit-learn would refuse.
    X = pd.DataFrame({"x": np.arange(10.0)})
    y = np.array(["a", "a", "b", "b", "c", "c", "c", "c", "c", "c"])
    holdout = split(X, y, Task.CLASSIFICATION, seed=0)
    assert holdout.stratified and len(holdout.y_test) == 3


def test_a_class_of_one_row_makes_the_split_plain():
    X = pd.DataFrame({"x": np.arange(12.0)})
    y = np.array(["lonely"] + ["a", "b"] * 5 + ["a"])
    holdout = split(X, y, Task.CLASSIFICATION, seed=0)
    assert not holdout.stratified and len(holdout.y_test) == 3


def test_too_few_rows_are_refused_saying_how_many_are_needed():
    X = pd.DataFrame({"x": np.arange(9.0)})
    with pytest.raises(DatasetTooSmall, match="9 rows with a target: at least 10 are needed") as caught:
        split(X, np.arange(9.0), Task.REGRESSION, seed=0)
    assert caught.value.status == 422


def test_a_single_class_is_refused():
    X = pd.DataFrame({"x": np.arange(20.0)})
    with pytest.raises(DatasetTooSmall, match="every row has the class 'a': classification needs at least 2"):
        split(X, np.array(["a"] * 20), Task.CLASSIFICATION, seed=0)


def test_a_model_that_reads_columns_the_rows_lack_cannot_score_them():
    trained = fit_and_evaluate(mixed_rows(), MIXED, "logistic_regression", {}, seed=0)
    with pytest.raises(IncompatibleModel, match=r"reads the columns \['colour'\]") as caught:
        score(trained.pipeline, trained.X_test.drop(columns=["colour"]), trained.y_test, Task.CLASSIFICATION)
    assert caught.value.status == 409


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "gradient_boosting", "linear_svm"])
def test_metrics_taken_from_the_probabilities_match_the_models_own_predictions(estimator):
    # score() predicts the most probable class instead of calling predict() again.
    X, y = features_and_target(frame(mixed_rows(200, seed=3), MIXED), MIXED)
    pipeline = build_pipeline(MIXED, estimator, validate("classification", estimator, {}), seed=1)
    fit(pipeline, X[:150], y[:150])
    metrics = score(pipeline, X[150:], y[150:], MIXED.task)
    predicted = pipeline.predict(X[150:])
    assert metrics.accuracy == accuracy_score(y[150:], predicted)
    assert metrics.confusion_matrix == confusion_matrix(y[150:], predicted, labels=metrics.labels).tolist()
