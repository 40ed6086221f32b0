"""The registry's HTTP routes: translate HTTP to service calls and back, nothing more.

`public` is what the gateway forwards; `internal` is called by training through Dapr service
invocation only (services/common/contracts/models.py is its contract)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from services.common.actor import ActorDep
from services.common.contracts.models import (
    MODEL_NAME,
    Promotion,
    PromotionRequest,
    Registered,
    RegisterVersion,
    Traffic,
)
from services.registry.deps import ServiceDep
from services.registry.domain.history import HistoryEntry, ModelHistory, Note
from services.registry.domain.model import PromotionPolicy
from services.registry.domain.views import AliasMoved, AliasTarget, ModelInfo, ModelList, ModelVersion, TrafficView

public = APIRouter(prefix="/api/models", tags=["models"])
internal = APIRouter(prefix="/internal/models", tags=["internal"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
# Aliases are checked by the service, whose refusal says what a valid one looks like.
Alias = Annotated[str, Path(max_length=200, description="lower-case letters, digits, '-' and '_'")]
Ref = Annotated[str, Path(max_length=200, description="a version number, latest, or an alias such as champion")]
Number = Annotated[int, Path(ge=1, description="a version number")]
Why = Annotated[str, Query(max_length=500, description="why, for the model's history (GET .../history)")]
SKOPS = "application/octet-stream"
ONNX = "application/octet-stream"  # no media type is registered for ONNX files


@public.get("", response_model=ModelList)
async def list_models(
    service: ServiceDep, offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1)] = 100
) -> ModelList:
    """The models in order of name, a page at a time."""
    return await service.models(offset, limit)


@public.get("/{name}", response_model=ModelInfo)
async def get_model(name: Name, service: ServiceDep) -> ModelInfo:
    """The model's versions, aliases, promotion policy and its latest alias moves (the whole
    history: GET .../history)."""
    return await service.info(name)


@public.get("/{name}/history", response_model=ModelHistory)
async def get_history(
    name: Name,
    service: ServiceDep,
    before: Annotated[int | None, Query(ge=1, description="only entries older than this seq (next_before)")] = None,
    limit: Annotated[int, Query(ge=1, description="entries in this page")] = 50,
) -> ModelHistory:
    """What was done to the model (alias moves, policy changes, monitoring actions), by whom,
    why and when, newest first, a page at a time."""
    return await service.history(name, before, limit)


@public.get("/{name}/versions/{version}", response_model=ModelVersion)
async def get_version(name: Name, version: Ref, service: ServiceDep) -> ModelVersion:
    """Lineage, metrics, artifact, model card and compiled model (onnx) of one version."""
    return await service.version(name, version)


@public.get(
    "/{name}/versions/{version}/artifact",
    response_model=None,
    response_class=Response,
    responses={200: {"content": {SKOPS: {}}, "description": "the skops file, checked against its sha256"}},
)
async def get_artifact(name: Name, version: Ref, service: ServiceDep) -> Response:
    found, data = await service.artifact(name, version)
    filename = f"{name}-v{found.version}.skops"
    return Response(
        data,
        media_type=SKOPS,
        headers={"content-disposition": f'attachment; filename="{filename}"', "x-sha256": found.artifact.sha256},
    )


@public.get(
    "/{name}/versions/{version}/onnx",
    response_model=None,
    response_class=Response,
    responses={
        200: {"content": {ONNX: {}}, "description": "the ONNX file, checked against its sha256"},
        404: {"description": "the version has no ONNX file: the answer says why (the check's reason)"},
    },
)
async def get_onnx(name: Name, version: Ref, service: ServiceDep) -> Response:
    """The version's compiled model: the ONNX file training checked against its scikit-learn
    pipeline."""
    found, data = await service.onnx(name, version)
    assert found.onnx is not None and found.onnx.artifact is not None  # service.onnx refuses a version without
    return Response(
        data,
        media_type=ONNX,
        headers={
            "content-disposition": f'attachment; filename="{name}-v{found.version}.onnx"',
            "x-sha256": found.onnx.artifact.sha256,
        },
    )


@public.put("/{name}/aliases/{alias}", response_model=AliasMoved)
async def set_alias(
    name: Name, alias: Alias, target: AliasTarget, service: ServiceDep, actor: ActorDep, reason: Why = ""
) -> AliasMoved:
    """Points the alias at a version (champion is the one served by default)."""
    return await service.set_alias(name, alias, target.version, actor, reason)


@public.delete("/{name}/aliases/{alias}", status_code=204, response_model=None)
async def delete_alias(name: Name, alias: Alias, service: ServiceDep, actor: ActorDep, reason: Why = "") -> None:
    await service.delete_alias(name, alias, actor, reason)


@public.put("/{name}/policy", response_model=PromotionPolicy)
async def set_policy(
    name: Name, policy: PromotionPolicy, service: ServiceDep, actor: ActorDep, reason: Why = ""
) -> PromotionPolicy:
    """How new versions are promoted: manual (the default: a person moves the champion; a
    model's first version still becomes champion while `first_champion` is true) or auto (a new
    version that beats the champion on the primary metric replaces it: then new data sent with
    an ingest key can change what serves). Either way a version trained on rows labeled through
    feedback (a monitoring retrain) becomes challenger unless `trained_on_feedback` is as_any."""
    return await service.set_policy(name, policy, actor, reason)


@public.get("/{name}/traffic", response_model=TrafficView)
async def get_traffic(name: Name, service: ServiceDep) -> TrafficView:
    """How the champion's requests are served (canary versions and their percents, the
    champion's own, shadows), who changed it last and when."""
    return await service.traffic(name)


@public.put(
    "/{name}/traffic",
    response_model=TrafficView,
    responses={
        409: {"description": "the model has no champion, whose requests a table splits"},
        422: {"description": "a version named does not exist, or is the champion"},
    },
)
async def set_traffic(
    name: Name, traffic: Traffic, service: ServiceDep, actor: ActorDep, reason: Why = ""
) -> TrafficView:
    """Sets the traffic table: canary versions serve their percent of the requests for the
    champion (sticky by the x-daprml-routing-key header when sent), shadows get copies off the
    request path. A request naming a version or an alias bypasses it. Every inference replica
    applies it within a second; recorded in the model's history."""
    return await service.set_traffic(name, traffic, actor, reason)


@public.delete("/{name}/traffic", response_model=TrafficView)
async def clear_traffic(name: Name, service: ServiceDep, actor: ActorDep, reason: Why = "") -> TrafficView:
    """Empties the traffic table: the champion serves all its requests, nothing is shadowed."""
    return await service.clear_traffic(name, actor, reason)


@public.post("/{name}/rollback", response_model=AliasMoved)
async def rollback(name: Name, service: ServiceDep, actor: ActorDep, reason: Why = "") -> AliasMoved:
    """Moves champion back to the version it held before."""
    return await service.rollback(name, actor, reason)


@internal.post(
    "/{name}/versions",
    status_code=201,
    response_model=Registered,
    responses={200: {"model": Registered, "description": "this job registered the version before"}},
)
async def register(name: Name, request: RegisterVersion, response: Response, service: ServiceDep) -> Registered:
    registered = await service.register(name, request)
    if not registered.new:
        response.status_code = 200
    return registered


@internal.post("/{name}/versions/{version}/promotion", response_model=Promotion)
async def promote(
    name: Name, version: Number, request: PromotionRequest, service: ServiceDep, actor: ActorDep
) -> Promotion:
    return await service.promote(name, version, request, actor)


@internal.post("/{name}/history", status_code=201, response_model=HistoryEntry)
async def note(name: Name, note: Note, service: ServiceDep, actor: ActorDep) -> HistoryEntry:
    """Records what another service (the monitor) did to the model: a `monitoring.*` action."""
    return await service.note(name, note, actor)
