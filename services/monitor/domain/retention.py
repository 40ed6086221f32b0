"""Retention of the monitor's tables: which days are past it, and the index changes that forget
a part or a day (pure; applied with compare-and-swap, safe to apply again to a newer document)."""

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from services.monitor.domain.index import ModelIndex, Segment
from services.monitor.domain.rows import utc


class TableModels(BaseModel):
    """The models a table has (or had) parts of: what a retention run goes through, since the
    blob store is never listed."""

    names: list[str] = Field(default_factory=list)


def with_model(listed: TableModels | None, model: str) -> TableModels | None:
    """The list naming the model too; None (nothing to write) when it does already."""
    listed = listed or TableModels()
    if model in listed.names:
        return None
    listed.names = sorted([*listed.names, model])
    return listed


def first_kept_day(now: datetime, days: int) -> str:
    """The oldest UTC day (YYYY-MM-DD) kept when `days` days are kept: today and the days-1
    before it. Every day before it is past retention."""
    return (utc(now).date() - timedelta(days=days - 1)).isoformat()


def days_before(index: ModelIndex | None, day: str) -> list[str]:
    """The index's days before `day`, oldest first."""
    return sorted(d for d in (index.days if index else {}) if d < day)


def without_parts(segment: Segment | None, names: frozenset[str]) -> Segment | None:
    """The segment without the named parts; None (nothing to write) when it lists none of them."""
    if segment is None or not any(p.name in names for p in segment.parts):
        return None
    segment.parts = [p for p in segment.parts if p.name not in names]
    return segment


def without_day(index: ModelIndex | None, day: str) -> ModelIndex | None:
    """The index without the day; None (nothing to write) when it has no such day."""
    if index is None or day not in index.days:
        return None
    del index.days[day]
    return index
