"""Live metrics from captured predictions joined with their actual values, against numbers
computed by hand."""

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from services.common.contracts import Task
from services.monitor.domain.live import LiveMetric, Outcome, class_key, daily, metrics, window

T0 = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_classifier_s_accuracy_f1_and_log_loss_are_those_computed_by_hand():
    outcomes = [
        Outcome(at(0), "a", "a", {"a": 0.8, "b": 0.2}),
        Outcome(at(1), "b", "a", {"a": 0.4, "b": 0.6}),
        Outcome(at(2), "b", "b", {"a": 0.1, "b": 0.9}),
        Outcome(at(3), "a", "b"),  # no probabilities captured: counts in accuracy and F1 only
    ]
    live = metrics(outcomes, Task.CLASSIFICATION)
    assert (live.count, live.first, live.last) == (4, at(0), at(3))
    assert live.metrics["accuracy"] == LiveMetric(value=0.5, count=4)
    # Class a: precision 1/2, recall 1/2; class b: the same. F1 1/2 each, 1/2 their mean.
    assert live.metrics["f1_macro"] == LiveMetric(value=0.5, count=4)
    loss = -(math.log(0.8) + math.log(0.4) + math.log(0.9)) / 3
    assert live.metrics["log_loss"].value == pytest.approx(loss) and live.metrics["log_loss"].count == 3


def test_f1_counts_only_the_classes_the_window_holds_and_one_class_windows_work():
    three = [Outcome(at(0), "a", "a"), Outcome(at(1), "b", "a"), Outcome(at(2), "a", "a")]
    # Class a: precision 1, recall 2/3, F1 0.8; class b (predicted, never actual): F1 0. Class
    # c, which the model has but the window does not, is not averaged in.
    live = metrics(three, Task.CLASSIFICATION)
    assert live.metrics["f1_macro"].value == pytest.approx(0.4) and live.metrics["accuracy"].value == pytest.approx(
        2 / 3
    )
    one = metrics([Outcome(at(0), "a", "a", {"a": 0.7, "b": 0.3})] * 3, Task.CLASSIFICATION)
    assert one.metrics["accuracy"].value == 1 and one.metrics["f1_macro"].value == 1
    assert one.metrics["log_loss"].value == pytest.approx(-math.log(0.7))


def test_classes_match_however_they_are_written_and_unknown_actuals_are_left_out_of_log_loss():
    assert class_key(1) == class_key(1.0) == class_key("1.0") == "1" and class_key(True) == "True"
    outcomes = [
        Outcome(at(0), 1.0, 1, {"0.0": 0.25, "1.0": 0.75}),  # a float class, sent back as an integer
        Outcome(at(1), 0.0, 2, {"0.0": 0.6, "1.0": 0.4}),  # a class the model does not have
        Outcome(at(2), 0.0, None, {"0.0": 0.5, "1.0": 0.5}),  # no actual: in no metric
    ]
    live = metrics(outcomes, Task.CLASSIFICATION)
    assert live.count == 3 and live.metrics["accuracy"] == LiveMetric(value=0.5, count=2)
    assert live.metrics["log_loss"].value == pytest.approx(-math.log(0.75)) and live.metrics["log_loss"].count == 1


def test_log_loss_agrees_with_the_holdout_s_for_a_real_model():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (300, 2))
    y = np.where(X[:, 0] + rng.normal(0, 0.5, 300) > 0, "yes", "no")
    model = LogisticRegression().fit(X[:200], y[:200])
    proba, predicted = model.predict_proba(X[200:]), model.predict(X[200:])
    outcomes = [
        Outcome(at(i), predicted[i], y[200 + i], dict(zip(map(str, model.classes_), proba[i].tolist(), strict=True)))
        for i in range(100)
    ]
    live = metrics(outcomes, Task.CLASSIFICATION)
    by_hand = -np.mean([math.log(proba[i][list(model.classes_).index(y[200 + i])]) for i in range(100)])
    assert live.metrics["log_loss"].value == pytest.approx(by_hand)
    assert live.metrics["accuracy"].value == pytest.approx(np.mean(predicted == y[200:]))


def test_a_regressor_s_rmse_and_mae_are_those_computed_by_hand():
    outcomes = [Outcome(at(0), 2.0, 1), Outcome(at(1), 5, 1.0), Outcome(at(2), 3.0, 3.0), Outcome(at(3), 1.0, "n/a")]
    live = metrics(outcomes, Task.REGRESSION)
    assert live.metrics["rmse"].value == pytest.approx(math.sqrt((1 + 16 + 0) / 3)) and live.metrics["rmse"].count == 3
    assert live.metrics["mae"].value == pytest.approx(5 / 3) and live.metrics["mae"].count == 3
    assert set(live.metrics) == {"rmse", "mae"} and metrics([], Task.REGRESSION).metrics == {}


def test_a_sliding_window_keeps_the_last_pairs_or_the_last_minutes_in_time_order():
    outcomes = [Outcome(at(m), "a", "a" if m % 2 else "b") for m in (5, 0, 3, 1, 4, 2)]
    assert [o.at for o in window(outcomes, last=3)] == [at(3), at(4), at(5)]
    assert [o.at for o in window(outcomes, within=timedelta(minutes=2))] == [at(3), at(4), at(5)]
    assert [o.at for o in window(outcomes, within=timedelta(minutes=2), now=at(3))] == [at(1), at(2), at(3)]
    assert [o.at for o in window(outcomes, last=2, within=timedelta(minutes=10))] == [at(4), at(5)]
    assert window(outcomes, last=0) == [] and window([], within=timedelta(minutes=1)) == []
    assert metrics(window(outcomes, last=2), Task.CLASSIFICATION).metrics["accuracy"].value == 0.5


def test_metrics_per_utc_day_by_when_the_prediction_was_made():
    naive = datetime(2025, 3, 2, 0, 30)  # read as UTC
    paris = datetime(2025, 3, 2, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    outcomes = [
        Outcome(at(10), "a", "a"),
        Outcome(at(20), "b", "a"),
        Outcome(naive, "a", "a"),
        Outcome(paris, "b", "b"),
    ]
    days = daily(outcomes, Task.CLASSIFICATION)
    assert list(days) == [date(2025, 3, 1), date(2025, 3, 2)]
    assert days[date(2025, 3, 1)].metrics["accuracy"] == LiveMetric(value=0.5, count=2)
    assert days[date(2025, 3, 2)].metrics["accuracy"] == LiveMetric(value=1.0, count=2)
