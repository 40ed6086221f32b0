"""Traffic tables on the data plane: a canary serves its percent of the requests for the champion
(the same version for the same routing key), a request naming a version or an alias bypasses
the split, a table change is applied when the registry says so, a canary that cannot load leaves
the champion serving; shadows answer copies off the request path, compared and counted."""

import asyncio
import random

import pytest

from services.common.contracts.models import Traffic
from services.common.events import ModelTrafficChanged
from services.inference.dataplane import DataPlane
from services.inference.domain import records
from services.inference.domain.routing import canary_for, point, shadows_for
from services.inference.metrics import InferenceMetrics
from services.inference.shadows import Shadows
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}, {"length": 5.0, "width": 1.8, "colour": "blue"}]
CANARY_30 = {"canary": [{"version": 2, "percent": 30}], "shadows": []}


def decode(card):
    return records.columns(ROWS, card.features)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("flowers", 2, flower_model(c=0.05), FLOWER_FEATURES)
    registry.add("flowers", 3, flower_model(c=0.01), FLOWER_FEATURES)
    return registry


def plane(registry: Registry, seed: int = 7, shadows: Shadows | None = None) -> DataPlane:
    dp = DataPlane(registry.client, 4, shadows=shadows)
    dp.traffic.draw = random.Random(seed).random
    return dp


def served(dp: DataPlane, ref: str | None = None, key: str | None = None) -> int:
    return asyncio.run(dp.infer("flowers", ref, decode, routing_key=key)).version


def test_a_point_is_the_same_for_the_same_key_and_canaries_take_their_percents_in_order():
    table = Traffic.model_validate({"canary": [{"version": 2, "percent": 10}, {"version": 3, "percent": 20}]})
    assert point("iris", "alice", random.random) == point("iris", "alice", random.random)
    assert point("iris", "alice", random.random) != point("wine", "alice", random.random)
    assert [canary_for(table, at) for at in (0, 9.99, 10, 29.99, 30, 99.9)] == [2, 2, 3, 3, None, None]
    shares = Traffic.model_validate({"shadows": [{"version": 4, "percent": 100}, {"version": 5, "percent": 0.001}]})
    assert shadows_for(shares, lambda: 0.5) == [4]


def test_a_table_adding_up_to_100_or_naming_a_version_twice_is_refused():
    with pytest.raises(ValueError, match="100 or more"):
        Traffic.model_validate({"canary": [{"version": 2, "percent": 60}, {"version": 3, "percent": 40}]})
    with pytest.raises(ValueError, match="more than once"):
        Traffic.model_validate({"canary": [{"version": 2, "percent": 5}], "shadows": [{"version": 2, "percent": 5}]})


def test_a_30_percent_canary_serves_about_30_percent_and_the_rest_is_the_champion_s(registry):
    registry.traffic("flowers", CANARY_30, {"champion": 1})
    dp = plane(registry)
    versions = [served(dp) for _ in range(1000)]
    assert set(versions) == {1, 2} and 250 <= versions.count(2) <= 350
    assert registry.table_calls() == ["api/models/flowers"]  # read once, then from memory


def test_one_routing_key_stays_on_one_version_and_keys_spread_over_both(registry):
    registry.traffic("flowers", CANARY_30, {"champion": 1})
    dp = plane(registry)
    for key in ("alice", "bob", "carol"):
        assert len({served(dp, key=key) for _ in range(20)}) == 1
    by_key = [served(dp, key=f"caller-{i}") for i in range(400)]
    assert 80 <= by_key.count(2) <= 160


def test_a_version_or_alias_named_bypasses_the_split(registry):
    registry.traffic("flowers", {"canary": [{"version": 2, "percent": 99}]}, {"champion": 1})
    dp = plane(registry)
    assert {served(dp, "champion") for _ in range(50)} == {1}
    assert {served(dp, "3") for _ in range(10)} == {3}
    assert served(dp) == 2


def test_a_table_change_applies_when_the_registry_says_so_and_only_for_models_served(registry):
    dp = plane(registry)
    assert {served(dp) for _ in range(20)} == {1}  # no table: the champion
    registry.traffic("flowers", {"canary": [{"version": 2, "percent": 99.9}]}, {"champion": 1})
    table = Traffic.model_validate({"canary": [{"version": 2, "percent": 99.9}]})
    asyncio.run(dp.traffic.on_traffic_changed({}, ModelTrafficChanged(model="flowers", traffic=table, reason="t")))
    assert served(dp) == 2
    asyncio.run(dp.traffic.on_traffic_changed({}, ModelTrafficChanged(model="wine", traffic=table, reason="t")))
    assert "api/models/wine" not in registry.table_calls()


def test_a_canary_that_cannot_load_leaves_the_champion_serving_and_is_counted(registry):
    registry.traffic("flowers", {"canary": [{"version": 9, "percent": 99.9}]}, {"champion": 1})
    dp = plane(registry)
    assert served(dp) == 1
    assert dp.metrics.canary_fallbacks.labels("flowers", "9")._value.get() >= 1


def run_with_shadows(registry: Registry, shadows: Shadows, calls: int) -> list[int]:
    dp = plane(registry, shadows=shadows)

    async def scenario() -> list[int]:
        answered = [(await dp.infer("flowers", None, decode)).version for _ in range(calls)]
        while shadows.pending:
            await asyncio.sleep(0.01)
        return answered

    return asyncio.run(scenario())


def test_a_shadow_answers_copies_that_are_compared_and_never_returned(registry):
    registry.traffic("flowers", {"shadows": [{"version": 2, "percent": 100}]}, {"champion": 1})
    metrics = InferenceMetrics()
    shadows = Shadows(metrics, max_pending=64, timeout_s=5)
    assert set(run_with_shadows(registry, shadows, calls=10)) == {1}
    assert metrics.shadow_requests.labels("flowers", "2", "done")._value.get() == 10
    assert metrics.shadow_records.labels("flowers", "2")._value.get() == 10 * len(ROWS)
    assert 0 <= metrics.shadow_agreed.labels("flowers", "2")._value.get() <= 10 * len(ROWS)


def test_a_shadow_that_cannot_answer_is_counted_failed_and_the_caller_is_served(registry):
    registry.traffic("flowers", {"shadows": [{"version": 9, "percent": 100}]}, {"champion": 1})
    metrics = InferenceMetrics()
    assert set(run_with_shadows(registry, Shadows(metrics, max_pending=64, timeout_s=5), calls=3)) == {1}
    assert metrics.shadow_requests.labels("flowers", "9", "failed")._value.get() == 3


def test_copies_past_the_bound_are_dropped_and_counted(registry):
    registry.traffic("flowers", {"shadows": [{"version": 2, "percent": 100}]}, {"champion": 1})
    metrics = InferenceMetrics()
    shadows = Shadows(metrics, max_pending=1, timeout_s=5)
    dp = plane(registry, shadows=shadows)

    async def scenario() -> None:
        await dp.model("flowers", "2")
        # Three answers in one turn of the loop: the first copy is still pending for the next two.
        await asyncio.gather(*(dp.infer("flowers", None, decode) for _ in range(3)))
        while shadows.pending:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    dropped = metrics.shadow_requests.labels("flowers", "2", "dropped")._value.get()
    done = metrics.shadow_requests.labels("flowers", "2", "done")._value.get()
    assert dropped >= 1 and done + dropped == 3


def test_a_shadow_s_answers_are_handed_to_capture_under_the_served_call_s_id(registry):
    registry.traffic("flowers", {"shadows": [{"version": 2, "percent": 100}]}, {"champion": 1})
    captured = []
    shadows = Shadows(InferenceMetrics(), max_pending=64, timeout_s=5, capture=lambda out, ms: captured.append(out))
    dp = plane(registry, shadows=shadows)

    async def scenario():
        served = await dp.infer("flowers", None, decode)
        while shadows.pending:
            await asyncio.sleep(0.01)
        return served

    served = asyncio.run(scenario())
    (copy,) = captured
    assert (copy.version, copy.shadow, copy.prediction_ids) == (2, True, served.prediction_ids)
    assert served.shadow is False and served.version == 1
