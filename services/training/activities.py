"""The steps of a training job, each an activity of its workflow (see workflow.py).

Each gets and returns JSON-ready dicts (the engine keeps them in the job's history), so the big
things travel by key: the rows come from ingestion, the fitted model and its card go to the
blob store under the job's own keys, and only keys, hashes and metrics go back to the workflow.
Each is safe to run again: the engine runs activities at least once.

The steps that compute (fit, evaluate) stop when the job is canceled: Dapr ends a terminated
workflow but not the activity it is running, so each of these asks the engine, before it starts
and every `cancel_check_s` while its worker computes, whether the workflow still runs, and has
the worker killed when it does not. (A cancel through this process kills the worker at once;
this catches the others: through another replica, by hand, or while this process restarted.)
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from services.common import models_api as api
from services.common.errors import ClientError
from services.common.ports import (
    ActivityFunction,
    BlobStore,
    NotFound,
    ServiceInvoker,
    SidecarUnavailable,
    StateStore,
    Workflows,
)
from services.common.state import Documents
from services.training.compute import Compute, confusion, numbers
from services.training.jobs import FitStarted, JobSpec, fit_key
from services.training.pool import Canceled, WorkerDied
from services.training.settings import Settings

log = logging.getLogger(__name__)


class Champion(BaseModel):
    version: int
    artifact: api.Artifact


class Activities:
    def __init__(
        self,
        blobs: BlobStore,
        invoker: ServiceInvoker,
        compute: Compute,
        settings: Settings,
        workflows: Workflows,
        state: StateStore,
    ):
        self.blobs, self.invoker, self.compute, self.settings = blobs, invoker, compute, settings
        self.workflows = workflows
        self.fits = Documents(state, FitStarted)

    def table(self) -> dict[str, ActivityFunction]:
        """Activity name -> the function the workflow calls by that name."""
        return {
            "load": self.load,
            "fit": self.fit,
            "evaluate": self.evaluate,
            "register": self.register,
            "promote": self.promote,
        }

    async def load(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The model's current champion, if it has one: the new version is compared with it on
        the new version's holdout."""
        spec = JobSpec.model_validate(job)
        model = await self._get(self.settings.registry_app_id, f"api/models/{spec.model}", missing_ok=True)
        version = (model or {}).get("aliases", {}).get("champion")
        if version is None:
            return None
        found = await self._get(self.settings.registry_app_id, f"api/models/{spec.model}/versions/{version}")
        return Champion(version=version, artifact=api.Artifact.model_validate(found["artifact"])).model_dump()

    async def fit(self, job: dict[str, Any]) -> dict[str, Any]:
        """Fits the model on the training share of the rows and scores it on the holdout (in a
        worker process); stores the model and its card under the job's keys."""
        spec = JobSpec.model_validate(job)
        await self._not_canceled(spec)
        rows = await self._rows(spec)

        async def started() -> None:  # the job leaves the queue: its stage is `fitting` now
            await self.fits.put(fit_key(spec.job_id), FitStarted(at=datetime.now(UTC)))

        try:
            async with self._watching(spec):
                fitted = await self.compute.fit(rows, spec, started)
        except WorkerDied:
            await self.fits.delete(fit_key(spec.job_id))  # queued again, for the retry
            raise
        artifact = api.Artifact(key=artifact_key(spec), sha256=fitted.sha256)
        await self.blobs.put(artifact.key, fitted.artifact)
        await self.blobs.put(card_key(spec), fitted.model_card)
        return {
            "artifact": artifact.model_dump(),
            "card": fitted.card,
            "metrics": fitted.metrics,
            "fit_s": fitted.fit_s,
        }

    async def evaluate(self, step: dict[str, Any]) -> dict[str, Any]:
        """The new model's metrics as the registry takes them, and the champion's on the same
        holdout (its artifact checked against its sha256 before it is loaded)."""
        spec, fitted = JobSpec.model_validate(step["job"]), step["fitted"]
        return {
            "metrics": numbers(fitted["metrics"]),
            "confusion_matrix": confusion(fitted["metrics"]),
            "champion_metrics": await self._champion_metrics(spec, step["champion"]),
        }

    async def _champion_metrics(self, spec: JobSpec, champion: dict[str, Any] | None) -> dict[str, float] | None:
        if not champion:
            return None
        found = Champion.model_validate(champion)
        await self._not_canceled(spec)
        # The holdout is drawn again from the rows and the seed: the same rows the new model was
        # scored on, without storing them (a stored holdout capped the dataset's size).
        model, rows = await self.blobs.get(found.artifact.key), await self._rows(spec)
        async with self._watching(spec):
            return numbers(await self.compute.score(spec, model, found.artifact.sha256, rows))

    # stopping a canceled job's computation

    async def _not_canceled(self, spec: JobSpec) -> None:
        terminated = False
        with suppress(SidecarUnavailable):  # unknown: the watcher asks again while it computes
            terminated = await self._terminated(spec.job_id)
        if terminated:
            self.compute.cancel(spec.job_id)
            raise Canceled(f"job {spec.job_id} was canceled")

    async def _terminated(self, job_id: str) -> bool:
        run = await self.workflows.run(job_id)
        return run is not None and run.status == "TERMINATED"

    @asynccontextmanager
    async def _watching(self, spec: JobSpec) -> AsyncIterator[None]:
        """While the body computes, kills the job's worker once its workflow was terminated."""

        async def watch() -> None:
            while True:
                await asyncio.sleep(self.settings.cancel_check_s)
                try:
                    if await self._terminated(spec.job_id):
                        self.compute.cancel(spec.job_id)
                        return
                except Exception as exc:  # the engine unreachable, say: asked again at the next check
                    log.debug("job %s: could not ask whether it was canceled: %s", spec.job_id, exc)

        watcher = asyncio.ensure_future(watch())
        try:
            yield
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher

    async def register(self, step: dict[str, Any]) -> dict[str, Any]:
        spec = JobSpec.model_validate(step["job"])
        evaluated, fitted = step["evaluated"], step["fitted"]
        body = api.RegisterVersion(
            lineage=api.Lineage(
                dataset=spec.dataset,
                dataset_version=spec.version,
                schema_hash=spec.schema_hash,
                estimator=spec.estimator,
                params=spec.params,
                job_id=spec.job_id,
            ),
            metrics=evaluated["metrics"],
            confusion_matrix=evaluated.get("confusion_matrix"),
            artifact=api.Artifact.model_validate(fitted["artifact"]),
            card=api.ModelCard.model_validate(fitted["card"]),
        )
        reply = await self._post(self.settings.registry_app_id, f"internal/models/{spec.model}/versions", body)
        return api.Registered.model_validate(reply).model_dump()

    async def promote(self, step: dict[str, Any]) -> dict[str, Any]:
        """Asks the registry to promote the new version. When the champion moved since it was
        scored (the registry answers 409), the new champion is scored and the question asked
        again."""
        spec = JobSpec.model_validate(step["job"])
        champion, champion_metrics = step["champion"], step["evaluated"].get("champion_metrics")
        method = f"internal/models/{spec.model}/versions/{step['registered']['version']}/promotion"
        for _ in range(self.settings.promotion_attempts):
            body = api.PromotionRequest(
                candidate=step["evaluated"]["metrics"],
                champion_version=champion["version"] if champion else None,
                champion=champion_metrics if champion else None,
            )
            try:
                reply = await self._post(self.settings.registry_app_id, method, body)
            except ChampionMoved:
                champion = await self.load(step["job"])
                champion_metrics = await self._champion_metrics(spec, champion)
                continue
            return api.Promotion.model_validate(reply).model_dump(mode="json")
        raise Refused(
            f"the champion of model {spec.model!r} kept moving while version "
            f"{step['registered']['version']} was compared with it; promote it by hand"
        )

    # talking to the other services

    async def _rows(self, spec: JobSpec) -> bytes:
        reply = await self.invoker.call(
            self.settings.ingestion_app_id, f"api/datasets/{spec.dataset}/versions/{spec.version}/data?format=parquet"
        )
        _check(reply.status, reply.body, f"the rows of dataset {spec.dataset!r} version {spec.version}")
        return reply.body

    async def _get(self, app_id: str, method: str, missing_ok: bool = False) -> Any:
        reply = await self.invoker.call(app_id, method)
        if reply.status == 404 and missing_ok:
            return None
        _check(reply.status, reply.body, method)
        return json.loads(reply.body)

    async def _post(self, app_id: str, method: str, body: BaseModel) -> Any:
        reply = await self.invoker.call(
            app_id, method, "POST", body.model_dump_json(by_alias=True).encode(), {"content-type": "application/json"}
        )
        _check(reply.status, reply.body, method)
        return json.loads(reply.body)


class Refused(ClientError):
    """Another service refused a step of the job: the reason is its own words."""

    status = 422


class ChampionMoved(Refused):
    """The registry's champion is no longer the one the new version was compared with."""

    status = 409


def _check(status: int, body: bytes, what: str) -> None:
    if status < 300:
        return
    try:
        detail = json.loads(body).get("detail", body[:300])
    except (ValueError, AttributeError):
        detail = body[:300]
    if status == 404:
        raise NotFound(f"{what}: not found ({detail})")
    if status == 409:
        raise ChampionMoved(f"{what}: {detail}")
    if 400 <= status < 500:
        raise Refused(f"{what}: refused with {status}: {detail}")
    raise SidecarUnavailable(f"{what}: HTTP {status}: {detail}", "a service the job needs is unavailable")


def artifact_key(spec: JobSpec) -> str:
    return f"models/{spec.model}/{spec.job_id}.skops"


def card_key(spec: JobSpec) -> str:
    """The model card, beside the model file."""
    return f"models/{spec.model}/{spec.job_id}.card.json"
