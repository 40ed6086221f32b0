"""Carrying out a retrain order: the champion's training data plus the captured predictions that
have an actual become a new version of its dataset (through ingestion, as any version, marked
with its origin), and its estimator is trained on it (through training, as any job). The new
model version is then promoted by the model's promotion policy in the registry, which by default
keeps a version trained on feedback challenger (feedback can be sent with a predict key).

Done again (the monitor died half way, or two replicas relayed one order), it gives ingestion the
same rows: the commit is the first one's version again (`unchanged`, with this order's origin)
and the job the same job. See domain/retrain.py.
"""

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from services.common.clients import Absent, IngestionClient, Refused, RegistryClient, TrainingClient
from services.common.contracts import Manifest
from services.common.contracts.datasets import Origin
from services.common.contracts.jobs import JobRequest
from services.monitor.domain.ledger import Truth
from services.monitor.domain.retrain import (
    RETRAIN_FAILED,
    RETRAIN_SKIPPED,
    RETRAINED,
    Outcome,
    RetrainOrder,
    labeled_records,
    ndjson_parts,
)
from services.monitor.live import LiveTracker
from services.monitor.tables import InferenceTables
from services.monitor.window import newest_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainLimits:
    max_rows: int
    """Rows of training data a retrain reads at most (its dataset version's); more: it is refused."""
    max_captured: int
    """Captured predictions a retrain reads at most, the newest (those with an actual are added)."""
    max_parts: int
    """Parts of the inference table a retrain reads at most."""
    part_bytes: int
    """Bytes of one part uploaded to ingestion at most."""


class Retrainer:
    def __init__(
        self,
        registry: RegistryClient,
        ingestion: IngestionClient,
        training: TrainingClient,
        tables: InferenceTables,
        truths: Callable[[str], Awaitable[dict[str, Truth]]],
        limits: RetrainLimits,
    ):
        self.registry, self.ingestion, self.training = registry, ingestion, training
        self.tables, self.truths, self.limits = tables, truths, limits

    async def run(self, order: RetrainOrder) -> Outcome:
        """What the order came to. A refusal (a 4xx of ingestion, training or the registry: the
        same again would be refused again) is an outcome; a service away raises, and the relay
        tries again later."""
        try:
            return await self._run(order)
        except (Absent, Refused) as exc:
            log.warning("retrain %s of %s refused: %s", order.id, order.model, exc)
            return Outcome(action=RETRAIN_FAILED, reason=str(exc)[:2000])

    async def _run(self, order: RetrainOrder) -> Outcome:
        lineage = (await self.registry.version(order.model, order.version)).lineage
        if lineage is None:
            return Outcome(action=RETRAIN_FAILED, reason=f"the registry names no lineage for version {order.version}")
        base = await self.ingestion.manifest(lineage.dataset, lineage.dataset_version)
        if base.row_count > self.limits.max_rows:
            return Outcome(
                action=RETRAIN_SKIPPED,
                reason=f"the training data ({lineage.dataset} v{base.version}) has {base.row_count} rows, more than a "
                f"retrain reads (DAPRML_RETRAIN_MAX_ROWS, {self.limits.max_rows}): train it by hand",
            )
        window = await newest_rows(
            self.tables.table, order.model, None, order.until, self.limits.max_captured, self.limits.max_parts
        )
        added = labeled_records(window.rows, await self.truths(order.model), base.schema_.target, order.until)
        if len(added) < order.min_rows:
            return Outcome(
                action=RETRAIN_SKIPPED,
                reason=f"{len(added)} captured predictions have an actual; the policy's retrain_min_rows is "
                f"{order.min_rows} (send feedback: POST /api/models/{order.model}/feedback)",
            )
        version = await self._dataset_version(order, base, added)
        if isinstance(version, Outcome):
            return version
        job = await self.training.submit(
            JobRequest(
                dataset=lineage.dataset,
                version=version,
                estimator=lineage.estimator,
                params=lineage.params,
                model=order.model,
            )
        )
        details: dict[str, Any] = {
            "retrain_id": order.id,
            "check_id": order.check_id,
            "version": order.version,
            "dataset": lineage.dataset,
            "base_version": base.version,
            "dataset_version": version,
            "rows": base.row_count + len(added),
            "feedback_rows": len(added),
            "captured_read": len(window.rows),
            "job_id": job,
        }
        return Outcome(
            action=RETRAINED,
            reason=f"version {order.version}: {order.reason}; {lineage.dataset} v{version} is v{base.version} plus "
            f"{len(added)} captured predictions with an actual; training job {job}",
            details=details,
        )

    async def _dataset_version(self, order: RetrainOrder, base: Manifest, added: list[dict[str, Any]]) -> int | Outcome:
        """The new dataset version: the base version's rows, then the labeled captures, as parts
        of one upload marked with the order's origin."""
        origin = Origin(model=order.model, retrain_id=order.id, base_version=base.version, feedback_rows=len(added))
        data = await self.ingestion.rows(base.dataset, base.version)
        upload = await self.ingestion.start_upload(base.dataset, origin)
        # Decoding and encoding up to max_rows rows is CPU work: off the event loop.
        bodies = await asyncio.to_thread(lambda: list(self._bodies(data, added)))
        for number, body in enumerate(bodies, start=1):
            await self.ingestion.put_part(base.dataset, upload, number, body, "application/x-ndjson")
        committed = await self.ingestion.commit(base.dataset, upload)
        if not committed.unchanged:
            return committed.version
        latest = await self.ingestion.manifest(base.dataset, committed.version)
        if latest.origin is not None and latest.origin.retrain_id == order.id:
            return committed.version  # this order's own version, committed by an earlier run
        return Outcome(
            action=RETRAIN_SKIPPED,
            reason=f"the rows are those of {base.dataset} v{committed.version} already: nothing new to train on",
        )

    def _bodies(self, data: bytes, added: list[dict[str, Any]]) -> Iterator[bytes]:
        """The base rows (read a batch at a time from their Parquet file), then the added ones."""

        def records() -> Iterator[dict[str, Any]]:
            for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches(batch_size=10_000):
                yield from batch.to_pylist()
            yield from added

        return ndjson_parts(records(), self.limits.part_bytes)


def truths_of(live: LiveTracker) -> Callable[[str], Awaitable[dict[str, Truth]]]:
    """The actuals the live tracker holds for a model (read anew when stale): those of the last
    DAPRML_FEEDBACK_RETENTION_DAYS, at most DAPRML_LIVE_MAX_ROWS."""

    async def truths(model: str) -> dict[str, Truth]:
        async with live.rows_of(model) as held:
            return dict(held.truths.rows)

    return truths
