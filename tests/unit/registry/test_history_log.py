"""A model's history as the registry stores it: an append-only log, numbered without gaps,
paged newest first, whose entries survive a crash between the change and the write of their
page. Over the in-memory fakes, through the registry's own service."""

import asyncio
import json

import pytest

from services.common.contracts.models import RegisterVersion
from services.common.ports import SidecarUnavailable
from services.registry.app import RegistryPorts, create_app
from services.registry.domain.errors import BadInput, Corrupt
from services.registry.domain.history import PAGE_ENTRIES, HistoryPage, Note, filed, page_of, window
from services.registry.domain.model import ModelRecord
from services.registry.service import RegistryService
from services.registry.settings import Settings
from tests.api.test_registry_api import registration
from tests.fakes import FakeStateStore, SlowStateStore, fake_ports


def service_over(state, attempts: int = 20) -> RegistryService:
    settings = Settings(outbox_interval_s=3600, update_attempts=attempts)
    app = create_app(settings, fake_ports(RegistryPorts, state=state))
    return app.state.services[RegistryService]


def check(number: int) -> Note:
    return Note(action="monitoring.check", reason=f"check {number}", details={"n": number})


async def with_model(service: RegistryService) -> None:
    await service.register("iris", RegisterVersion.model_validate(registration()))


async def everything(service: RegistryService, limit: int) -> list[int]:
    """Every seq of the history, reading page after page, newest first."""
    seqs, before = [], None
    while True:
        page = await service.history("iris", before, limit)
        seqs += [e.seq for e in page.entries]
        if page.next_before is None:
            return seqs
        before = page.next_before


# the rules


def test_entries_go_to_pages_of_a_fixed_size():
    assert [page_of(s) for s in (1, PAGE_ENTRIES, PAGE_ENTRIES + 1, 3 * PAGE_ENTRIES)] == [0, 0, 1, 2]


def test_a_window_counts_back_from_the_newest_or_from_before():
    assert list(window(7, None, 3)) == [7, 6, 5]
    assert list(window(7, 5, 3)) == [4, 3, 2]
    assert list(window(7, 2, 3)) == [1]
    assert list(window(7, 99, 2)) == [7, 6] and list(window(0, None, 5)) == []


def test_filing_an_entry_twice_keeps_one_copy_in_order():
    entries = _entries(4)
    page = filed(filed(HistoryPage(), entries[2:]), entries)
    assert [e.seq for e in filed(page, entries[:1]).entries] == [1, 2, 3, 4]


def _entries(n):
    record = ModelRecord(name="iris")
    for i in range(n):
        record.note("monitoring.check", "monitor", "", record.created_at, {"i": i})
    return record.unfiled


# concurrency


def test_concurrent_appends_each_get_their_own_seq_and_none_is_lost():
    service = service_over(SlowStateStore(), attempts=200)
    n = 25

    async def race():
        await with_model(service)
        moves = [service.set_alias("iris", "champion", 1, f"key {i}") for i in range(2)]
        notes = [service.note("iris", check(i), "monitor") for i in range(n)]
        return await asyncio.gather(*notes, *moves)

    results = asyncio.run(race())
    noted = [e.seq for e in results[:n]]
    assert sorted(noted) == sorted(set(noted))  # each its own seq
    history = asyncio.run(service.history("iris", limit=200))
    assert [e.seq for e in history.entries] == list(range(n + 1, 0, -1))  # one alias move moved nothing
    assert sorted(e.details["n"] for e in history.entries if e.action == "monitoring.check") == list(range(n))
    assert {e.seq: e.reason for e in history.entries if e.action == "monitoring.check"} == {
        e.seq: e.reason for e in results[:n]
    }
    asyncio.run(service.flush_all())
    record = asyncio.run(service.record("iris"))
    assert record.unfiled == [] and record.history_count == n + 1
    page = asyncio.run(service.repo.page("iris", 0))
    assert page is not None and [e.seq for e in page.entries] == list(range(1, n + 2))


# paging


def test_a_long_history_reads_back_newest_first_page_after_page_across_stored_pages():
    state = FakeStateStore()
    service = service_over(state)
    total = 2 * PAGE_ENTRIES + 30

    async def fill():
        await with_model(service)
        for i in range(total):
            await service.note("iris", check(i), "monitor")

    asyncio.run(fill())
    assert asyncio.run(everything(service, 37)) == list(range(total, 0, -1))
    first = asyncio.run(service.history("iris", limit=5))
    assert (first.total, [e.seq for e in first.entries], first.next_before) == (total, [230, 229, 228, 227, 226], 226)
    assert asyncio.run(service.history("iris", before=2, limit=5)).next_before is None
    keys = {k for k in state.items if k.startswith("model-history:")}
    assert keys == {"model-history:iris:0", "model-history:iris:1", "model-history:iris:2"}


@pytest.mark.parametrize(("before", "limit"), [(None, 0), (None, 10_000), (0, 5)])
def test_a_page_out_of_bounds_is_refused(before, limit):
    service = service_over(FakeStateStore())
    asyncio.run(with_model(service))
    with pytest.raises(BadInput, match="limit must be between 1 and"):
        asyncio.run(service.history("iris", before, limit))


# crashes


class PagesDown(FakeStateStore):
    """A state store that refuses every write of a history page while `down`, as one that went
    away between the write of the model record and that of the page."""

    def __init__(self):
        super().__init__()
        self.down = True

    async def save(self, key, value, etag=None):
        if self.down and key.startswith("model-history:"):
            raise SidecarUnavailable("the state store went away")
        await super().save(key, value, etag)

    async def create(self, key, value):
        if self.down and key.startswith("model-history:"):
            raise SidecarUnavailable("the state store went away")
        await super().create(key, value)


def test_entries_whose_page_was_not_written_are_read_from_the_record_and_filed_later():
    state = PagesDown()
    service = service_over(state)

    async def change():
        await with_model(service)
        await service.set_alias("iris", "champion", 1, "ops key", "first")
        await service.note("iris", check(1), "monitor")

    asyncio.run(change())  # committed: the page's failure is the relay's to retry
    assert not any(k.startswith("model-history:") for k in state.items)
    before = asyncio.run(service.history("iris"))
    assert [(e.seq, e.actor) for e in before.entries] == [(2, "monitor"), (1, "ops key")]
    state.down = False
    asyncio.run(service.flush_all())
    assert asyncio.run(service.record("iris")).unfiled == []
    assert asyncio.run(service.history("iris")) == before


class RecordWriteFailsOnce(FakeStateStore):
    """Fails the first write of the model record after a page was written: the relay died
    between filing the entries and taking them out of the record."""

    def __init__(self):
        super().__init__()
        self.armed = False

    async def save(self, key, value, etag=None):
        if key.startswith("model-history:"):
            self.armed = True
        elif self.armed and key == "model:iris":
            self.armed = False
            raise SidecarUnavailable("the state store went away")
        await super().save(key, value, etag)

    async def create(self, key, value):
        if key.startswith("model-history:"):
            self.armed = True
        await super().create(key, value)


def test_entries_filed_but_still_in_the_record_are_read_once_and_dropped_by_the_next_relay():
    state = RecordWriteFailsOnce()
    service = service_over(state)

    async def change():
        await with_model(service)
        await service.note("iris", check(1), "monitor")

    asyncio.run(change())
    assert [e.seq for e in asyncio.run(service.record("iris")).unfiled] == [1]  # also in its page now
    assert [e.seq for e in asyncio.run(service.history("iris")).entries] == [1]
    asyncio.run(service.flush_all())
    assert asyncio.run(service.record("iris")).unfiled == []
    assert [e.seq for e in asyncio.run(service.history("iris")).entries] == [1]


def test_an_entry_lost_from_the_state_store_is_an_error_that_says_so_never_a_silent_gap():
    state = FakeStateStore()
    service = service_over(state)

    async def change():
        await with_model(service)
        for i in range(3):
            await service.note("iris", check(i), "monitor")

    asyncio.run(change())
    del state.items["model-history:iris:0"]
    with pytest.raises(Corrupt, match="entries 1 to 3 of the history of model 'iris' were lost"):
        asyncio.run(service.history("iris"))


# records stored before the history left them


def test_an_old_records_alias_moves_are_the_first_entries_and_are_filed_by_the_relay():
    state = FakeStateStore()
    service = service_over(state)
    asyncio.run(with_model(service))
    old = json.loads(state.items["model:iris"].value)
    for key in ("recent", "champions", "had_champion", "history_count", "unfiled"):
        old.pop(key)
    old["history"] = [
        {"alias": "champion", "from": None, "to": 1, "reason": "promotion", "at": "2025-06-01T00:00:00Z"},
        {"alias": "staging", "from": None, "to": 1, "reason": "api", "at": "2025-06-02T00:00:00Z"},
    ]
    old["outbox"], old["aliases"] = [], {"champion": 1, "staging": 1}
    asyncio.run(state.save("model:iris", json.dumps(old).encode()))
    read = asyncio.run(service.history("iris"))
    assert [(e.seq, e.actor, e.details["alias"]) for e in read.entries] == [
        (2, "unknown", "staging"),
        (1, "unknown", "champion"),
    ]
    asyncio.run(service.flush_all())
    assert b'"history"' not in state.items["model:iris"].value
    assert asyncio.run(service.history("iris")) == read
    asyncio.run(service.set_alias("iris", "staging", 1, "ops key"))  # already there: nothing new
    asyncio.run(service.delete_alias("iris", "staging", "ops key", "retired"))
    newest = asyncio.run(service.history("iris", limit=1)).entries[0]
    assert (newest.seq, newest.actor, newest.reason) == (3, "ops key", "retired")
