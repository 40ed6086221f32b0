"""Retention: the parts of inference tables and feedback tables older than
DAPRML_RETENTION_DAYS are deleted by a Dapr Job, `retention.tables`.

Every replica schedules the job at start-up (replacing the one of that name, so the last
replica started sets its schedule); the scheduler fires each trigger on one replica. A run goes
through each table's models (the list a table keeps, tables.py: the blob store is never listed)
and deletes their days before the first day kept, oldest first, at most
DAPRML_RETENTION_MAX_PARTS parts a run: what is left waits for the next run. How a part is
deleted so that a crash never leaves what readers would fail on: PartTable.prune.

A model is never taken off a table's list, even with no day left: a replica that wrote its
name once does not write it again, so a name taken off could not come back for its new parts.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from services.common.errors import ClientError
from services.common.ports import Jobs
from services.monitor.domain.retention import days_before, first_kept_day
from services.monitor.metrics import (
    RETENTION_BOUNDED,
    RETENTION_DONE,
    RETENTION_FAILED,
    RETENTION_SKIPPED,
    MonitorMetrics,
)
from services.monitor.tables import PartTable

log = logging.getLogger(__name__)

JOB_KIND = "retention"
JOB_KEY = "tables"


def job_name() -> str:
    """The job's name, without the stack's prefix (the Jobs port adds it)."""
    return f"{JOB_KIND}.{JOB_KEY}"


@dataclass(frozen=True)
class RetentionLimits:
    days: int
    schedule: str
    max_parts: int


class RetentionRun(BaseModel):
    """What one run deleted: parts and rows by table, and whether anything past retention is left."""

    first_kept_day: str
    parts: dict[str, int]
    rows: dict[str, int]
    done: bool


class UnknownJob(ClientError):
    status = 404


class Retention:
    def __init__(
        self,
        tables: Sequence[PartTable[Any]],
        jobs: Jobs,
        limits: RetentionLimits,
        metrics: MonitorMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.tables, self.jobs, self.limits, self.metrics, self.clock = tables, jobs, limits, metrics, clock
        self._running = asyncio.Lock()

    async def schedule(self) -> None:
        """Schedules the job (start-up work: retried until the sidecar takes it)."""
        await self.jobs.schedule(job_name(), self.limits.schedule, {"days": self.limits.days}, overwrite=True)

    async def on_job(self, key: str, data: dict[str, Any]) -> None:
        if key != JOB_KEY:
            raise UnknownJob(f"no retention job {key!r}")  # no retry can help: dropped
        await self.run()

    async def run(self) -> RetentionRun | None:
        """One run; None when one is running in this process already (a trigger repeated while
        a long run goes on: that run does the work)."""
        if self._running.locked():
            self.metrics.retention_runs.labels(RETENTION_SKIPPED).inc()
            return None
        async with self._running:
            try:
                result = await self._run()
            except Exception:
                self.metrics.retention_runs.labels(RETENTION_FAILED).inc()
                raise
        self.metrics.retention_runs.labels(RETENTION_DONE if result.done else RETENTION_BOUNDED).inc()
        if any(result.parts.values()):
            log.info(
                "retention deleted parts before %s: %s (rows %s)", result.first_kept_day, result.parts, result.rows
            )
        return result

    async def _run(self) -> RetentionRun:
        kept = first_kept_day(self.clock(), self.limits.days)
        left = self.limits.max_parts
        parts = {t.kind: 0 for t in self.tables}
        rows = {t.kind: 0 for t in self.tables}
        for table in self.tables:
            for model in await table.models():
                for day in days_before(await table.indexes.get(table.index_key(model)), kept):
                    pruned = await table.prune(model, day, left)
                    # Counted as it goes: a run failing later still counts what it deleted.
                    self.metrics.retention_parts.labels(table.kind).inc(pruned.parts)
                    self.metrics.retention_rows.labels(table.kind).inc(pruned.rows)
                    parts[table.kind] += pruned.parts
                    rows[table.kind] += pruned.rows
                    left -= pruned.parts
                    if not pruned.done:
                        return RetentionRun(first_kept_day=kept, parts=parts, rows=rows, done=False)
        return RetentionRun(first_kept_day=kept, parts=parts, rows=rows, done=True)
