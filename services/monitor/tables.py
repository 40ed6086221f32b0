"""Inference tables: each model's captured predictions, as Parquet parts in the blob store
under a prefix per model and day, with an index of them in the state store.

Parts are written whole (a binding cannot append) and never changed. A part is written before
the index names it: a crash in between leaves a part nobody reads (its rows come again, since
their deliveries were not acknowledged), never an index naming a part that is not there.
"""

import asyncio
import logging
import secrets
from collections import defaultdict
from functools import partial

from services.common.contracts.monitoring import CapturedPrediction, PredictionsPage
from services.common.ports import BlobStore, NotFound, StateStore
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
from services.monitor.domain.rows import day_of, row_key, utc
from services.monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

PREFIX = "monitor/predictions"
SEGMENT_TRIES = 10
"""Full segments a part may find in a row before its write gives up (each try opens the next)."""


def part_key(model: str, day: str, name: str) -> str:
    """Where a part lies in the blob store: monitor/predictions/<model>/<YYYY-MM-DD>/<name>.parquet."""
    return f"{PREFIX}/{model}/{day}/{name}.parquet"


def index_key(model: str) -> str:
    return f"predictions:{model}"


def segment_key(model: str, day: str, segment: int) -> str:
    return f"predictions:{model}:{day}:{segment}"


class InferenceTables:
    def __init__(
        self, state: StateStore, blobs: BlobStore, segment_parts: int, page_max_parts: int, metrics: MonitorMetrics
    ):
        self.blobs, self.segment_parts, self.page_max_parts = blobs, segment_parts, page_max_parts
        self.metrics = metrics
        self.indexes = Documents(state, ModelIndex)
        self.segments = Documents(state, Segment)

    async def write(self, rows: list[CapturedPrediction]) -> int:
        """Writes the rows as parts, one per model and day, and indexes them; returns how many
        parts. Raises what the stores raise: parts written before a failure stay (their rows
        come again and are dropped as duplicates when read)."""
        groups: dict[tuple[str, str], list[CapturedPrediction]] = defaultdict(list)
        for row in rows:
            groups[(row.model, day_of(row.at))].append(row)
        for (model, day), group in sorted(groups.items()):
            group.sort(key=row_key)
            first, last = utc(group[0].at), utc(group[-1].at)
            entry = PartEntry(
                name=f"{first:%H%M%S%f}-{secrets.token_hex(6)}", rows=len(group), first_at=first, last_at=last
            )
            data = await asyncio.to_thread(parquet.encode, group)  # a big part is CPU work: off the loop
            await self.blobs.put(part_key(model, day, entry.name), data)
            await self._index(model, day, entry)
        return len(groups)

    async def _index(self, model: str, day: str, entry: PartEntry) -> None:
        index = await self.indexes.get(index_key(model))
        segment = max(index.days.get(day, 0) if index else 0, 1)
        # The index names a segment before the segment names the part: a reader finds every part.
        await self.indexes.update(index_key(model), partial(with_segment, day=day, segment=segment))
        for _ in range(SEGMENT_TRIES):
            try:
                await self.segments.update(
                    segment_key(model, day, segment), partial(with_part, part=entry, max_parts=self.segment_parts)
                )
                return
            except SegmentFull:
                segment += 1
                await self.indexes.update(index_key(model), partial(with_segment, day=day, segment=segment))
        raise RuntimeError(f"{model} {day}: {SEGMENT_TRIES} index segments in a row were full")

    async def page(self, model: str, cursor: Cursor, limit: int) -> PredictionsPage:
        """Up to `limit` rows after the cursor, in time order. `next_since` (and `next_after`) are
        set when more may follow: the page is full, or it stopped at `page_max_parts` parts."""
        index = await self.indexes.get(index_key(model))
        gathering = Gathering(cursor, limit)
        read, stopped, rows = 0, False, None
        since_day = day_of(cursor.since) if cursor.since is not None else None
        for day, segments in days_from(index or ModelIndex(), since_day):
            parts = candidates(await self._parts(model, day, segments), cursor.since)
            for i, part in enumerate(parts):
                gathering.add(await self._read(model, day, part))
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

    async def _parts(self, model: str, day: str, segments: int) -> list[PartEntry]:
        parts: list[PartEntry] = []
        for segment in range(1, segments + 1):
            found = await self.segments.get(segment_key(model, day, segment))
            parts.extend(found.parts if found else [])  # named by the index, not written yet
        return parts

    async def _read(self, model: str, day: str, part: PartEntry) -> list[CapturedPrediction]:
        try:
            data = await self.blobs.get(part_key(model, day, part.name))
        except NotFound:
            log.warning("the index of %s names part %s of %s, which is not in the blob store", model, part.name, day)
            return []
        return await asyncio.to_thread(parquet.decode, data)
