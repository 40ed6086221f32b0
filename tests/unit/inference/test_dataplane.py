import asyncio

import numpy as np
import pandas as pd
import pytest

from services.common.contracts import ModelCard
from services.common.contracts.monitoring import is_prediction_id
from services.inference.batching import BatchingPredictor, DirectPredictor, Limits
from services.inference.dataplane import DataPlane
from services.inference.domain import records
from services.inference.domain.errors import ModelMissing, ModelUnloadable
from tests.unit.inference.models import FLOWER_FEATURES, HOUSE_FEATURES, Registry, flower_model, house_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}, {"length": 6.1, "width": 2.0, "colour": "blue"}]


def plane(registry: Registry, max_loaded: int = 4) -> DataPlane:
    return DataPlane(registry.client, max_loaded)


def decode(rows):
    return lambda card: records.columns(rows, card.features)


def test_infer_by_alias_gives_the_pipelines_own_predictions_and_probabilities():
    registry, model = Registry(), flower_model()
    registry.add("flowers", 1, model, FLOWER_FEATURES, aliases=("champion",))
    out = asyncio.run(plane(registry).infer("flowers", None, decode(ROWS)))
    card = ModelCard.model_validate({"task": "classification", "target": "species", "features": FLOWER_FEATURES})
    frame = records.columns(ROWS, card.features)
    assert (out.model, out.version) == ("flowers", 1)
    assert out.predictions.tolist() == model.predict(pd.DataFrame(frame)).tolist()
    assert np.allclose(out.probabilities, model.predict_proba(pd.DataFrame(frame)))
    assert out.classes == ["setosa", "versicolor", "virginica"]


def test_a_regressor_has_no_probabilities():
    registry = Registry()
    registry.add("houses", 1, house_model(), HOUSE_FEATURES, aliases=("champion",))
    out = asyncio.run(plane(registry).infer("houses", "1", decode([{"rooms": 3, "area": 70.5}])))
    assert out.probabilities is None and out.classes is None and out.predictions.shape == (1,)


def test_a_loaded_version_is_not_fetched_again():
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    dp = plane(registry)

    async def twice():
        await asyncio.gather(*(dp.infer("flowers", "champion", decode(ROWS)) for _ in range(5)))
        await dp.infer("flowers", "1", decode(ROWS))

    asyncio.run(twice())
    assert registry.artifact_calls() == ["api/models/flowers/versions/1/artifact"]


def test_the_lru_holds_at_most_max_loaded_models_and_drops_the_least_recently_used():
    registry = Registry()
    for v in (1, 2, 3):
        registry.add("flowers", v, flower_model(c=v), FLOWER_FEATURES)
    dp = plane(registry, max_loaded=2)

    async def use(*versions):
        for v in versions:
            await dp.infer("flowers", str(v), decode(ROWS))

    asyncio.run(use(1, 2, 1, 3))
    assert dp.loaded == [("flowers", 1), ("flowers", 3)]  # 2 was used least recently
    asyncio.run(use(2))
    assert len(dp.loaded) == 2 and registry.artifact_calls().count("api/models/flowers/versions/2/artifact") == 2


def test_a_tampered_artifact_is_refused_by_its_sha256_and_never_served(caplog):
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, served=b"not the registered file")
    with pytest.raises(ModelUnloadable, match="sha256"):
        asyncio.run(plane(registry).infer("flowers", "1", decode(ROWS)))
    assert "refused to load" in caplog.text


def test_an_unknown_model_or_version_is_missing():
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES)
    with pytest.raises(ModelMissing):
        asyncio.run(plane(registry).infer("nothing", None, decode(ROWS)))
    with pytest.raises(ModelMissing):
        asyncio.run(plane(registry).infer("flowers", "7", decode(ROWS)))


def test_a_version_that_failed_to_load_is_refused_without_fetching_its_file_again():
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, served=b"not the registered file")
    dp = plane(registry)
    for _ in range(3):
        with pytest.raises(ModelUnloadable, match="sha256"):
            asyncio.run(dp.infer("flowers", "1", decode(ROWS)))
    assert len(registry.artifact_calls()) == 1


def test_each_loaded_model_predicts_through_its_batching_runner_unless_served_unbatched():
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("houses", 1, house_model(), HOUSE_FEATURES, aliases=("champion",))
    dp = DataPlane(registry.client, 4, batching=Limits(256, 0.0), unbatched={"houses"})
    house = [{"rooms": 3, "area": 70.5}]

    async def run():
        outs = await asyncio.gather(*(dp.infer("flowers", None, decode(ROWS[i:])) for i in (0, 1, 0)))
        houses = await dp.infer("houses", None, decode(house))
        runners = [(await dp.model(name)).runner for name in ("flowers", "houses")]
        await dp.close()
        return outs, houses, runners

    outs, houses, (flowers_runner, houses_runner) = asyncio.run(run())
    model = flower_model()
    for i, out in zip((0, 1, 0), outs, strict=True):
        frame = pd.DataFrame(out.rows)
        assert out.predictions.tolist() == model.predict(frame).tolist() and len(frame) == len(ROWS[i:])
        assert np.allclose(out.probabilities, model.predict_proba(frame))
    assert houses.predictions.shape == (1,)
    assert isinstance(flowers_runner, BatchingPredictor) and isinstance(houses_runner, DirectPredictor)


def test_a_model_unloaded_from_the_lru_has_its_runner_closed():
    registry = Registry()
    for v in (1, 2):
        registry.add("flowers", v, flower_model(c=v), FLOWER_FEATURES)
    dp = DataPlane(registry.client, 1, batching=Limits(256, 0.0))

    async def run():
        first = await dp.model("flowers", "1")
        await dp.infer("flowers", "1", decode(ROWS))
        await dp.infer("flowers", "2", decode(ROWS))
        return first.runner

    runner = asyncio.run(run())
    assert dp.loaded == [("flowers", 2)] and runner._closed and runner._worker is None


def test_every_call_gets_its_own_prediction_ids_in_record_order_whether_or_not_batched_together():
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    # Whether the first call runs alone (an idle worker starts at once) or with the others
    # depends on the event loop's order: ids are made per call, before batching, either way.
    dp = DataPlane(registry.client, 4, batching=Limits(256, 0.5))

    async def run():
        await dp.model("flowers")  # loaded first: the calls below queue together behind nothing
        outs = await asyncio.gather(*(dp.infer("flowers", None, decode(ROWS[i:])) for i in (0, 1, 0)))
        await dp.close()
        return outs

    outs = asyncio.run(run())
    calls = {"model": "flowers", "version": "1"}
    assert dp.metrics.registry.get_sample_value("daprml_inference_batch_rows_count", calls) in (1, 2, 3)
    assert [len(out.prediction_ids) for out in outs] == [2, 1, 2]
    assert len({out.call_id for out in outs}) == 3
    for out in outs:
        assert out.prediction_ids == [f"{out.call_id}-{i}" for i in range(len(out.predictions))]
        assert all(is_prediction_id(i) for i in out.prediction_ids)
