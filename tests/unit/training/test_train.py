import hashlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from services.common.contracts import DatasetSchema
from services.training.domain.artifact import dumps, sha256
from services.training.domain.card import Lineage
from services.training.domain.errors import DatasetTooSmall, UnknownEstimator
from services.training.domain.evaluate import ClassificationMetrics, RegressionMetrics, score
from services.training.domain.pipeline import BEFORE_COMPILING, build_pipeline, fit, parquet
from services.training.domain.train import TrainedModel, fit_and_evaluate, holdout, score_on_holdout, train_artifact


def numbers_schema(names: list[str], target: str, task: str) -> DatasetSchema:
    target_type = "category" if task == "classification" else "number"
    columns = [{"name": n, "type": "number"} for n in names] + [{"name": target, "type": target_type}]
    return DatasetSchema.model_validate({"task": task, "target": target, "columns": columns})


def iris() -> tuple[pa.Table, DatasetSchema]:
    data = load_iris(as_frame=True)
    rows = data.frame.assign(target=data.target_names[data.target])
    return pa.Table.from_pandas(rows, preserve_index=False), numbers_schema(
        data.feature_names, "target", "classification"
    )


def diabetes() -> tuple[bytes, DatasetSchema]:
    data = load_diabetes(as_frame=True)
    return parquet(data.frame), numbers_schema(data.feature_names, "target", "regression")


def lineage(estimator: str, params: dict | None = None) -> Lineage:
    return Lineage(
        dataset="iris",
        dataset_version=1,
        schema_hash="abc",
        estimator=estimator,
        params=params or {},
        seed=42,
        job_id="job-1",
    )


def test_fit_and_train_run_in_a_worker_process_on_iris_and_diabetes():
    iris_rows, iris_schema = iris()
    diabetes_rows, diabetes_schema = diabetes()
    # spawn: the child imports everything afresh, as a service's pool would without fork.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        trained_job = pool.submit(fit_and_evaluate, iris_rows, iris_schema, "logistic_regression", {}, 42)
        iris_job = pool.submit(train_artifact, iris_rows, iris_schema, lineage("logistic_regression"))
        diabetes_job = pool.submit(train_artifact, diabetes_rows, diabetes_schema, lineage("ridge"))
        trained, iris_result, diabetes_result = (j.result(timeout=120) for j in (trained_job, iris_job, diabetes_job))
        refused = pool.submit(fit_and_evaluate, iris_rows.slice(0, 5), iris_schema, "ridge", {}, 42)
        with pytest.raises(UnknownEstimator, match="choose one of") as caught:  # a domain error arrives whole
            refused.result(timeout=60)
        assert caught.value.status == 422 and caught.value.details["available"]

    assert isinstance(trained, TrainedModel) and trained.classes == ["setosa", "versicolor", "virginica"]
    assert isinstance(trained.metrics, ClassificationMetrics) and trained.metrics.accuracy > 0.85
    assert trained.metrics == iris_result.card.metrics  # the same job in another process: the same metrics
    assert trained.metrics == fit_and_evaluate(iris_rows, iris_schema, "logistic_regression", {}, 42).metrics
    assert trained.fit_s > 0 and trained.eval_s > 0 and trained.train_rows == 120
    assert isinstance(diabetes_result.card.metrics, RegressionMetrics) and diabetes_result.card.metrics.r2 > 0.3


def test_the_card_describes_the_model_and_its_lineage():
    rows, schema = iris()
    result = train_artifact(rows, schema, lineage("random_forest", {"n_estimators": 5}))
    card = result.card
    assert card.sha256 == hashlib.sha256(result.artifact).hexdigest()
    assert card.task == "classification" and card.target == "target" and card.target_type == "category"
    assert [(f.name, f.type.value) for f in card.features] == [(n, "number") for n in load_iris().feature_names]
    assert card.classes == ["setosa", "versicolor", "virginica"]
    assert card.lineage.params == {"n_estimators": 5, "max_depth": None, "min_samples_leaf": 1, "class_weight": None}
    assert (card.lineage.dataset, card.lineage.seed, card.lineage.job_id) == ("iris", 42, "job-1")
    assert set(card.versions) == {"scikit-learn", "skops", "numpy"}
    assert type(card).model_validate_json(card.model_dump_json()) == card  # JSON-ready, both ways


def test_a_champion_is_scored_on_the_holdout_the_new_model_was():
    rows, schema = iris()
    champion = train_artifact(rows, schema, lineage("logistic_regression"))
    challenger = train_artifact(rows, schema, lineage("random_forest", {"n_estimators": 5}))
    # The holdout depends on the rows and the seed only: the champion's own metrics come back.
    assert challenger.card.lineage.seed == champion.card.lineage.seed
    seed, marker = challenger.card.lineage.seed, champion.card.missing_category
    scored = score_on_holdout(champion.artifact, champion.card.sha256, rows, schema, seed, marker)
    assert scored == champion.card.metrics


def test_linear_svm_needs_two_training_rows_of_each_class_to_calibrate():
    X = pd.DataFrame({"x": np.arange(12.0)})
    y = np.array(["a"] * 6 + ["b"] * 5 + ["c"])
    pipeline = build_pipeline(numbers_schema(["x"], "y", "classification"), "linear_svm", {}, seed=0)
    with pytest.raises(DatasetTooSmall, match="class 'c' has 1: add rows or choose another estimator"):
        fit(pipeline, X, y)


def test_the_card_carries_the_categories_and_ranges_seen_in_training():
    from tests.unit.training.data import MIXED, mixed_rows

    trained = fit_and_evaluate(mixed_rows(), MIXED, "logistic_regression", {}, seed=0)
    features = {f.name: f for f in trained.features}
    assert features["colour"].categories == ["blue", "green", "red"]
    # The categories the fitted encoder knows (colour is its first column): the same.
    encoder = trained.pipeline.named_steps["features"].named_transformers_["categories"].named_steps["onehot"]
    assert features["colour"].categories == sorted(encoder.categories_[0].tolist())
    size = features["size"]
    assert size.min is not None and size.max is not None and 40 < size.min < size.max < 170
    assert (features["rooms"].min, features["rooms"].max) == (1.0, 5.0)
    assert features["sold"].categories is None and features["sold"].min is None  # booleans: 0/1 anyway
    registered = features["colour"].model_dump(mode="json")
    assert registered == {"name": "colour", "type": "category", "categories": ["blue", "green", "red"]}
    assert features["sold"].model_dump(mode="json") == {"name": "sold", "type": "boolean"}  # nothing null


def fitted_before_compiling(rows, schema, seed: int):
    """A pipeline as build_pipeline made them before models were compiled: missing categories
    as NaN, booleans one-hot encoded with the categories, every number scaled."""
    numbers = [f.name for f in schema.features if f.type in ("number", "integer")]
    categories = [f.name for f in schema.features if f.type in ("category", "boolean")]
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    features = ColumnTransformer([("numbers", scale, numbers), ("categories", encode, categories)])
    pipeline = Pipeline([("features", features), ("model", LogisticRegression(max_iter=1000))])
    data = holdout(rows, schema, seed, BEFORE_COMPILING)
    return pipeline.fit(data.X_train, data.y_train), data


def test_a_champion_fitted_before_models_were_compiled_is_scored_on_the_frames_it_reads():
    from tests.unit.training.data import MIXED, mixed_rows

    rows = mixed_rows(200)
    old, data = fitted_before_compiling(rows, MIXED, seed=5)
    assert data.X_test["colour"].isna().any()  # the holdout has missing categories
    file = dumps(old)
    scored = score_on_holdout(file, sha256(file), rows, MIXED, seed=5, missing_category=None)  # as its card says
    assert scored == score(old, data.X_test, data.y_test, MIXED.task)
    # Given the marker instead, it reads a missing colour as an unknown one: other answers.
    marked = holdout(rows, MIXED, 5).X_test
    assert (old.predict_proba(marked) != old.predict_proba(data.X_test)).any()
    assert scored != score(old, marked, data.y_test, MIXED.task)
