"""The CPU-bound steps of a job, run in worker processes: a model fitting in the service's own
process would stall its event loop, and with it its health checks and every other request.

The functions handed to the workers are top-level and take and return plain picklable values.
"""

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from services.training.domain.card import Lineage
from services.training.domain.evaluate import ClassificationMetrics, Metrics
from services.training.domain.schema import DatasetSchema
from services.training.domain.train import score_on_holdout, train_artifact
from services.training.jobs import JobSpec

T = TypeVar("T")


@dataclass(frozen=True)
class Fitted:
    artifact: bytes  # the skops file
    sha256: str
    card: dict[str, Any]  # as the registry's ModelCard takes it
    model_card: bytes  # the whole card as JSON (metrics, lineage, library versions), kept beside the file
    metrics: dict[str, Any]  # the domain's metrics, whole (confusion matrix included)
    fit_s: float


class Compute:
    """A pool of worker processes (spawned, not forked: the service's process holds gRPC
    threads, which a fork would copy in a broken state). workers=0 runs in a thread instead,
    for tests."""

    def __init__(self, workers: int):
        self._pool: Executor = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 0
            else ThreadPoolExecutor(1)
        )

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def fit(self, rows: bytes, spec: JobSpec) -> Fitted:
        return await self._run(fit, rows, spec.model_dump(mode="json"))

    async def score(self, spec: JobSpec, artifact: bytes, sha256: str, rows: bytes) -> dict[str, Any]:
        """Another model's metrics on the job's holdout (drawn again from the rows and the seed)."""
        return await self._run(score, artifact, sha256, rows, spec.schema_, spec.seed)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def fit(rows: bytes, job: dict[str, Any]) -> Fitted:
    spec = JobSpec.model_validate(job)
    schema = DatasetSchema.model_validate(spec.schema_)
    lineage = Lineage(
        dataset=spec.dataset,
        dataset_version=spec.version,
        schema_hash=spec.schema_hash,
        estimator=spec.estimator,
        params=spec.params,
        seed=spec.seed,
        job_id=spec.job_id,
    )
    result = train_artifact(rows, schema, lineage)
    card = result.card
    registry_card = {
        "task": str(card.task),
        "target": card.target,
        "features": [{"name": f.name, "type": str(f.type)} for f in card.features],
        "classes": card.classes or [],
        "training_rows": card.train_rows,
        "holdout_rows": card.metrics.rows,
        "seed": spec.seed,
    }
    return Fitted(
        result.artifact,
        card.sha256,
        registry_card,
        card.model_dump_json(indent=2).encode(),
        card.metrics.model_dump(mode="json"),
        card.fit_s,
    )


def score(artifact: bytes, sha256: str, rows: bytes, schema: dict[str, Any], seed: int) -> dict[str, Any]:
    checked = DatasetSchema.model_validate(schema)
    return score_on_holdout(artifact, sha256, rows, checked, seed).model_dump(mode="json")


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
