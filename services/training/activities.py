"""The steps of a training job, each an activity of its workflow (see workflow.py).

Each gets and returns JSON-ready dicts (the engine keeps them in the job's history), so the big
things travel by key: the rows come from ingestion, the fitted model and its card go to the
blob store under the job's own keys, and only keys, hashes and metrics go back to the workflow.
Each is safe to run again: the engine runs activities at least once.
"""

import json
from typing import Any

from pydantic import BaseModel

from services.common import models_api as api
from services.common.errors import ClientError
from services.common.ports import ActivityFunction, BlobStore, NotFound, ServiceInvoker, SidecarUnavailable
from services.training.compute import Compute, confusion, numbers
from services.training.jobs import JobSpec
from services.training.settings import Settings


class Champion(BaseModel):
    version: int
    artifact: api.Artifact


class Activities:
    def __init__(self, blobs: BlobStore, invoker: ServiceInvoker, compute: Compute, settings: Settings):
        self.blobs, self.invoker, self.compute, self.settings = blobs, invoker, compute, settings

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
        rows = await self._rows(spec)
        fitted = await self.compute.fit(rows, spec)
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
        # The holdout is drawn again from the rows and the seed: the same rows the new model was
        # scored on, without storing them (a stored holdout capped the dataset's size).
        model, rows = await self.blobs.get(found.artifact.key), await self._rows(spec)
        return numbers(await self.compute.score(spec, model, found.artifact.sha256, rows))

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
