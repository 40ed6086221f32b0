"""Aliases served from memory and swapped when the registry says they moved: by event, by the
periodic reconcile, and never to a version that cannot be loaded."""

import asyncio

import pytest

from services.common.events import ModelAliasChanged
from services.common.ports import Reply
from services.inference.dataplane import DataPlane
from services.inference.domain import records
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}]


def decode(card):
    return records.columns(ROWS, card.features)


def moved(name: str = "flowers", alias: str = "champion", to: int | None = 2) -> ModelAliasChanged:
    return ModelAliasChanged(model=name, alias=alias, from_version=1, to_version=to, reason="promotion")


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("flowers", 2, flower_model(c=0.05), FLOWER_FEATURES)
    return registry


def serving(dp: DataPlane, ref: str | None = None) -> int:
    return asyncio.run(dp.infer("flowers", ref, decode)).version


def test_a_served_alias_is_answered_without_asking_the_registry_again(registry):
    dp = DataPlane(registry.client, 4)
    for _ in range(5):
        assert serving(dp) == 1
    assert registry.describe_calls() == ["api/models/flowers/versions/champion"]


def test_the_alias_changed_event_swaps_the_served_version(registry):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.alias("flowers", "champion", 2)
    assert serving(dp) == 1  # nobody said it moved yet
    asyncio.run(dp.on_alias_changed({}, moved()))
    assert serving(dp) == 2 and dp.aliases == {("flowers", "champion"): 2}


def test_requests_that_started_on_the_old_version_finish_on_it(registry):
    dp = DataPlane(registry.client, 4)

    async def scenario():
        old = await dp.model("flowers")
        registry.alias("flowers", "champion", 2)
        await dp.on_alias_changed({}, moved())
        new = await dp.model("flowers")
        return old.version, new.version, old.runtime.predict(decode(old.card), False)[0].tolist()

    old, new, predicted = asyncio.run(scenario())
    assert (old, new) == (1, 2) and predicted  # the old object still predicts after the swap


def test_an_event_for_an_alias_not_served_here_asks_the_registry_nothing(registry):
    dp = DataPlane(registry.client, 4)
    asyncio.run(dp.on_alias_changed({}, moved("other-model")))
    asyncio.run(dp.on_alias_changed({}, moved(alias="challenger")))
    assert registry.invoker.calls == []


def test_a_replayed_event_for_the_version_served_loads_nothing(registry):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    asyncio.run(dp.on_alias_changed({}, moved(to=1)))
    assert registry.artifact_calls() == ["api/models/flowers/versions/1/artifact"]
    assert serving(dp) == 1


def test_a_move_to_a_version_that_cannot_be_loaded_keeps_the_previous_one_serving(registry, caplog):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.add("flowers", 3, flower_model(c=3), FLOWER_FEATURES, served=b"not the registered file")
    registry.alias("flowers", "champion", 3)
    asyncio.run(dp.on_alias_changed({}, moved(to=3)))
    assert serving(dp) == 1
    assert "version 3, which cannot be loaded; version 1 keeps serving" in caplog.text


def test_an_alias_that_was_removed_is_no_longer_served(registry):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.unalias("flowers", "champion")
    asyncio.run(dp.on_alias_changed({}, moved(to=None)))
    assert dp.aliases == {}
    assert serving(dp, "1") == 1  # the version itself stays reachable by number


def test_the_reconcile_catches_a_move_whose_event_was_missed(registry):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.alias("flowers", "champion", 2)
    asyncio.run(dp.reconcile())
    assert serving(dp) == 2


def test_the_reconcile_survives_an_unreachable_registry(registry, caplog):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.invoker.replies.clear()  # every call now answers 404: the alias looks gone
    registry.invoker.replies[(registry.app_id, "api/models/flowers/versions/champion")] = _down
    asyncio.run(dp.reconcile())
    assert "reconciling model flowers champion with the registry failed" in caplog.text
    assert serving(dp) == 1


def test_a_move_announced_while_the_alias_is_first_resolved_is_not_lost(registry):
    """The first request asks the registry (v1); the move to v2 is announced before that answer
    is loaded: the request path refreshes once it has loaded, instead of serving v1 until the
    next reconcile."""
    dp = DataPlane(registry.client, 4)
    first = registry.invoker.replies[(registry.app_id, "api/models/flowers/versions/champion")]

    async def slow_then_move(body: bytes):
        registry.alias("flowers", "champion", 2)
        await dp.on_alias_changed({}, moved())  # not served yet: only noted
        return first

    registry.invoker.replies[(registry.app_id, "api/models/flowers/versions/champion")] = slow_then_move

    async def scenario():
        await dp.model("flowers")
        return dp.aliases

    assert asyncio.run(scenario()) == {("flowers", "champion"): 2}


def test_one_refresh_at_a_time_per_alias_and_a_move_during_it_is_refreshed_after(registry):
    dp = DataPlane(registry.client, 4)
    assert serving(dp) == 1
    registry.add("flowers", 3, flower_model(c=3), FLOWER_FEATURES)
    registry.alias("flowers", "champion", 2)

    async def scenario():
        first = asyncio.create_task(dp.on_alias_changed({}, moved()))
        await asyncio.sleep(0)  # the first refresh is under way
        registry.alias("flowers", "champion", 3)
        await dp.on_alias_changed({}, moved(to=3))  # returns at once: noted for after
        await first

    asyncio.run(scenario())
    assert dp.aliases == {("flowers", "champion"): 3}


async def _down(body: bytes) -> Reply:
    return Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "no connection"}')
