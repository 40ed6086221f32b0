"""The monitor's tables: rows as Parquet parts in the blob store under a prefix per model and
day, with an index of them in the state store. Two tables share this code: each model's
captured predictions (its inference table, InferenceTables) and the feedback sent for them
(feedback.py).

Parts are written whole (a binding cannot append) and never changed. A part is written before
the index names it: a crash in between leaves a part nobody reads (its rows come again, since
their deliveries were not acknowledged, or the feedback call failed and is sent again), never
an index naming a part that is not there.
"""

import asyncio
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from services.common.contracts.monitoring import CapturedPrediction, PredictionsPage
from services.common.ports import BlobStore, ConcurrencyConflict, NotFound, StateStore
from services.common.state import Documents
from services.monitor import parquet
from services.monitor.domain.index import (
    ModelIndex,
    PartEntry,
    Segment,
    SegmentFull,
    days_from,
    with_part,
    with_segment,
)
from services.monitor.domain.pages import Cursor, Gathering, candidates
from services.monitor.domain.retention import TableModels, with_model, without_day, without_parts
from services.monitor.domain.rows import day_of, row_key, shadow_key, utc
from services.monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

R = TypeVar("R")

PREDICTIONS = "predictions"
PREFIX = "monitor/predictions"
SEGMENT_TRIES = 10
"""Full segments a part may find in a row before its write gives up (each try opens the next)."""


@dataclass(frozen=True)
class Codec(Generic[R]):
    """What a table needs to know of its rows: whose and when they are, their order within a
    part, and their Parquet form."""

    model: Callable[[R], str]
    at: Callable[[R], datetime]
    order: Callable[[R], Any]
    encode: Callable[[list[R]], bytes]
    decode: Callable[[bytes], list[R]]


@dataclass(frozen=True)
class WrittenPart:
    model: str
    day: str
    entry: PartEntry


@dataclass(frozen=True)
class Pruned:
    """What pruning a day removed, and whether the day is gone (False: the bound came first)."""

    parts: int
    rows: int
    done: bool


class PartTable(Generic[R]):
    """One table's parts (`kind`: predictions, feedback): blobs under monitor/<kind>/<model>/<day>/,
    indexed by the state documents <kind>:<model> (the days) and <kind>:<model>:<day>:<n> (the
    parts of a day, at most `segment_parts` a document)."""

    def __init__(
        self,
        kind: str,
        codec: Codec[R],
        state: StateStore,
        blobs: BlobStore,
        segment_parts: int,
        metrics: MonitorMetrics | None = None,
    ):
        self.kind, self.codec, self.blobs, self.segment_parts = kind, codec, blobs, segment_parts
        self.state, self.metrics = state, metrics
        self.indexes = Documents(state, ModelIndex)
        self.segments = Documents(state, Segment)
        self.models_list = Documents(state, TableModels)
        self.listed: set[str] = set()  # models this process saw named in the list already

    def models_key(self) -> str:
        # Not under `<kind>:`, where a model named `models` would have its index.
        return f"tables:{self.kind}"

    def part_key(self, model: str, day: str, name: str) -> str:
        return f"monitor/{self.kind}/{model}/{day}/{name}.parquet"

    def index_key(self, model: str) -> str:
        return f"{self.kind}:{model}"

    def segment_key(self, model: str, day: str, segment: int) -> str:
        return f"{self.kind}:{model}:{day}:{segment}"

    async def write(self, rows: Sequence[R]) -> list[WrittenPart]:
        """Writes the rows as parts, one per model and day, and indexes them; returns the parts.
        Raises what the stores raise: parts written before a failure stay (their rows come
        again and are dropped as duplicates when read)."""
        groups: dict[tuple[str, str], list[R]] = defaultdict(list)
        for row in rows:
            groups[(self.codec.model(row), day_of(self.codec.at(row)))].append(row)
        written = []
        for (model, day), group in sorted(groups.items()):
            group.sort(key=self.codec.order)
            times = [utc(self.codec.at(r)) for r in group]
            first, last = min(times), max(times)
            entry = PartEntry(
                name=f"{first:%H%M%S%f}-{secrets.token_hex(6)}", rows=len(group), first_at=first, last_at=last
            )
            data = await asyncio.to_thread(self.codec.encode, group)  # a big part is CPU work: off the loop
            await self.blobs.put(self.part_key(model, day, entry.name), data)
            await self._index(model, day, entry)
            written.append(WrittenPart(model, day, entry))
        return written

    async def _index(self, model: str, day: str, entry: PartEntry) -> None:
        if model not in self.listed:
            # The list of models names one before its index does: retention finds every table.
            # Once a process: a name is never taken off the list (retention.py says why).
            await self.models_list.update(self.models_key(), partial(with_model, model=model))
            self.listed.add(model)
        index = await self.indexes.get(self.index_key(model))
        segment = max(index.days.get(day, 0) if index else 0, 1)
        # The index names a segment before the segment names the part: a reader finds every part.
        await self.indexes.update(self.index_key(model), partial(with_segment, day=day, segment=segment))
        for _ in range(SEGMENT_TRIES):
            try:
                await self.segments.update(
                    self.segment_key(model, day, segment),
                    partial(with_part, part=entry, max_parts=self.segment_parts),
                )
                return
            except SegmentFull:
                segment += 1
                await self.indexes.update(self.index_key(model), partial(with_segment, day=day, segment=segment))
        raise RuntimeError(f"{self.kind} of {model} {day}: {SEGMENT_TRIES} index segments in a row were full")

    async def days(self, model: str, since_day: str | None = None) -> list[tuple[str, int]]:
        """The model's days with parts on or after `since_day` (every one for None), in order,
        with the number of index segments each takes."""
        index = await self.indexes.get(self.index_key(model))
        return days_from(index or ModelIndex(), since_day)

    async def parts(self, model: str, day: str, segments: int) -> list[PartEntry]:
        parts: list[PartEntry] = []
        for segment in range(1, segments + 1):
            found = await self.segments.get(self.segment_key(model, day, segment))
            parts.extend(found.parts if found else [])  # named by the index, not written yet
        return parts

    async def blob(self, model: str, day: str, part: PartEntry) -> bytes | None:
        """The part's bytes; None (logged) for a part the index names and the blob store has not."""
        try:
            return await self.blobs.get(self.part_key(model, day, part.name))
        except NotFound:
            log.warning(
                "the %s index of %s names part %s of %s, not in the blob store", self.kind, model, part.name, day
            )
            if self.metrics is not None:
                self.metrics.parts_missing.labels(self.kind).inc()
            return None

    async def models(self) -> list[str]:
        """The models this table has (or had) parts of."""
        listed = await self.models_list.get(self.models_key())
        return listed.names if listed else []

    async def prune(self, model: str, day: str, max_parts: int) -> Pruned:
        """Deletes up to `max_parts` parts of the model's day, and the day itself from the index
        once it has no part left. Safe to run again after a crash or beside another run.

        Each step deletes a thing before what names it: the part's blob, then its entry in its
        segment; an empty segment, then the day in the index. A crash in between leaves a name
        of something gone, never a thing nothing names: readers pass over a part that is not
        in the blob store (counted in daprml_monitor_parts_missing_total), a segment that is not
        in the state store lists nothing, and the next run deletes again what is already gone
        and takes the name away. The other order would leave blobs no one can find (the blob
        store is never listed), kept for ever."""
        index = await self.indexes.get(self.index_key(model))
        segments = index.days.get(day, 0) if index else 0
        parts = rows = 0
        for n in range(1, segments + 1):
            key = self.segment_key(model, day, n)
            segment = await self.segments.get(key)
            listed = segment.parts if segment else []
            take = listed[: max_parts - parts]
            for part in take:
                try:
                    await self.blobs.delete(self.part_key(model, day, part.name))
                except NotFound:
                    pass  # deleted by a run that stopped before forgetting it
            if take:
                await self.segments.update(key, partial(without_parts, names=frozenset(p.name for p in take)))
                parts, rows = parts + len(take), rows + sum(p.rows for p in take)
            if len(take) < len(listed) or not await self._drop_empty(key):
                return Pruned(parts, rows, done=False)
        # Every segment is gone: forget the day. A row of that day written at this very moment
        # (a delivery late by the whole retention) would be left unnamed: a part no one reads.
        await self.indexes.update(self.index_key(model), partial(without_day, day=day))
        return Pruned(parts, rows, done=True)

    async def _drop_empty(self, key: str) -> bool:
        """Deletes the segment if it lists no part; False if it lists one (written since)."""
        found = await self.state.get(key)
        if found is None:
            return True
        if Segment.model_validate_json(found.value).parts:
            return False
        try:
            await self.state.delete(key, etag=found.etag)  # only if no part was added since
        except ConcurrencyConflict:
            return False
        return True

    async def read(self, model: str, day: str, part: PartEntry, decode: Callable[[bytes], Any] | None = None) -> Any:
        """The part's rows, decoded by the table's codec (or by `decode`, which may read fewer
        columns); [] for a part not in the blob store."""
        data = await self.blob(model, day, part)
        if data is None:
            return []
        return await asyncio.to_thread(decode or self.codec.decode, data)


PREDICTION_CODEC = Codec[CapturedPrediction](
    model=lambda r: r.model, at=lambda r: r.at, order=row_key, encode=parquet.encode, decode=parquet.decode
)
SHADOWS = "shadows"
SHADOW_CODEC = Codec[CapturedPrediction](
    model=lambda r: shadow_key(r.model, r.version),
    at=lambda r: r.at,
    order=row_key,
    encode=parquet.encode,
    decode=partial(parquet.decode, shadow=True),
)


def part_key(model: str, day: str, name: str) -> str:
    """Where a part lies in the blob store: monitor/predictions/<model>/<YYYY-MM-DD>/<name>.parquet."""
    return f"{PREFIX}/{model}/{day}/{name}.parquet"


def index_key(model: str) -> str:
    return f"{PREDICTIONS}:{model}"


def segment_key(model: str, day: str, segment: int) -> str:
    return f"{PREDICTIONS}:{model}:{day}:{segment}"


class InferenceTables:
    def __init__(
        self, state: StateStore, blobs: BlobStore, segment_parts: int, page_max_parts: int, metrics: MonitorMetrics
    ):
        self.table = PartTable(PREDICTIONS, PREDICTION_CODEC, state, blobs, segment_parts, metrics)
        self.shadows = PartTable(SHADOWS, SHADOW_CODEC, state, blobs, segment_parts, metrics)
        """Shadow versions' answers (their traffic table's copies), by model and version (shadow_key)."""
        self.blobs, self.segment_parts, self.page_max_parts = blobs, segment_parts, page_max_parts
        self.metrics = metrics
        self.indexes, self.segments = self.table.indexes, self.table.segments

    async def write(self, rows: list[CapturedPrediction]) -> int:
        """Writes the rows as parts, one per model (or shadow) and day, and indexes them; returns
        how many parts. Raises what the stores raise: parts written before a failure stay (their
        rows come again and are dropped as duplicates when read)."""
        served = [r for r in rows if not r.shadow]
        shadows = [r for r in rows if r.shadow]
        written = len(await self.table.write(served)) if served else 0
        return written + (len(await self.shadows.write(shadows)) if shadows else 0)

    async def page(self, model: str, cursor: Cursor, limit: int, shadow: int | None = None) -> PredictionsPage:
        """Up to `limit` rows after the cursor, in time order (`shadow`: those of that shadow
        version). `next_since` (and `next_after`) are set when more may follow: the page is full,
        or it stopped at `page_max_parts` parts."""
        table, key = (self.table, model) if shadow is None else (self.shadows, shadow_key(model, shadow))
        gathering = Gathering(cursor, limit)
        read, stopped, rows = 0, False, None
        since_day = day_of(cursor.since) if cursor.since is not None else None
        for day, segments in await table.days(key, since_day):
            parts = candidates(await table.parts(key, day, segments), cursor.since)
            for i, part in enumerate(parts):
                gathering.add(await table.read(key, day, part))
                read += 1
                sure = gathering.settled(parts[i + 1].first_at if i + 1 < len(parts) else None)
                if len(sure) >= limit or (read >= self.page_max_parts and sure):
                    rows, stopped = sure[:limit], True
                    break
            if stopped:
                break
        if rows is None:
            rows = gathering.settled(None)
        self.metrics.duplicates.labels("read").inc(gathering.duplicates)
        more = stopped or len(rows) >= limit
        last = rows[-1] if rows and more else None
        return PredictionsPage(
            model=model,
            predictions=rows,
            next_since=last.at if last else None,
            next_after=last.prediction_id if last else None,
        )
