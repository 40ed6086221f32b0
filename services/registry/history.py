"""A model's history in the state store (its entries: domain/history.py).

An entry is written in the same compare-and-swap of the model record as the change it
describes, into the record's `unfiled` list: a change without its entry, or an entry of a
change that did not happen, cannot be. The outbox relay (outbox.py: right after the change,
and from the background job after a crash or a failure) then files the entries into their
pages and only after that takes them out of the record. Filing twice is harmless (an entry
already in its page is not added again), so two relays at once, or a relay that dies between
the two writes, leave each entry once. A read takes the entries of the record and of the pages
together, so it never sees a gap, filed or not.
"""

import asyncio
import logging
from collections import defaultdict
from functools import partial

from services.registry.domain.errors import Corrupt
from services.registry.domain.history import HistoryEntry, ModelHistory, filed, page_of, window
from services.registry.domain.model import ModelRecord
from services.registry.repository import ModelRepository

log = logging.getLogger(__name__)


async def file(repo: ModelRepository, name: str, entries: list[HistoryEntry]) -> int:
    """Writes the entries (unfiled in the record when it was read) to their pages, then takes
    them out of the record; returns how many."""
    if not entries:
        return 0
    pages: dict[int, list[HistoryEntry]] = defaultdict(list)
    for entry in entries:
        pages[page_of(entry.seq)].append(entry)
    for page, its in sorted(pages.items()):
        await repo.update_page(name, page, partial(filed, entries=its))
    seqs = {e.seq for e in entries}

    def drop_filed(current: ModelRecord | None) -> ModelRecord | None:
        # Entries of changes made meanwhile stay for the next relay.
        if current is not None:
            current.unfiled = [e for e in current.unfiled if e.seq not in seqs]
        return current

    await repo.update(name, drop_filed)
    return len(seqs)


async def read(repo: ModelRepository, record: ModelRecord, before: int | None, limit: int) -> ModelHistory:
    """Up to `limit` entries older than `before` (None: the newest), newest first."""
    seqs = window(record.history_count, before, limit)
    found = {e.seq: e for e in record.unfiled if e.seq in seqs}
    wanted = sorted({page_of(s) for s in seqs if s not in found})
    for page in await asyncio.gather(*(repo.page(record.name, p) for p in wanted)):
        for entry in page.entries if page is not None else []:
            if entry.seq in seqs:
                found.setdefault(entry.seq, entry)
    missing = sorted(s for s in seqs if s not in found)
    if missing:
        log.error("model %s: history entries %s are missing from the state store", record.name, missing)
        raise Corrupt(
            f"entries {missing[0]} to {missing[-1]} of the history of model {record.name!r} were lost from the "
            f"state store"
        )
    oldest = seqs[-1] if seqs else None
    return ModelHistory(
        model=record.name,
        total=record.history_count,
        entries=[found[s] for s in seqs],
        next_before=oldest if oldest is not None and oldest > 1 else None,
    )
