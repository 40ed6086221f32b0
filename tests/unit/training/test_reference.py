"""The reference distributions training records on the model card: bins that cover the data,
shares that sum to 1, a size bounded whatever the data."""

import numpy as np
import pandas as pd
import pytest

from services.common.contracts import Feature, ModelCard, Task
from services.common.contracts.coercion import MISSING_CATEGORY
from services.common.contracts.monitoring import (
    REFERENCE_BINS,
    REFERENCE_CATEGORIES,
    CategoricalReference,
    NumericReference,
    ReferenceDistributions,
)
from services.training.compute import fit
from services.training.domain import reference as ref
from services.training.domain.estimators import validate
from services.training.domain.jobs import JobSpec
from services.training.domain.pipeline import parquet
from services.training.domain.train import fit_and_evaluate
from tests.unit.training.data import MIXED, MIXED_REGRESSION, mixed_rows


def bin_of(edges: list[float], value: float) -> int:
    return int(np.searchsorted(edges, value, side="right"))


def test_numbers_get_ten_quantile_bins_that_cover_every_value_and_whose_shares_sum_to_one():
    values = np.random.default_rng(0).normal(50, 10, 5000)
    numeric = ref.numeric(values)
    assert len(numeric.edges) == REFERENCE_BINS - 1 and len(numeric.shares) == REFERENCE_BINS
    assert (
        numeric.edges == sorted(set(numeric.edges))
        and values.min() < numeric.edges[0] < numeric.edges[-1] < values.max()
    )
    assert sum(numeric.shares) == pytest.approx(1) and numeric.missing_share == 0
    # Quantile bins of continuous values: a tenth each, as counting them again says.
    counts = np.bincount([bin_of(numeric.edges, v) for v in values], minlength=REFERENCE_BINS)
    assert numeric.shares == pytest.approx((counts / len(values)).tolist())
    assert all(share == pytest.approx(0.1, abs=0.002) for share in numeric.shares)


def test_shared_values_stay_whole_in_one_bin_with_edges_between_values_seen():
    rooms = np.random.default_rng(1).integers(1, 6, 1000).astype(float)
    numeric = ref.numeric(rooms)
    assert numeric.edges == [1.5, 2.5, 3.5, 4.5]  # one bin per integer, never an edge at one
    assert numeric.shares == pytest.approx([np.mean(rooms == k) for k in range(1, 6)])
    mostly_zero = np.r_[np.zeros(900), np.arange(1, 101, dtype=float)]
    tied = ref.numeric(mostly_zero)
    assert 0 < tied.edges[0] < 1 and tied.shares[0] == pytest.approx(0.9)  # the zeros: one bin
    assert len(tied.shares) < REFERENCE_BINS and sum(tied.shares) == pytest.approx(1)
    single = ref.numeric(np.full(100, 7.0))
    assert (single.edges, single.shares) == ([], [1.0])


def test_few_values_get_fewer_bins_and_missing_ones_are_counted_apart():
    values = np.r_[np.arange(60, dtype=float), [np.nan] * 40]
    numeric = ref.numeric(values)
    assert len(numeric.shares) == 60 // ref.VALUES_PER_BIN and sum(numeric.shares) == pytest.approx(1)
    assert numeric.missing_share == pytest.approx(0.4)
    assert ref.numeric(np.full(5, np.nan)) == NumericReference(missing_share=1.0)


def test_categories_are_capped_with_the_rest_in_other():
    rng = np.random.default_rng(2)
    many = pd.Series([f"c{i}" for i in rng.zipf(1.5, 20_000) % 500], dtype=object)
    long = "x" * 300
    values = pd.concat([many, pd.Series([long] * 5000 + [MISSING_CATEGORY] * 1000 + [None] * 1000, dtype=object)])
    categorical = ref.feature(values, "category")
    assert isinstance(categorical, CategoricalReference)
    assert len(categorical.shares) == REFERENCE_CATEGORIES and long not in categorical.shares  # the most frequent
    assert categorical.other_share > 5000 / 25_000 * 0.99  # the long one, at least, counts there
    assert sum(categorical.shares.values()) + categorical.other_share == pytest.approx(1)
    assert categorical.missing_share == pytest.approx(2000 / 27_000)
    counts = many.value_counts()
    assert categorical.shares[counts.index[0]] == pytest.approx(counts.iloc[0] / 25_000)
    few = ref.feature(pd.Series(["a", "b", "a", MISSING_CATEGORY], dtype=object), "category")
    assert few == CategoricalReference(shares={"a": 2 / 3, "b": 1 / 3}, missing_share=0.25)


def test_booleans_are_named_true_and_false():
    values = pd.Series([1.0, 0.0, 1.0, 1.0, np.nan])
    assert ref.feature(values, "boolean") == CategoricalReference(
        shares={"true": 0.75, "false": 0.25}, missing_share=0.2
    )


def test_a_sample_bounds_the_rows_and_is_the_same_for_the_same_seed():
    X = pd.DataFrame({"x": np.arange(1000.0)})
    assert len(ref.sample(X, seed=3, limit=100)) == 100
    assert ref.sample(X, 3, 100).equals(ref.sample(X, 3, 100)) and ref.sample(X, 3, 2000) is X


def test_the_size_of_a_reference_is_bounded_whatever_the_data():
    rng = np.random.default_rng(4)
    rows = 50_000
    X = pd.DataFrame(
        {
            "n": rng.normal(0, 1, rows),
            "c": [f"category number {i}" for i in rng.integers(0, 5000, rows)],
            "b": rng.integers(0, 2, rows).astype(float),
        }
    )
    features = [Feature(name="n", type="number"), Feature(name="c", type="category"), Feature(name="b", type="boolean")]
    predicted = np.array([f"class {i}" for i in rng.integers(0, 300, rows)], dtype=object)
    distributions = ref.reference(X, features, predicted, Task.CLASSIFICATION)
    assert distributions.rows == rows and set(distributions.features) == {"n", "c", "b"}
    assert isinstance(distributions.output, CategoricalReference)
    assert len(distributions.output.shares) == REFERENCE_CATEGORIES and distributions.output.other_share > 0
    # 3 features and an output of at most 50 named categories each: a few kilobytes.
    assert len(distributions.model_dump_json()) < 8_000


def test_training_records_the_reference_of_its_training_split_and_of_its_predictions():
    trained = fit_and_evaluate(mixed_rows(300), MIXED, "logistic_regression", {}, seed=0)
    seen = trained.reference
    assert seen is not None and seen.rows == trained.train_rows
    assert set(seen.features) == {f.name for f in MIXED.features}
    assert isinstance(seen.features["size"], NumericReference) and isinstance(seen.features["rooms"], NumericReference)
    colour, sold = seen.features["colour"], seen.features["sold"]
    assert isinstance(colour, CategoricalReference) and set(colour.shares) == {"red", "green", "blue"}
    assert isinstance(sold, CategoricalReference) and set(sold.shares) == {"true", "false"}
    assert 0.1 < colour.missing_share < 0.2  # every 7th row has none (mixed_rows)
    assert isinstance(seen.output, CategoricalReference) and set(seen.output.shares) <= {"yes", "no"}
    regressor = fit_and_evaluate(mixed_rows(300), MIXED_REGRESSION, "ridge", {}, seed=0).reference
    assert regressor is not None and isinstance(regressor.output, NumericReference)
    assert sum(regressor.output.shares) == pytest.approx(1) and len(regressor.output.edges) == REFERENCE_BINS - 1


def test_the_registered_card_carries_the_reference_and_a_card_without_one_reads_as_before():
    params = validate("classification", "logistic_regression", {})
    job = JobSpec.model_validate(
        {"job_id": "mixed-v1", "dataset": "mixed", "version": 1, "schema": MIXED.model_dump(mode="json")}
        | {"schema_hash": "h1", "task": "classification", "estimator": "logistic_regression", "params": params}
        | {"model": "mixed", "seed": 1}
    )
    fitted = fit(parquet(mixed_rows(200).to_pandas()), job.model_dump(mode="json"))
    card = ModelCard.model_validate(fitted.card)
    assert isinstance(card.reference, ReferenceDistributions) and set(card.reference.features) == {
        "size",
        "rooms",
        "colour",
        "sold",
    }
    old = {k: v for k, v in fitted.card.items() if k != "reference"}
    assert ModelCard.model_validate(old).reference is None
    assert ModelCard.model_validate(old).model_dump(mode="json") == old  # nothing added when written
