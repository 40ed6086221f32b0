"""A model's history: the append-only log of what was done to it, by whom, why and when.

Each entry has a number (`seq`, 1 first, no gaps) given by the same compare-and-swap of the
model record as the change it describes, so concurrent changes get their entries in the order
they were committed and none is lost. The record keeps only the count and the entries not yet
written to their pages (`unfiled`); the pages, PAGE_ENTRIES entries each, hold the rest
(services/registry/history.py writes and reads them).

Actions (ACTIONS; the monitor adds its own under `monitoring.`):

    alias.moved      an alias was set, moved or removed (details: alias, from, to, cause:
                     api, promotion or rollback; a promotion's reason says how it was decided)
    policy.changed   the promotion policy changed (details: from, to)
    traffic          the traffic table (canaries, shadows) changed: set or cleared through the
                     API, or a version left it on becoming champion (details: from, to)
    rollout.*        a rollout's moves (details: rollout, step, gate results): started, step
                     (a step began: the table it set), passed, decision (approve, reject,
                     abort), promoted, rolled_back (which gate and its numbers), completed,
                     failed
    monitoring.*     what the monitor did: its policy changed, a check ran, a retraining started
                     (POST /internal/models/{name}/history)
"""

from typing import Final

from pydantic import BaseModel, Field

# The entry and the monitor's note are contracts: the monitor sends notes and reads entries.
from services.common.contracts.models import HISTORY_ACTION
from services.common.contracts.models import MAX_DETAILS_BYTES as MAX_DETAILS_BYTES
from services.common.contracts.models import HistoryEntry as HistoryEntry
from services.common.contracts.models import Note as Note

PAGE_ENTRIES: Final = 100
"""Entries per stored page. Fixed, not a setting: where an entry is stored is computed from it,
so another value would look for every stored entry in the wrong page."""
RECENT_MOVES: Final = 20
"""Alias moves the model record keeps for GET /api/models/{name} (the whole history: .../history)."""
ACTION = HISTORY_ACTION
ALIAS_MOVED: Final = "alias.moved"
POLICY_CHANGED: Final = "policy.changed"
TRAFFIC_CHANGED: Final = "traffic.changed"
MONITORING: Final = "monitoring."
ROLLOUT: Final = "rollout."  # rollout.started, .step, .passed, .decision, .promoted, .rolled_back, ...
ACTIONS: Final = (ALIAS_MOVED, POLICY_CHANGED, TRAFFIC_CHANGED)
"""What the registry records by itself; others record only `monitoring.*` actions."""


class HistoryPage(BaseModel):
    """PAGE_ENTRIES entries of a model's history as stored, in order."""

    entries: list[HistoryEntry] = Field(default_factory=list)


class ModelHistory(BaseModel):
    """Answer of GET /api/models/{name}/history: entries newest first."""

    model: str
    total: int = Field(description="entries in the model's history: the seq of the newest")
    entries: list[HistoryEntry]
    next_before: int | None = Field(description="pass as `before` for the next (older) page; None: no older entries")


def page_of(seq: int) -> int:
    """The page an entry is stored in (0 first)."""
    return (seq - 1) // PAGE_ENTRIES


def window(total: int, before: int | None, limit: int) -> range:
    """The seqs of one page of an answer, newest first: up to `limit` entries older than
    `before` (None: from the newest)."""
    newest = total if before is None else min(before - 1, total)
    return range(newest, max(newest - limit, 0), -1)


def filed(page: HistoryPage | None, entries: list[HistoryEntry]) -> HistoryPage:
    """The page with the entries it lacks added, in order. Filing an entry again changes
    nothing: two relays filing the same entries at once leave one copy of each."""
    page = page or HistoryPage()
    have = {e.seq for e in page.entries}
    page.entries = sorted([*page.entries, *(e for e in entries if e.seq not in have)], key=lambda e: e.seq)
    return page
