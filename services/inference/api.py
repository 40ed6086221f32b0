"""The JSON predict API: HTTP only, over the data plane.

POST /api/models/{name}/predict  {"records": [{feature: value}], "version"?: n, "alias"?: "champion", "strict"?: true}
  -> {"model", "version", "runtime", "prediction_ids": [...], "predictions": [...], "probabilities"?: [{class: p}],
      "warnings"?: [...]}
  A field the model does not know is a 422 unless "strict" is false (domain/contract.py).
  A sampled share of calls goes to the prediction log, under the request's id (X-Request-Id).
GET /internal/stats  the prediction log's counters (for operators; the gateway does not route it)
GET /internal/warnings  the model contract's warnings counted per model version and kind (the same)
"""

import time
from typing import Annotated, Any, Self

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

from services.common import middleware
from services.common.contracts import ALIAS_NAME, MODEL_NAME
from services.common.contracts.models import MAX_ROUTING_KEY, ROUTING_KEY
from services.inference.deps import LogDep, PlaneDep, RoutingKeyHeader, SettingsDep
from services.inference.domain import contract, records
from services.inference.domain.contract import ContractWarning
from services.inference.domain.errors import TooManyRecords
from services.inference.domain.tensors import plain

router = APIRouter(prefix="/api/models", tags=["inference"])
stats = APIRouter(prefix="/internal", tags=["operations"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]


class PredictRequest(BaseModel):
    records: list[dict[str, Any]] = Field(min_length=1, description="one object per row: feature name -> value")
    version: StrictInt | None = Field(None, ge=1, description="a version number (default: the champion)")
    alias: str | None = Field(None, pattern=ALIAS_NAME, description="an alias such as champion")
    strict: StrictBool = Field(
        True,
        description="refuse (422) a field the model does not know (its target excepted); "
        "false: ignore it and list it in `warnings`",
    )
    routing_key: str | None = Field(
        None,
        max_length=MAX_ROUTING_KEY,
        pattern=ROUTING_KEY,
        description="the caller's name for a sticky canary split (as the x-daprml-routing-key header, which it "
        "overrides): the same key is served by the same version while the model's traffic table stays",
    )

    @model_validator(mode="after")
    def _one_ref(self) -> Self:
        if self.version is not None and self.alias is not None:
            raise ValueError("give a version or an alias, not both")
        return self

    @property
    def ref(self) -> str | None:
        return str(self.version) if self.version is not None else self.alias


class Prediction(BaseModel):
    model: str
    version: int
    runtime: str | None = Field(
        None, description="what predicted: onnxruntime (the compiled model) or sklearn (the skops pipeline)"
    )
    prediction_ids: list[str] = Field(
        description="one per record, in record order: name a prediction by it when sending its ground truth"
    )
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None
    warnings: list[ContractWarning] | None = Field(
        None, description="fields ignored, features missing, categories unseen or numbers far outside training's"
    )


@router.post("/{name}/predict", response_model=Prediction, response_model_exclude_none=True)
async def predict(
    name: Name,
    request: PredictRequest,
    plane: PlaneDep,
    settings: SettingsDep,
    prediction_log: LogDep,
    routing_key: RoutingKeyHeader = None,
) -> Prediction:
    """Predictions (and class probabilities, for classifiers) of a model version for the records."""
    if len(request.records) > settings.max_records:
        raise TooManyRecords(f"{len(request.records)} records; one request takes at most {settings.max_records}")
    started = time.perf_counter()
    out = await plane.infer(
        name,
        request.ref,
        lambda card: records.columns(request.records, card.features),
        names=lambda card: contract.record_fields(request.records, card, request.strict),
        size=len(request.records),
        routing_key=request.routing_key or routing_key,
    )
    latency_ms = (time.perf_counter() - started) * 1000
    # The request's id as the middleware made it (the caller's X-Request-Id when sane): the one
    # on the answer and in the logs.
    prediction_log.record(out, middleware.request_id.get(), latency_ms)
    probabilities = None
    if out.probabilities is not None and out.classes is not None:
        keys = [str(c) for c in out.classes]
        probabilities = [dict(zip(keys, map(float, row), strict=True)) for row in out.probabilities.tolist()]
    return Prediction(
        model=out.model,
        version=out.version,
        runtime=out.runtime,
        prediction_ids=out.prediction_ids,
        predictions=plain(out.predictions),
        probabilities=probabilities,
        warnings=out.warnings or None,
    )


@stats.get("/stats")
async def counters(prediction_log: LogDep) -> dict[str, dict[str, int]]:
    """How many prediction calls the prediction log sampled, holds (and their records), published,
    dropped (buffer full) and failed to publish, and how many records of sampled calls it did not
    capture (past the per-call bound), since the service started."""
    return {"prediction_log": prediction_log.counters}


@stats.get("/warnings")
async def warnings(plane: PlaneDep) -> dict[str, dict[str, int]]:
    """How many records the model contract warned of since the service started, per model
    version ("name/version") and kind (unknown_field, missing, unseen_category, out_of_range)."""
    return plane.all_warning_counts
