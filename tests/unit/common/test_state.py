import asyncio

import pytest
from pydantic import BaseModel

from services.common.state import Busy, Documents
from tests.fakes import FakeStateStore


class Counter(BaseModel):
    n: int = 0


def bump(doc: Counter | None) -> Counter:
    doc = doc or Counter()
    doc.n += 1
    return doc


def test_update_creates_a_missing_document_then_changes_it():
    docs = Documents(FakeStateStore(), Counter)
    assert asyncio.run(docs.update("c", bump)) == Counter(n=1)
    assert asyncio.run(docs.update("c", bump)) == Counter(n=2)
    assert asyncio.run(docs.get("c")) == Counter(n=2)


def test_a_change_that_changes_nothing_writes_nothing():
    state = FakeStateStore()
    docs = Documents(state, Counter)
    asyncio.run(docs.update("c", bump))
    etag = state.items["c"].etag
    assert asyncio.run(docs.update("c", lambda doc: doc)) == Counter(n=1)
    assert asyncio.run(docs.update("missing", lambda doc: None)) is None
    assert state.items["c"].etag == etag and "missing" not in state.items


class RacingStore(FakeStateStore):
    """Another writer changes the key between every read and write of ours, `races` times."""

    def __init__(self, races: int):
        super().__init__()
        self.races = races

    async def get(self, key):
        found = await super().get(key)
        if self.races > 0:
            self.races -= 1
            await super().save(key, Counter(n=100).model_dump_json().encode())
        return found


def test_a_lost_race_applies_the_change_again_to_the_newer_document():
    state = RacingStore(races=3)
    docs = Documents(state, Counter)
    asyncio.run(docs.put("c", Counter(n=1)))
    assert asyncio.run(docs.update("c", bump)) == Counter(n=101)


def test_losing_every_attempt_ends_with_busy_and_the_other_writer_kept():
    state = RacingStore(races=1000)
    docs = Documents(state, Counter, attempts=5)
    with pytest.raises(Busy, match="5 attempts"):
        asyncio.run(docs.update("c", bump))
    assert asyncio.run(Documents(FakeStateStore(), Counter).get("c")) is None
    assert state.items["c"].value == Counter(n=100).model_dump_json().encode()


def test_an_async_change_is_awaited_and_an_error_in_it_writes_nothing():
    state = FakeStateStore()
    docs = Documents(state, Counter)

    async def later(doc):
        return bump(doc)

    async def refuse(doc):
        raise ValueError("no")

    assert asyncio.run(docs.update("c", later)) == Counter(n=1)
    with pytest.raises(ValueError):
        asyncio.run(docs.update("c", refuse))
    assert asyncio.run(docs.get("c")) == Counter(n=1)
