"""The index of a model's inference table: which Parquet parts hold its rows, so that a read
finds them without listing the blob store (and reads only the parts a page needs).

A model's index document lists the days it has rows of and how many segments each day's list
of parts takes; each segment lists at most a fixed number of parts (a document stays small,
within any state store's item limit). A part holds rows of one day only. Every change below is
a pure function, applied with compare-and-swap (services.common.state.Documents): applied again
to a newer document it gives the right answer.
"""

from datetime import datetime

from pydantic import BaseModel, Field

PART_NAME = r"^[0-9]{12}-[0-9a-f]{12}$"
"""A part's name: the time of its first row (HHMMSSffffff) and a random suffix."""


class PartEntry(BaseModel):
    """One Parquet part of a model's day."""

    name: str = Field(pattern=PART_NAME)
    rows: int = Field(ge=1)
    first_at: datetime
    last_at: datetime


class ModelIndex(BaseModel):
    """A model's days with rows, each with the number of segments its parts are listed in."""

    days: dict[str, int] = Field(default_factory=dict)


class Segment(BaseModel):
    """Parts of one model's day, in the order they were written."""

    parts: list[PartEntry] = Field(default_factory=list)


class SegmentFull(Exception):
    """The segment lists as many parts as a segment may: the next one takes the part."""


def with_segment(index: ModelIndex | None, day: str, segment: int) -> ModelIndex:
    """The index with the day's segments counted up to `segment` at least."""
    index = index or ModelIndex()
    index.days[day] = max(index.days.get(day, 0), segment)
    return index


def with_part(segment: Segment | None, part: PartEntry, max_parts: int) -> Segment:
    """The segment listing the part too (once: a part listed already is left as it is). Raises
    SegmentFull when it lists `max_parts` already."""
    segment = segment or Segment()
    if any(p.name == part.name for p in segment.parts):
        return segment
    if len(segment.parts) >= max_parts:
        raise SegmentFull(f"{len(segment.parts)} parts")
    segment.parts.append(part)
    return segment


def days_from(index: ModelIndex, day: str | None) -> list[tuple[str, int]]:
    """The index's days on or after `day` (all of them for None), in order, with their segment counts."""
    return sorted((d, n) for d, n in index.days.items() if day is None or d >= day)
