"""Pages of an inference table: rows after a cursor, in time order, a bounded number at a time.

Parts overlap in time (an event delivered again, or late, lands in a part written after
others), so a page reads the day's parts in the order of their first row and keeps a row only
once no part left unread can hold an earlier one. The same prediction in two parts (an event
delivered twice) has the same place in the order: it is kept once.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.common.contracts.monitoring import CapturedPrediction
from services.monitor.domain.index import PartEntry
from services.monitor.domain.rows import Key, key_of, row_key, utc


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: rows at `since` or later; with `after` (a prediction id at that
    time, the last row of the page before), only the rows that come after it."""

    since: datetime | None = None
    after: str | None = None

    def key(self) -> Key | None:
        if self.since is None:
            return None
        if self.after is None:
            return (utc(self.since), "", -1)  # before every row at that time
        return key_of(self.after, self.since)

    def admits(self, row: CapturedPrediction) -> bool:
        start = self.key()
        return start is None or row_key(row) > start


def candidates(parts: Iterable[PartEntry], since: datetime | None) -> list[PartEntry]:
    """The parts that may hold rows at `since` or later, in the order of their first row."""
    start = None if since is None else utc(since)
    kept = [p for p in parts if start is None or utc(p.last_at) >= start]
    return sorted(kept, key=lambda p: (utc(p.first_at), p.name))


class Gathering:
    """The rows a page may answer with, gathered part by part: only those after the cursor,
    each prediction once, and never more than the page's size (the earliest ones)."""

    def __init__(self, cursor: Cursor, limit: int):
        self.cursor, self.limit = cursor, limit
        self.rows: dict[Key, CapturedPrediction] = {}
        self.duplicates = 0

    def add(self, rows: Iterable[CapturedPrediction]) -> None:
        for row in rows:
            if not self.cursor.admits(row):
                continue
            key = row_key(row)
            if key in self.rows:
                self.duplicates += 1
                continue
            self.rows[key] = row
        if len(self.rows) > self.limit:
            # Rows past the earliest `limit` can never be on this page, whatever is read next.
            self.rows = dict(sorted(self.rows.items())[: self.limit])

    def settled(self, unread_from: datetime | None) -> list[CapturedPrediction]:
        """The rows sure to be on the page, in order: those before the first row of any part left
        unread (`unread_from`; None: nothing is left unread)."""
        ordered = [row for key, row in sorted(self.rows.items())]
        if unread_from is None:
            return ordered
        bound = utc(unread_from)
        return [row for row in ordered if utc(row.at) < bound]
