"""What the training bench compares a job with, besides its own clock: the bare fit in this
process (fit_and_evaluate on the same rows, schema, estimator, parameters and seed), and the fit
activity's I/O done again through the training service's own sidecar with the project's
adapters (the rows from ingestion, the hand-off to a worker process, the blob writes)."""

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from scripts.stack import Stack
from services.common.contracts import DatasetSchema
from services.common.dapr_adapters import DaprBlobStore, DaprInvoker, Sidecar
from services.common.settings import ServiceSettings
from services.training.domain.artifact import dumps
from services.training.domain.estimators import validate
from services.training.domain.train import fit_and_evaluate
from services.training.settings import Settings


@dataclass
class Steps:
    """The fit activity's I/O, done again by this process through the training service's own
    sidecar with the project's adapters, once the job is done: what the activity adds to the
    bare fit besides computing."""

    rows: bytes = b""
    rows_s: float = 0.0  # the rows from ingestion (service invocation, Parquet streamed)
    handoff_s: float = 0.0  # the rows to a worker process and the artifact back
    blobs_s: float = 0.0  # the skops file and its card written through the blob binding
    blob_mb: list[float] = field(default_factory=list)


def sized(data: bytes, size: int) -> bytes:
    """Run in the worker: `size` bytes back when given rows, as the fitted model would come back."""
    return bytes(size) if data else b""


async def replay(stack: Stack, name: str, version: int, keys: list[str], pool: ProcessPoolExecutor) -> Steps:
    training = stack.app("training")
    settings = ServiceSettings(
        app_id=training.app_id,
        dapr_http_port=training.http_port,
        dapr_grpc_port=training.grpc_port,
        dapr_api_token=stack.credentials.dapr_token,
    )
    sidecar = Sidecar(settings)
    steps = Steps()
    try:
        t0 = time.perf_counter()
        reply = await DaprInvoker(sidecar).call(
            stack.app("ingestion").app_id, f"api/datasets/{name}/versions/{version}/data?format=parquet"
        )
        steps.rows_s = time.perf_counter() - t0
        if reply.status != 200:
            raise RuntimeError(f"the rows through the training sidecar: HTTP {reply.status}: {reply.body[:300]!r}")
        steps.rows = reply.body
        blobs = DaprBlobStore(sidecar, settings.blobstore)
        stored = [await blobs.get(key) for key in keys]
        steps.blob_mb = [len(b) / 1e6 for b in stored]
        t0 = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(pool, sized, steps.rows, sum(map(len, stored)))
        steps.handoff_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for n, data in enumerate(stored):
            await blobs.put(f"bench/{name}/{n}", data)
        steps.blobs_s = time.perf_counter() - t0
    finally:
        await sidecar.close()
    return steps


@dataclass
class Reference:
    total_s: float  # fit_and_evaluate: Parquet -> frame, split, fit, evaluate
    fit_s: float
    eval_s: float
    serialize_s: float  # what the worker adds: the skops file
    metrics: dict[str, Any]


def reference(rows: bytes, schema: dict[str, Any], estimator: str, params: dict[str, Any]) -> Reference:
    checked = DatasetSchema.model_validate(schema)
    params = validate(checked.task, estimator, params)
    t0 = time.perf_counter()
    trained = fit_and_evaluate(rows, checked, estimator, params, Settings().seed)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    dumps(trained.pipeline)
    serialize = time.perf_counter() - t0
    return Reference(total, trained.fit_s, trained.eval_s, serialize, trained.metrics.model_dump())
