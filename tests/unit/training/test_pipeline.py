import numpy as np
import pandas as pd
import pytest

from services.common.contracts import DatasetSchema
from services.common.contracts.coercion import MISSING_CATEGORY
from services.training.domain.errors import BadRows, NoFeatures
from services.training.domain.pipeline import (
    BEFORE_COMPILING,
    COMPILED,
    build_pipeline,
    features_and_target,
    fit,
    frame,
    framing_of,
    parquet,
)
from tests.unit.training.data import MIXED, mixed_rows


def fitted_on_mixed(estimator: str = "logistic_regression"):
    X, y = features_and_target(frame(mixed_rows(), MIXED), MIXED)
    return fit(build_pipeline(MIXED, estimator, {}, seed=0), X, y), X


def test_numbers_are_imputed_and_scaled_booleans_imputed_categories_one_hot_text_and_target_left_out():
    pipeline, X = fitted_on_mixed()
    features = pipeline.named_steps["features"]
    assert [(name, columns) for name, _, columns in features.transformers_] == [
        ("numbers", ["size", "rooms"]),
        ("booleans", ["sold"]),
        ("categories", ["colour"]),
    ]
    assert list(X.columns) == ["size", "rooms", "colour", "sold"]
    assert list(features.get_feature_names_out()) == [
        "numbers__size",
        "numbers__rooms",
        "booleans__sold",
        "categories__colour_blue",
        "categories__colour_green",
        "categories__colour_red",
    ]
    transformed = features.transform(X)
    assert not np.isnan(transformed).any()  # every missing value was imputed
    assert transformed[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-9)
    assert set(transformed[:, 2]) == {0.0, 1.0}


def test_tree_estimators_read_numbers_unscaled_and_boosting_reads_missing_ones_itself():
    # Trees split on thresholds: a scaler changes nothing for them but, once compiled, the
    # float32 arithmetic of the ONNX scaler moves values near a threshold to its other side.
    forest = fitted_on_mixed("random_forest")[0].named_steps["features"].named_transformers_["numbers"]
    assert [name for name, _ in forest.steps] == ["impute"]
    boosting, X = fitted_on_mixed("gradient_boosting")
    assert boosting.named_steps["features"].transformers[0] == ("numbers", "passthrough", ["size", "rooms"])
    assert X["size"].isna().any() and not np.isnan(boosting.predict_proba(X)).any()
    numbers = fitted_on_mixed("logistic_regression")[0].named_steps["features"].named_transformers_["numbers"]
    assert [name for name, _ in numbers.steps] == ["impute", "scale"]


def test_frames_of_compiled_models_mark_missing_categories_and_round_numbers_to_float32():
    rows = mixed_rows(10).to_pandas().assign(size=[0.1 + i for i in range(10)])
    rows.loc[3, ["size", "colour"]] = None
    new, old = frame(rows, MIXED), frame(rows, MIXED, BEFORE_COMPILING)
    assert new["colour"].tolist()[3] == MISSING_CATEGORY and np.isnan(old["colour"].tolist()[3])
    assert np.isnan(new["size"].tolist()[3]) and np.isnan(new["sold"].tolist()[3])  # other types: NaN either way
    assert old["size"].tolist()[0] == 0.1 and new["size"].tolist()[0] == float(np.float32(0.1)) != 0.1
    assert new["size"].dtype == np.float64
    pd.testing.assert_series_equal(new["sold"], old["sold"])
    assert framing_of(MISSING_CATEGORY) == COMPILED and framing_of(None) == BEFORE_COMPILING


def test_a_number_beyond_float32_is_refused_naming_its_column():
    rows = mixed_rows(10).to_pandas()
    rows.loc[2, "size"] = 1e39
    with pytest.raises(BadRows, match=r"column 'size' holds 1e\+39, beyond float32's range"):
        frame(rows, MIXED)
    assert frame(rows, MIXED, BEFORE_COMPILING)["size"].tolist()[2] == 1e39


def test_a_column_without_any_value_in_training_is_left_out_and_without_any_at_all_refused():
    X, y = features_and_target(frame(mixed_rows(), MIXED), MIXED)
    X = X.assign(size=np.nan, colour=MISSING_CATEGORY)
    pipeline = fit(build_pipeline(MIXED, "logistic_regression", {}, seed=0), X, y)
    used = {name: cols for name, _, cols in pipeline.named_steps["features"].transformers_ if name != "remainder"}
    assert used == {"numbers": ["rooms"], "booleans": ["sold"]}
    assert len(pipeline.predict(X)) == len(X)  # the columns are still read, and ignored
    with pytest.raises(NoFeatures, match="hold no value in the training rows"):
        fit(build_pipeline(MIXED, "logistic_regression", {}, seed=0), X.assign(rooms=np.nan, sold=np.nan), y)


def test_missing_values_and_an_unknown_category_at_predict_time_are_tolerated():
    pipeline, _ = fitted_on_mixed()
    records = pd.DataFrame(
        [
            {"size": None, "rooms": None, "colour": None, "sold": None, "note": None},
            {"size": 150.0, "rooms": 2, "colour": "purple", "sold": True, "note": "new"},
        ]
    )
    assert set(pipeline.predict(frame(records, MIXED))) <= {"yes", "no"}
    # A missing category must come as the marker (inference gives it so, as the card says): the
    # imputer looks for nothing else.
    with pytest.raises(ValueError, match="NaN"):
        pipeline.predict(records)


def test_every_allow_listed_classifier_fits_the_mixed_schema():
    for estimator in ("logistic_regression", "random_forest", "gradient_boosting", "linear_svm"):
        pipeline, X = fitted_on_mixed(estimator)
        assert pipeline.predict_proba(X).shape == (len(X), 2), estimator


def test_frame_coerces_each_column_to_its_type_whatever_it_arrives_as():
    rows = pd.DataFrame(
        {
            "size": ["1.5", None],
            "rooms": [2, None],
            "colour": [1, None],
            "sold": [True, None],
            "note": ["a", "b"],
            "label": ["yes", None],
        }
    )
    got = frame(rows, MIXED)
    assert list(got.columns) == ["size", "rooms", "colour", "sold", "label"]
    assert got["size"].tolist()[0] == 1.5 and np.isnan(got["size"].tolist()[1])
    assert got["colour"].tolist()[0] == "1" and got["sold"].tolist()[0] == 1.0


def test_a_row_without_its_target_is_not_learned_from():
    rows = mixed_rows(10).to_pandas()
    rows.loc[[2, 5], "label"] = None
    X, y = features_and_target(frame(rows, MIXED), MIXED)
    assert len(X) == len(y) == 8 and None not in y.tolist()


def test_integer_class_labels_stay_integers():
    schema = DatasetSchema.model_validate(
        {
            "task": "classification",
            "target": "y",
            "columns": [{"name": "x", "type": "number"}, {"name": "y", "type": "integer"}],
        }
    )
    _, y = features_and_target(frame(pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]}), schema), schema)
    assert y.tolist() == [0, 1] and y.dtype == np.int64


def test_parquet_bytes_read_back_as_the_same_frame():
    data = frame(mixed_rows(20), MIXED)
    pd.testing.assert_frame_equal(frame(parquet(data), MIXED), data)


def test_rows_lacking_a_schema_column_are_refused_naming_it():
    with pytest.raises(BadRows, match=r"lack the columns \['colour'\]"):
        frame(mixed_rows(10).drop_columns(["colour"]), MIXED)


def test_values_not_of_the_column_type_are_refused_naming_the_column():
    rows = mixed_rows(10).to_pandas().astype({"size": object})
    rows.loc[0, "size"] = "big"
    with pytest.raises(BadRows, match="column 'size' should hold number values"):
        frame(rows, MIXED)


def test_a_schema_of_text_only_has_nothing_to_learn_from():
    schema = DatasetSchema.model_validate(
        {
            "task": "classification",
            "target": "y",
            "columns": [{"name": "t", "type": "text"}, {"name": "y", "type": "category"}],
        }
    )
    with pytest.raises(NoFeatures, match="every column but the target 'y' is text") as caught:
        build_pipeline(schema, "random_forest", {}, seed=0)
    assert caught.value.status == 422


def test_the_schema_reads_ingestions_manifest_json_and_ignores_fields_it_does_not_need():
    manifest_schema = {
        "task": "regression",
        "target": "price",
        "columns": [
            {"name": "area", "type": "number", "missing": "fill", "fill_value": 0, "later": 1},
            {"name": "price", "type": "number", "missing": "reject", "fill_value": None},
        ],
        "version": 2,
    }
    schema = DatasetSchema.model_validate(manifest_schema)
    assert [(f.name, f.type.value) for f in schema.features] == [("area", "number")]


def test_a_regression_target_must_be_numbers():
    with pytest.raises(ValueError, match="a regression target must be numbers"):
        DatasetSchema.model_validate(
            {"task": "regression", "target": "y", "columns": [{"name": "y", "type": "category"}]}
        )
