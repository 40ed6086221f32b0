"""Drift of captured inputs against the reference distributions training records: none for
inputs drawn from the training distribution, on the shifted feature only when one moves."""

import math

import numpy as np
import pandas as pd
import pytest

from services.common.contracts import Feature, ModelCard, Task
from services.common.contracts.monitoring import CategoricalReference, NumericReference
from services.monitor.domain.drift import DriftSettings, NoReference, categorical_drift, check, numeric_drift, psi
from services.training.domain.reference import reference

FEATURES = [
    Feature(name="x", type="number"),
    Feature(name="rooms", type="integer"),
    Feature(name="colour", type="category", categories=["blue", "green", "red"]),
    Feature(name="sold", type="boolean"),
]
COLOURS, WEIGHTS = ["red", "green", "blue"], [0.5, 0.3, 0.2]


def draw(n: int, seed: int, x_shift: float = 0.0, rooms_shift: int = 0) -> list[dict]:
    """Records as a caller sends them: x ~ N(0, 1), rooms 1..5, a colour, a boolean."""
    rng = np.random.default_rng(seed)
    x, rooms = rng.normal(x_shift, 1, n), rng.integers(1, 6, n) + rooms_shift
    colour, sold = rng.choice(COLOURS, n, p=WEIGHTS), rng.random(n) < 0.4
    return [
        {"x": float(x[i]), "rooms": int(rooms[i]), "colour": str(colour[i]), "sold": bool(sold[i])} for i in range(n)
    ]


def predict(records: list[dict]) -> list[str]:
    """The model's answers: by colour only, so a shift of x or rooms leaves them as they were."""
    return ["yes" if r["colour"] == "red" else "no" for r in records]


def framed(records: list[dict]) -> pd.DataFrame:
    """As training frames its rows: numbers as floats, booleans as 0/1, categories as strings."""
    frame = pd.DataFrame(records)
    return frame.assign(rooms=frame["rooms"].astype(float), sold=frame["sold"].astype(float))


def card() -> ModelCard:
    training = draw(4000, seed=0)
    predictions = np.array(predict(training), dtype=object)
    distributions = reference(framed(training), FEATURES, predictions, Task.CLASSIFICATION)
    return ModelCard(
        task="classification", target="y", features=FEATURES, classes=["no", "yes"], reference=distributions
    )


def test_the_psi_is_the_usual_formula_with_empty_bins_floored():
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert psi([0.2, 0.8], [0.2, 0.8]) == 0
    eps = 1e-4
    assert psi([1, 0], [0.5, 0.5], eps) == pytest.approx(-0.5 * math.log(0.5) + (0.5 - eps) * math.log(0.5 / eps))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inputs_drawn_from_the_training_distribution_do_not_drift(seed):
    window = draw(500, seed)
    report = check(card(), window, predict(window))
    assert set(report.features) == {"x", "rooms", "colour", "sold"} and report.rows == 500
    for name, drift in [*report.features.items(), ("output", report.output)]:
        assert drift is not None and drift.psi is not None and drift.psi < 0.1, (name, drift)  # half the threshold
        assert not drift.drifted and drift.missing_share == 0 and drift.unseen_share == 0
    assert report.drifted == []


@pytest.mark.parametrize(("shift", "feature"), [({"x_shift": 4.0}, "x"), ({"rooms_shift": 5}, "rooms")])
def test_one_feature_shifted_by_several_standard_deviations_drifts_alone(shift, feature):
    window = draw(500, seed=7, **shift)
    report = check(card(), window, predict(window))
    assert report.drifted == [feature]
    assert report.features[feature].psi is not None and report.features[feature].psi > 1
    # As a frame, with numpy's values: the same report.
    assert check(card(), pd.DataFrame(window), predict(window)) == report


def test_a_changed_class_balance_drifts_the_output_and_the_colour_it_follows():
    window = [r | {"colour": "red"} if i % 2 else r for i, r in enumerate(draw(600, seed=8))]
    report = check(card(), window, predict(window))
    assert report.drifted == ["colour", "output"]
    assert report.output is not None and report.output.psi is not None and report.output.psi > 0.2


def test_unseen_categories_and_missing_values_are_counted():
    window = draw(400, seed=9)
    for i, record in enumerate(window):
        if i % 5 == 0:
            record["colour"] = "purple"  # 80 rows: a colour training never saw
        if i % 4 == 0:
            record["x"] = None  # 100 rows
        if i % 8 == 1:
            del record["rooms"]  # 50 rows
        if i % 10 == 3:
            record["sold"] = None  # 40 rows
    report = check(card(), window, predict(window))
    colour, x, rooms, sold = (report.features[n] for n in ("colour", "x", "rooms", "sold"))
    assert (colour.unseen_share, colour.missing_share) == (80 / 400, 0)
    assert colour.drifted and colour.psi is not None and colour.psi > 0.2  # unseen ones fill "other", empty in training
    assert (x.missing_share, rooms.missing_share, sold.missing_share) == (0.25, 50 / 400, 0.1)
    # Missing shares that rose by more than 0.1: drift whatever the PSI of the values present.
    assert x.drifted and rooms.drifted and not sold.drifted
    assert x.psi is not None and x.psi < 0.2 and x.unseen_share == 0


def test_too_few_rows_give_no_psi_and_no_drift():
    window = draw(49, seed=10, x_shift=5.0)
    report = check(card(), window, predict(window))
    assert all(d.psi is None and not d.drifted for d in report.features.values())
    assert report.drifted == []
    # Enough rows, too few per bin for x's ten bins (200 needed); sold's two bins need 50.
    window = draw(100, seed=10, x_shift=5.0)
    report = check(card(), window, predict(window))
    assert report.features["x"].psi is None and report.features["sold"].psi is not None
    settings = DriftSettings(rows_per_bin=5)
    assert check(card(), window, predict(window), settings).drifted == ["x"]


def test_a_regressor_s_predictions_are_compared_over_their_bins():
    training = draw(3000, seed=0)
    predicted = np.array([r["x"] * 2 + r["rooms"] for r in training])
    distributions = reference(framed(training), FEATURES, predicted, Task.REGRESSION)
    regressor = ModelCard(task="regression", target="y", features=FEATURES, reference=distributions)
    window = draw(500, seed=11)
    same = [r["x"] * 2 + r["rooms"] for r in window]
    assert check(regressor, window, same).output == check(regressor, window, same).output  # deterministic
    report = check(regressor, window, same)
    assert report.output is not None and not report.output.drifted
    report = check(regressor, window, [p + 5 for p in same])
    assert report.output is not None and report.output.drifted and report.drifted == ["output"]


def test_the_lower_level_checks_read_values_as_inference_takes_them():
    numeric = NumericReference(edges=[0.0], shares=[0.5, 0.5])
    drift = numeric_drift(numeric, [-1, 1, np.float64(2.0), "not a number", None] * 20, DriftSettings(min_rows=10))
    assert drift.psi == pytest.approx(psi([0.5, 0.5], [1 / 3, 2 / 3])) and drift.missing_share == 0.4
    categories = CategoricalReference(shares={"1": 0.5, "b": 0.25}, other_share=0.25)
    # 1 and 1.0 are one category; without the list of all categories, none is called unseen.
    drift = categorical_drift(categories, [1, 1.0, "b", "zzz"] * 20, "category", DriftSettings(min_rows=10))
    assert drift.psi == pytest.approx(0) and drift.unseen_share == 0
    drift = categorical_drift(categories, [1, 1.0, "b", "zzz"] * 20, "category", DriftSettings(min_rows=10), ["1", "b"])
    assert drift.unseen_share == 0.25


def test_a_card_without_a_reference_cannot_be_checked():
    old = ModelCard(task="classification", target="y", features=FEATURES, classes=["no", "yes"])
    with pytest.raises(NoReference, match="trained before") as raised:
        check(old, draw(100, seed=1))
    assert raised.value.status == 409
