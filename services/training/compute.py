"""The CPU-bound steps of a job, run in worker processes (services/training/pool.py): a model
fitting in the service's own process would stall its event loop, and with it its health checks
and every other request.

The functions handed to the workers are top-level and take and return plain picklable values.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.contracts import DatasetSchema
from services.common.contracts import models as registry
from services.training.domain.artifact import sha256
from services.training.domain.evaluate import ClassificationMetrics, Metrics
from services.training.domain.jobs import JobSpec
from services.training.domain.train import THREADS, score_on_holdout, train_artifact
from services.training.pool import REMEMBERED_CANCELS, Canceled, Pool, out_of_time

# Native libraries size their thread pools (and the memory those reserve) at import: a worker
# fits with THREADS threads, so it asks for no more.
WORKER_ENV = {name: str(THREADS) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass(frozen=True)
class Fitted:
    artifact: bytes  # the skops file
    sha256: str
    card: dict[str, Any]  # the registry's ModelCard, as JSON
    model_card: bytes  # the whole card as JSON (metrics, lineage, library versions), kept beside the file
    metrics: dict[str, Any]  # the domain's metrics, whole (confusion matrix included)
    fit_s: float
    onnx: bytes | None  # the ONNX file, when the pipeline converted and passed the check
    onnx_sha256: str | None
    compiled: dict[str, Any]  # the registry's OnnxModel (its artifact None until stored), as JSON


class Compute:
    """The steps, each in a worker process of a pool of `workers` (see pool.py for what that
    buys: cancel, memory limit, a dead worker replaced). workers=0 runs them in a thread of the
    service instead, for tests: nothing there can be killed, so a canceled or late job stops
    only before its next step."""

    def __init__(self, workers: int, memory_mb: int = 0):
        self._pool = Pool(workers, memory_mb, preload=[__name__], env=WORKER_ENV) if workers > 0 else None
        self._canceled: OrderedDict[str, None] = OrderedDict()  # in a thread: only later steps stop

    async def _run(
        self, spec: JobSpec, fn: Callable[..., Any], *args: Any, started: Callable[[], Awaitable[None]] | None = None
    ) -> Any:
        if self._pool is not None:
            return await self._pool.run(spec.job_id, fn, *args, deadline=spec.deadline, started=started)
        if spec.job_id in self._canceled:
            raise Canceled(f"job {spec.job_id} was canceled")
        if spec.deadline is not None and datetime.now(UTC) >= spec.deadline:
            raise out_of_time(spec.job_id, spec.deadline)
        if started is not None:
            await started()
        return await asyncio.to_thread(fn, *args)

    async def fit(self, rows: bytes, spec: JobSpec, started: Callable[[], Awaitable[None]] | None = None) -> Fitted:
        """`started` is awaited once a worker has the job (before that, it is queued)."""
        fitted: Fitted = await self._run(spec, fit, rows, spec.model_dump(mode="json"), started=started)
        return fitted

    async def score(
        self, spec: JobSpec, artifact: bytes, sha256: str, rows: bytes, missing_category: str | None
    ) -> dict[str, Any]:
        """Another model's metrics on the job's holdout (drawn again from the rows and the seed),
        framed as that model's card says it reads them (`missing_category`)."""
        scored: dict[str, Any] = await self._run(
            spec, score, artifact, sha256, rows, spec.schema_, spec.seed, missing_category
        )
        return scored

    def cancel(self, job_id: str) -> bool:
        """Stops the job's step if this process runs it (its worker is killed), and refuses its
        later steps. Says whether a step was stopped."""
        if self._pool is not None:
            return self._pool.cancel(job_id)
        self._canceled[job_id] = None
        while len(self._canceled) > REMEMBERED_CANCELS:
            self._canceled.popitem(last=False)
        return False

    def problem(self) -> str | None:
        """None while jobs can be computed; else why not, in a sentence (for /healthz)."""
        return self._pool.problem() if self._pool is not None else None

    async def refill(self) -> None:
        """Starts the worker processes that are missing (at start-up, and after one died)."""
        if self._pool is not None:
            await self._pool.refill()

    def pids(self) -> list[int]:
        return self._pool.pids() if self._pool is not None else []

    def queued(self) -> int:
        """Steps waiting for a fit worker (0 when steps run in threads: tests)."""
        return self._pool.queued() if self._pool is not None else 0

    def running(self) -> int:
        """Steps a fit worker is running now."""
        return self._pool.running() if self._pool is not None else 0

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def fit(rows: bytes, job: dict[str, Any]) -> Fitted:
    spec = JobSpec.model_validate(job)
    schema = DatasetSchema.model_validate(spec.schema_)
    result = train_artifact(rows, schema, spec.lineage(), spec.bounds)
    card = result.card
    registry_card = registry.ModelCard(
        task=card.task,
        target=card.target,
        features=card.features,
        classes=card.classes or [],
        training_rows=card.train_rows,
        holdout_rows=card.metrics.rows,
        seed=spec.seed,
        missing_category=card.missing_category,
        reference=result.reference,
    )
    assert card.onnx is not None  # train_artifact always compiles
    return Fitted(
        result.artifact,
        card.sha256,
        registry_card.model_dump(mode="json"),
        card.model_dump_json(indent=2).encode(),
        card.metrics.model_dump(mode="json"),
        card.fit_s,
        result.onnx,
        sha256(result.onnx) if result.onnx is not None else None,
        card.onnx.model_dump(mode="json"),
    )


def score(
    artifact: bytes, sha256: str, rows: bytes, schema: dict[str, Any], seed: int, missing_category: str | None
) -> dict[str, Any]:
    checked = DatasetSchema.model_validate(schema)
    return score_on_holdout(artifact, sha256, rows, checked, seed, missing_category).model_dump(mode="json")


def numbers(metrics: Metrics | dict[str, Any]) -> dict[str, float]:
    """The metrics that are numbers, as the registry compares them (the confusion matrix and
    metrics that could not be computed stay out)."""
    values = metrics.model_dump() if not isinstance(metrics, dict) else metrics
    return {
        k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool) and k != "rows"
    }


def confusion(metrics: dict[str, Any]) -> dict[str, Any] | None:
    if "confusion_matrix" not in metrics:
        return None
    checked = ClassificationMetrics.model_validate(metrics)
    return {"labels": checked.labels, "counts": checked.confusion_matrix}
