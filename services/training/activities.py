"""The steps of a training job, each an activity of its workflow (see workflow.py).

Each gets and returns JSON-ready dicts (the engine keeps them in the job's history), so the big
things travel by key: the rows come from ingestion, the fitted model, its ONNX file and its
card go to the blob store under the job's own keys, and only keys, hashes and metrics go back
to the workflow.
Each is safe to run again: the engine runs activities at least once.

The steps that compute (fit, evaluate) stop when the job is canceled: Dapr ends a terminated
workflow but not the activity it is running, so each of these asks the engine, before it starts
and every `cancel_check_s` while its worker computes, whether the workflow still runs, and has
the worker killed when it does not. (A cancel through this process kills the worker at once;
this catches the others: through another replica, by hand, or while this process restarted.)
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from services.common import tracing
from services.common.clients import Absent, CallError, Conflict, Failed
from services.common.contracts import models as api
from services.common.errors import ClientError
from services.common.ports import (
    ActivityFunction,
    BlobStore,
    BlobTooLarge,
    NotFound,
    SidecarUnavailable,
    StateStore,
    Workflows,
)
from services.common.state import Documents
from services.training.clients import Clients
from services.training.compute import Compute, Fitted, confusion, numbers
from services.training.domain.jobs import FitStarted, JobSpec
from services.training.pool import Canceled, WorkerDied
from services.training.service import fit_key
from services.training.settings import Settings

log = logging.getLogger(__name__)


class Champion(BaseModel):
    version: int
    artifact: api.Artifact
    missing_category: str | None = None
    """As its card says: None for a version trained before models were compiled (and for a
    champion loaded by a job that started before), whose frames differ (pipeline.framing_of)."""


class Activities:
    def __init__(
        self,
        blobs: BlobStore,
        clients: Clients,
        compute: Compute,
        settings: Settings,
        workflows: Workflows,
        state: StateStore,
    ):
        self.blobs, self.compute, self.settings = blobs, compute, settings
        self.registry, self.ingestion = clients.registry, clients.ingestion
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
        with calling():
            try:
                model = await self.registry.model(spec.model)
            except Absent:
                return None  # no version registered yet
            version = model.aliases.get("champion")
            if version is None:
                return None
            found = await self.registry.version(spec.model, version)
        return Champion(
            version=version, artifact=found.artifact, missing_category=found.card.missing_category
        ).model_dump()

    async def fit(self, job: dict[str, Any]) -> dict[str, Any]:
        """Fits the model on the training share of the rows, scores it on the holdout and
        compiles it (in a worker process); stores the model, its ONNX file (when it passed the
        check) and its card under the job's keys."""
        spec = JobSpec.model_validate(job)
        await self._not_canceled(spec)
        rows = await self._rows(spec)

        async def started() -> None:  # the job leaves the queue: its stage is `fitting` now
            await self.fits.put(fit_key(spec.job_id), FitStarted(at=datetime.now(UTC)))

        try:
            async with self._watching(spec):
                # Inside the SDK's `activity: fit` span: the worker's part (queue, fit, compile).
                about = {"dataset": spec.dataset, "version": spec.version, "estimator": spec.estimator}
                with tracing.span("fit", about):
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
            "onnx": (await self._store_onnx(spec, fitted)).model_dump(mode="json"),
        }

    async def _store_onnx(self, spec: JobSpec, fitted: Fitted) -> api.OnnxModel:
        """The compiled model as the version records it: its file stored beside the skops file
        when it passed the check, or the check's reason why there is none."""
        compiled = api.OnnxModel.model_validate(fitted.compiled)
        if fitted.onnx is None or fitted.onnx_sha256 is None:
            return compiled
        key = onnx_key(spec)
        try:
            await self.blobs.put(key, fitted.onnx)
        except BlobTooLarge as e:  # a store that takes less than compiled.py allows for: skops only
            check = compiled.check.model_copy(
                update={"passed": False, "reason": f"{e}; the version is served by scikit-learn from its skops file"}
            )
            return compiled.model_copy(update={"check": check})
        return compiled.model_copy(update={"artifact": api.Artifact(key=key, sha256=fitted.onnx_sha256)})

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
            scored = await self.compute.score(spec, model, found.artifact.sha256, rows, found.missing_category)
            return numbers(scored)

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
                    log.debug("job %s: could not ask whether it was canceled: %s", spec.job_id, exc, exc_info=True)

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
            # The registry keeps the seed in the card, not in the lineage.
            lineage=api.Lineage.model_validate(spec.lineage().model_dump(exclude={"seed"})),
            metrics=evaluated["metrics"],
            confusion_matrix=evaluated.get("confusion_matrix"),
            artifact=api.Artifact.model_validate(fitted["artifact"]),
            card=api.ModelCard.model_validate(fitted["card"]),
            # None for a job fitted before models were compiled (its history has no "onnx").
            onnx=api.OnnxModel.model_validate(fitted["onnx"]) if fitted.get("onnx") else None,
        )
        with calling():
            registered = await self.registry.register(spec.model, body)
        return registered.model_dump()

    async def promote(self, step: dict[str, Any]) -> dict[str, Any]:
        """Asks the registry to promote the new version. When the champion moved since it was
        scored (the registry answers 409), the new champion is scored and the question asked
        again."""
        spec = JobSpec.model_validate(step["job"])
        champion, champion_metrics = step["champion"], step["evaluated"].get("champion_metrics")
        version = step["registered"]["version"]
        for _ in range(self.settings.promotion_attempts):
            body = api.PromotionRequest(
                candidate=step["evaluated"]["metrics"],
                champion_version=champion["version"] if champion else None,
                champion=champion_metrics if champion else None,
            )
            with calling():
                try:
                    promotion = await self.registry.promote(spec.model, version, body)
                except Conflict:  # the champion moved since it was scored
                    champion = await self.load(step["job"])
                    champion_metrics = await self._champion_metrics(spec, champion)
                    continue
            return promotion.model_dump(mode="json")
        raise Refused(
            f"the champion of model {spec.model!r} kept moving while version "
            f"{step['registered']['version']} was compared with it; promote it by hand"
        )

    async def _rows(self, spec: JobSpec) -> bytes:
        with calling():
            return await self.ingestion.rows(spec.dataset, spec.version)


class Refused(ClientError):
    """Another service refused a step of the job: the reason is its own words."""

    status = 422


@contextmanager
def calling() -> Iterator[None]:
    """What another service's answer means for a step: a refusal fails the job (ClientError: the
    engine does not retry it), a failure of the callee is retried as an unavailable service."""
    try:
        yield
    except Absent as e:
        raise NotFound(str(e)) from None
    except Failed as e:
        raise SidecarUnavailable(str(e), "a service the job needs is unavailable") from None
    except CallError as e:  # refused, a conflict other than the promotion's, an unreadable answer
        raise Refused(str(e)) from None


def artifact_key(spec: JobSpec) -> str:
    return f"models/{spec.model}/{spec.job_id}.skops"


def onnx_key(spec: JobSpec) -> str:
    """The compiled model, beside the skops file."""
    return f"models/{spec.model}/{spec.job_id}.onnx"


def card_key(spec: JobSpec) -> str:
    """The model card, beside the model file."""
    return f"models/{spec.model}/{spec.job_id}.card.json"
