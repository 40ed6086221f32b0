"""Compiled serving: a version whose ONNX file passed training's check is served by ONNX
Runtime and answers what its scikit-learn pipeline answers; any other is served by scikit-learn,
with the reason in sight. The models are training's own: fitted and compiled by its code."""

import asyncio
import hashlib

import numpy as np
import pandas as pd
import pytest

from services.common.contracts import DatasetSchema, Feature, Task
from services.common.contracts.coercion import MISSING_CATEGORY
from services.common.contracts.models import Artifact
from services.inference.dataplane import DataPlane
from services.inference.domain import records
from services.inference.runtimes import ONNX, SKLEARN, Compiling
from services.training.domain import pipeline
from services.training.domain.compiled import compile_pipeline
from services.training.domain.estimators import ESTIMATORS
from tests.unit.inference.models import Registry
from tests.unit.training.data import MIXED, MIXED_REGRESSION, mixed_rows

ALL = [(task, name) for task, table in ESTIMATORS.items() for name in table]
# Requests as clients send them: a value of each kind missing somewhere, an unseen category,
# a number far outside training's range.
EDGES = [
    {"size": None, "rooms": None, "colour": None, "sold": None, "note": None},
    {"size": 1e7, "rooms": 3, "colour": "purple", "sold": True, "note": "x", "label": "yes"},
    {"colour": "red"},
]


def schema_for(task: Task) -> DatasetSchema:
    return MIXED if task == Task.CLASSIFICATION else MIXED_REGRESSION


def fitted(task: Task, estimator: str):
    schema = schema_for(task)
    X, y = pipeline.features_and_target(pipeline.frame(mixed_rows(120), schema), schema)
    model = pipeline.fit(pipeline.build_pipeline(schema, estimator, {}, seed=0), X, y)
    return model, schema, X


def register(registry: Registry, model, schema: DatasetSchema, X: pd.DataFrame, version: int = 1, **onnx) -> None:
    features = [Feature(name=f.name, type=f.type) for f in schema.features]
    compiled = compile_pipeline(model, features, schema.task, X)
    data = onnx.pop("file", compiled.data)
    check = compiled.model
    if compiled.data is not None:
        key = f"models/m/{version}.onnx"
        check = check.model_copy(
            update={"artifact": Artifact(key=key, sha256=hashlib.sha256(compiled.data).hexdigest())}
        )
    registry.add(
        "m",
        version,
        model,
        [f.model_dump(exclude_none=True) for f in features],
        aliases=("champion",),
        onnx=check.model_dump(mode="json"),
        onnx_file=data,
        missing_category=MISSING_CATEGORY,
    )


def served(dp: DataPlane, rows: list[dict]):
    async def run():
        try:
            return await dp.infer("m", None, lambda card: records.columns(rows, card.features))
        finally:
            await dp.close()

    return asyncio.run(run())


def requests() -> list[dict]:
    return [*mixed_rows(40, seed=1).to_pylist(), *EDGES]


@pytest.mark.parametrize(("task", "estimator"), ALL)
def test_every_estimator_is_served_compiled_and_answers_what_scikit_learn_answers(task, estimator):
    model, schema, X = fitted(task, estimator)
    registry = Registry()
    register(registry, model, schema, X)
    rows = requests()
    compiled = served(DataPlane(registry.client, 4), rows)
    plain = served(DataPlane(registry.client, 4, compiling=Compiling(enabled=False)), rows)
    assert (compiled.runtime, plain.runtime) == (ONNX, SKLEARN)
    if task == Task.CLASSIFICATION:
        assert compiled.predictions.tolist() == plain.predictions.tolist()
        assert compiled.classes == plain.classes
        assert np.abs(compiled.probabilities - plain.probabilities).max() <= 1e-4
    else:
        assert np.allclose(compiled.predictions, plain.predictions, rtol=1e-4, atol=1e-4)


def test_a_version_that_failed_the_check_is_served_by_scikit_learn_with_the_reason():
    model, schema, X = fitted(Task.CLASSIFICATION, "logistic_regression")
    registry = Registry()
    register(registry, model, schema, X)
    info = registry.answer("m", 1)
    info["onnx"] = {"artifact": None, "check": {"passed": False, "reason": "labels differ on 3 of 60 rows"}}
    registry.put("m", 1, info)
    dp = DataPlane(registry.client, 4)
    out = served(dp, requests())
    assert out.runtime == SKLEARN
    choice = dp.choice(asyncio.run(dp.describe("m")))
    assert choice.runtime == SKLEARN and choice.reason == "labels differ on 3 of 60 rows"
    assert not [m for _, m, _ in registry.invoker.calls if m.endswith("/onnx")]


def test_an_onnx_file_that_is_not_the_registered_one_falls_back_to_scikit_learn():
    model, schema, X = fitted(Task.CLASSIFICATION, "gradient_boosting")
    registry = Registry()
    register(registry, model, schema, X, file=b"not the file that was registered")
    dp = DataPlane(registry.client, 4)
    assert served(dp, requests()).runtime == SKLEARN
    loaded = asyncio.run(dp.model("m"))
    assert loaded.reason is not None and "sha256" in loaded.reason


def test_compiled_serving_can_be_turned_off_for_one_model():
    model, schema, X = fitted(Task.REGRESSION, "ridge")
    registry = Registry()
    register(registry, model, schema, X)
    off = DataPlane(registry.client, 4, compiling=Compiling(off_for=frozenset({"m"})))
    assert served(off, requests()).runtime == SKLEARN
    assert (
        served(DataPlane(registry.client, 4, compiling=Compiling(off_for=frozenset({"other"}))), requests()).runtime
        == ONNX
    )
