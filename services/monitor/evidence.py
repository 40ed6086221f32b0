"""A rollout's evidence in one read (GET /internal/models/{name}/evidence?since=, which the
registry calls): the serving counters per version summed over the inference replicas, each
shadow's agreement and each version's live metrics over what was captured since `since`.

The shadows' agreement reads the shadows' captured answers and the served ones (bounded in rows
and parts); a rollout asks the same `since` again and again during a step, so an answer is kept
per (model, since): `cache_s`, or a tenth of the time since `since` when that is shorter, so
that the first readings of a step, over a few answers, are not held while many more come in
(a step 20 s old reads agreement at most 2 s old). The serving counters (one state read) and the live metrics (rows
held in memory) are read anew each time.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from services.common.contracts.monitoring import LATENCY_BOUNDS_MS, Evidence, ShadowAgreement
from services.monitor.domain.rows import utc
from services.monitor.live import LiveTracker
from services.monitor.serving import ServingKeeper
from services.monitor.shadows import agreement
from services.monitor.tables import InferenceTables

CACHED = 100
"""(model, since) pairs whose shadows' agreement is kept."""


class EvidenceService:
    def __init__(
        self,
        serving: ServingKeeper,
        tables: InferenceTables,
        live: LiveTracker,
        max_rows: int,
        max_parts: int,
        cache_s: float,
        clock: Callable[[], datetime],
    ):
        self.serving, self.tables, self.live = serving, tables, live
        self.max_rows, self.max_parts, self.cache_s, self.clock = max_rows, max_parts, cache_s, clock
        self._shadows: OrderedDict[tuple[str, datetime], tuple[datetime, list[ShadowAgreement]]] = OrderedDict()

    async def of(self, model: str, since: datetime) -> Evidence:
        now = self.clock()
        since = utc(since)
        serving, shadows, live = await asyncio.gather(
            self.serving.totals(model), self._agreement(model, since, now), self.live.since(model, since)
        )
        return Evidence(
            model=model,
            since=since,
            at=now,
            latency_bounds_ms=list(LATENCY_BOUNDS_MS),
            serving=serving,
            shadows=shadows,
            live=live,
        )

    async def _agreement(self, model: str, since: datetime, now: datetime) -> list[ShadowAgreement]:
        key = (model, since)
        kept = self._shadows.get(key)
        if kept is not None and (now - kept[0]).total_seconds() < kept_for(self.cache_s, since, kept[0]):
            self._shadows.move_to_end(key)
            return kept[1]
        reports = await agreement(self.tables, model, since, now, self.max_rows, self.max_parts)
        self._shadows[key] = (now, reports)
        self._shadows.move_to_end(key)
        while len(self._shadows) > CACHED:
            self._shadows.popitem(last=False)
        return reports


def kept_for(cache_s: float, since: datetime, computed_at: datetime) -> float:
    """How long an agreement computed at `computed_at` over what came since `since` is kept."""
    return min(cache_s, max(0.0, (computed_at - since).total_seconds()) / 10)
