"""The Open Inference Protocol v2 (KServe's predict-api v2, REST): HTTP only, over the data
plane. At the app's root, not under /api, as the protocol's clients expect. Errors are
{"error": "..."}: 400 for a bad request or tensor, 404 for an unknown model or version.

An inference answer's `id` echoes the request's (a new one when it sent none); its
`parameters.prediction_ids` names each row's prediction, in row order."""

import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.common.contracts import ALIAS_NAME, MODEL_NAME, ModelCard
from services.common.deps import ProbeDep
from services.common.oip import ProtocolRoute
from services.inference.deps import LogDep, PlaneDep, RoutingKeyHeader, SettingsDep
from services.inference.domain import contract, tensors
from services.inference.domain.answers import (
    InferResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from services.inference.domain.columns import Columns, count
from services.inference.domain.errors import TooManyRecords
from services.inference.domain.tensors import PREDICT, InferRequest

SERVER = "daprml-inference"


# Clients such as tritonclient send the JSON body of infer without a Content-Type: read it anyway.
router = APIRouter(
    prefix="/v2", tags=["open inference protocol v2"], route_class=ProtocolRoute, strict_content_type=False
)

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
Version = Annotated[str, Path(pattern=ALIAS_NAME, description="a version number, or an alias such as champion")]


def _server_version() -> str:
    try:
        return version("daprml")
    except PackageNotFoundError:
        return "0"


@router.get("/health/live", responses={200: {"model": ServerLive}})
async def live() -> dict[str, bool]:
    return {"live": True}


NOT_READY = {"model": ServerReady, "description": 'not ready: {"ready": false} (its sidecar does not answer)'}


@router.get("/health/ready", responses={200: {"model": ServerReady}, 503: NOT_READY})
async def ready(probe: ProbeDep) -> JSONResponse:
    """Ready when the sidecar answers (models are loaded on first use)."""
    healthy = await probe.healthy()
    return JSONResponse({"ready": healthy}, status_code=200 if healthy else 503)


@router.get("", responses={200: {"model": ServerMetadata}})
async def server_metadata() -> dict[str, Any]:
    return {"name": SERVER, "version": _server_version(), "extensions": []}


async def _metadata(plane: PlaneDep, name: str, ref: str | None) -> dict[str, Any]:
    info = await plane.describe(name, ref)
    choice = plane.choice(info)
    parameters: dict[str, Any] = {"target": info.card.target, "runtime": choice.runtime}
    if choice.reason:
        parameters["not_compiled"] = choice.reason
    if info.onnx is not None:
        parameters["onnx_check"] = info.onnx.check.model_dump(mode="json", exclude_none=True)
    parameters["warnings"] = plane.warning_counts(name, info.version)
    return {
        "name": name,
        "versions": [str(info.version)],
        "platform": choice.runtime,
        "inputs": tensors.model_inputs(info.card),
        "outputs": tensors.model_outputs(info.card),
        "parameters": parameters,
    }


@router.get("/models/{name}", responses={200: {"model": ModelMetadata}})
async def model_metadata(name: Name, plane: PlaneDep) -> dict[str, Any]:
    """The champion's inputs (one per feature, each with its signature in `parameters`) and
    outputs; `platform` and `parameters.runtime` say what serves it (onnxruntime or sklearn, with
    `not_compiled` saying why not compiled), `parameters` also holds its target, training's ONNX
    check and how many records this replica warned of, by kind."""
    return await _metadata(plane, name, None)


@router.get("/models/{name}/versions/{version}", responses={200: {"model": ModelMetadata}})
async def version_metadata(name: Name, version: Version, plane: PlaneDep) -> dict[str, Any]:
    return await _metadata(plane, name, version)


async def _ready(plane: PlaneDep, name: str, ref: str | None) -> dict[str, Any]:
    loaded = await plane.ready(name, ref)
    return {"name": name, "version": str(loaded.version), "ready": True}


@router.get("/models/{name}/ready", responses={200: {"model": ModelReady}})
async def model_ready(name: Name, plane: PlaneDep) -> dict[str, Any]:
    """Ready means loaded: the model is loaded if it is not."""
    return await _ready(plane, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses={200: {"model": ModelReady}})
async def version_ready(name: Name, version: Version, plane: PlaneDep) -> dict[str, Any]:
    return await _ready(plane, name, version)


def _decoder(request: InferRequest, max_records: int) -> Callable[[ModelCard], Columns]:
    def decode(card: ModelCard) -> Columns:
        rows = tensors.decode(request.inputs, card)
        if count(rows) > max_records:
            raise TooManyRecords(f"{count(rows)} rows; one request takes at most {max_records}")
        return rows

    return decode


async def _infer(
    plane: PlaneDep,
    settings: SettingsDep,
    prediction_log: LogDep,
    name: str,
    ref: str | None,
    request: InferRequest,
    routing_key: str | None = None,
) -> Any:
    wanted = {o.name for o in request.outputs or []}
    strict = tensors.strict(request)
    started = time.perf_counter()
    out = await plane.infer(
        name,
        ref,
        _decoder(request, settings.max_records),
        probabilities=wanted != {PREDICT},
        names=lambda card: contract.input_names(tensors.named(request.inputs, card), card, strict),
        size=tensors.rows(request),
        routing_key=routing_key,
    )
    latency_ms = (time.perf_counter() - started) * 1000
    outputs = tensors.encode(request, out.card, out.predictions, out.probabilities, out.classes)
    request_id = request.id if request.id is not None else str(uuid.uuid4())
    prediction_log.record(out, request_id, latency_ms)
    # The protocol's answer has no field of its own for them: `id` is the request's, echoed.
    parameters: dict[str, Any] = {"runtime": out.runtime, "prediction_ids": out.prediction_ids}
    if out.warnings:
        parameters["warnings"] = [w.model_dump(mode="json", exclude_none=True) for w in out.warnings]
    return {
        "model_name": out.model,
        "model_version": str(out.version),
        "id": request_id,
        "parameters": parameters,
        "outputs": outputs,
    }


@router.post("/models/{name}/infer", responses={200: {"model": InferResponse}})
async def infer(
    name: Name,
    request: InferRequest,
    plane: PlaneDep,
    settings: SettingsDep,
    prediction_log: LogDep,
    routing_key: RoutingKeyHeader = None,
) -> Any:
    """Predictions of the champion for the input tensors; `parameters.prediction_ids` names each
    row's. The model's traffic table may send it to a canary (`model_version` says which served;
    the x-daprml-routing-key header keeps one caller on one version)."""
    return await _infer(plane, settings, prediction_log, name, None, request, routing_key)


@router.post("/models/{name}/versions/{version}/infer", responses={200: {"model": InferResponse}})
async def infer_version(
    name: Name, version: Version, request: InferRequest, plane: PlaneDep, settings: SettingsDep, prediction_log: LogDep
) -> Any:
    return await _infer(plane, settings, prediction_log, name, version, request)
