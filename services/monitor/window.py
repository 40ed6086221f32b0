"""A drift check's window: the newest captured predictions of a model within a time range, read
from its inference table newest part first, bounded in rows and in parts read.

Parts overlap in time (a late or redelivered event lands in a part written after others), so
parts are read in the order of their newest row, and the read stops once no part left could
hold a row newer than the oldest row kept (or the part budget is spent). Each prediction is
kept once, by its id.
"""

from dataclasses import dataclass
from datetime import datetime

from services.common.contracts.monitoring import CapturedPrediction
from services.monitor.domain.rows import day_of, row_key, utc
from services.monitor.tables import PartTable


@dataclass(frozen=True)
class Window:
    rows: list[CapturedPrediction]
    """In time order, oldest first."""
    parts_read: int
    truncated: bool
    """Rows were left out: more rows than the cap, or more parts than the budget."""


async def newest_rows(
    table: PartTable[CapturedPrediction],
    model: str,
    since: datetime | None,
    until: datetime,
    max_rows: int,
    max_parts: int,
) -> Window:
    """The newest `max_rows` rows of the model (in the shadows table: of a shadow key) captured
    from `since` (None: any time) to `until`, reading at most `max_parts` parts."""
    start, end = (utc(since) if since is not None else None), utc(until)
    kept: dict[str, CapturedPrediction] = {}
    parts_read, truncated, oldest_kept = 0, False, None
    days = [d for d in await table.days(model, day_of(start) if start else None) if d[0] <= day_of(end)]
    for day, segments in reversed(days):
        parts = [
            p
            for p in await table.parts(model, day, segments)
            if (start is None or utc(p.last_at) >= start) and utc(p.first_at) <= end
        ]
        parts.sort(key=lambda p: (utc(p.last_at), p.name), reverse=True)
        for part in parts:
            if len(kept) >= max_rows and oldest_kept is not None and utc(part.last_at) < oldest_kept:
                return _window(kept, parts_read, truncated)  # nothing older can make the cut
            if parts_read >= max_parts:
                return _window(kept, parts_read, True)
            rows: list[CapturedPrediction] = await table.read(model, day, part)
            parts_read += 1
            for row in rows:
                at = utc(row.at)
                if (start is None or at >= start) and at <= end:
                    kept[row.prediction_id] = row
            if len(kept) > max_rows:
                truncated = True
                newest = sorted(kept.values(), key=row_key, reverse=True)[:max_rows]
                kept = {r.prediction_id: r for r in newest}
            if len(kept) >= max_rows:
                oldest_kept = min(utc(r.at) for r in kept.values())
    return _window(kept, parts_read, truncated)


def _window(kept: dict[str, CapturedPrediction], parts_read: int, truncated: bool) -> Window:
    return Window(sorted(kept.values(), key=row_key), parts_read, truncated)
