"""The model registry API, as the public sees it: each route a named operation of the registry.

Parameters are validated here, by the same rules the registry applies, before anything is
forwarded; what the registry answers comes back as it is. The registry's /internal routes
(registration and promotion, for training) are not forwarded. tests/api/test_gateway_routes.py
checks that these routes and the registry's public ones are the same set.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.common.contracts import ALIAS_NAME, MODEL_NAME
from services.common.contracts.rollouts import ROLLOUT_ID
from services.gateway.deps import ADMIN, READ, TRAIN, RegistryDep

router = APIRouter(prefix="/api/models", tags=["models"])

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
Alias = Annotated[str, Path(pattern=ALIAS_NAME, description="lower-case letters, digits, '-' and '_'")]
# A number or an alias: both have the alias's shape.
Version = Annotated[str, Path(pattern=ALIAS_NAME, description="a version number, or an alias such as champion")]
RolloutId = Annotated[str, Path(pattern=ROLLOUT_ID, description="r1, r2, ...: as the rollout's start answered")]
# Why a change was made, for the model's history (which records the key's name as who).
Why = Annotated[str | None, Query(max_length=500, description="why, for the model's history (GET .../history)")]


@router.get("", dependencies=[READ])
async def list_models(
    request: Request,
    registry: RegistryDep,
    offset: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return await registry.forward(request, "api", "models", query={"offset": offset, "limit": limit})


@router.get("/{name}", dependencies=[READ])
async def get_model(name: Name, request: Request, registry: RegistryDep) -> Response:
    """The model's versions, aliases, promotion policy and its latest alias moves (the whole
    history: GET .../history)."""
    return await registry.forward(request, "api", "models", name)


@router.get("/{name}/history", dependencies=[READ])
async def get_history(
    name: Name,
    request: Request,
    registry: RegistryDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """What was done to the model (alias moves, policy changes, monitoring actions), by whom
    (the key's name), why and when, newest first, a page at a time."""
    return await registry.forward(request, "api", "models", name, "history", query={"before": before, "limit": limit})


@router.get("/{name}/versions/{version}", dependencies=[READ])
async def get_version(name: Name, version: Version, request: Request, registry: RegistryDep) -> Response:
    """Lineage, metrics, artifact, model card and compiled model (onnx) of one version."""
    return await registry.forward(request, "api", "models", name, "versions", version)


@router.get("/{name}/versions/{version}/artifact", dependencies=[READ])
async def get_artifact(name: Name, version: Version, request: Request, registry: RegistryDep) -> Response:
    """The skops file, checked against its recorded sha256 before it is sent."""
    return await registry.forward(request, "api", "models", name, "versions", version, "artifact")


@router.get("/{name}/versions/{version}/onnx", dependencies=[READ])
async def get_onnx(name: Name, version: Version, request: Request, registry: RegistryDep) -> Response:
    """The compiled model (ONNX), checked against its recorded sha256 before it is sent; 404
    saying why when the version has none."""
    return await registry.forward(request, "api", "models", name, "versions", version, "onnx")


@router.put("/{name}/aliases/{alias}", dependencies=[ADMIN])
async def set_alias(name: Name, alias: Alias, request: Request, registry: RegistryDep, reason: Why = None) -> Response:
    """Points the alias at a version (champion is the one served by default)."""
    return await registry.forward(request, "api", "models", name, "aliases", alias, query={"reason": reason})


@router.delete("/{name}/aliases/{alias}", status_code=204, dependencies=[ADMIN])
async def delete_alias(
    name: Name, alias: Alias, request: Request, registry: RegistryDep, reason: Why = None
) -> Response:
    return await registry.forward(request, "api", "models", name, "aliases", alias, query={"reason": reason})


@router.put("/{name}/policy", dependencies=[TRAIN])
async def set_policy(name: Name, request: Request, registry: RegistryDep, reason: Why = None) -> Response:
    """How new versions are promoted: auto (on the primary metric) or manual."""
    return await registry.forward(request, "api", "models", name, "policy", query={"reason": reason})


@router.get("/{name}/traffic", dependencies=[READ])
async def get_traffic(name: Name, request: Request, registry: RegistryDep) -> Response:
    """How the champion's requests are served (canary versions and their percents, the
    champion's own, shadows), who changed it last (the key's name) and when."""
    return await registry.forward(request, "api", "models", name, "traffic")


@router.put("/{name}/traffic", dependencies=[ADMIN])
async def set_traffic(name: Name, request: Request, registry: RegistryDep, reason: Why = None) -> Response:
    """Sets the traffic table: {"canary": [{"version", "percent"}], "shadows": [{"version",
    "percent"}]}. Canary versions serve their percent of the requests for the champion (sticky
    by the x-daprml-routing-key header), shadows get copies off the request path; a request
    naming a version or an alias bypasses it. No version may be the champion (422); a model
    without a champion takes none (409)."""
    return await registry.forward(request, "api", "models", name, "traffic", query={"reason": reason})


@router.delete("/{name}/traffic", dependencies=[ADMIN])
async def clear_traffic(name: Name, request: Request, registry: RegistryDep, reason: Why = None) -> Response:
    """Empties the traffic table: the champion serves all its requests, nothing is shadowed."""
    return await registry.forward(request, "api", "models", name, "traffic", query={"reason": reason})


@router.post("/{name}/rollback", dependencies=[ADMIN])
async def rollback(name: Name, request: Request, registry: RegistryDep, reason: Why = None) -> Response:
    """Moves champion back to the version it held before."""
    return await registry.forward(request, "api", "models", name, "rollback", query={"reason": reason})


@router.post("/{name}/rollouts", status_code=201, dependencies=[ADMIN])
async def start_rollout(name: Name, request: Request, registry: RegistryDep) -> Response:
    """Brings a candidate version to champion by a plan of steps, each held to gates on live
    evidence against the champion: {"candidate": 2, "plan": [{"shadow": 20, "for": "10m"},
    {"canary": 30, "for": 200}, {"approval": true}, {"promote": true}], "reason": "..."}. Answers
    the rollout (201), which runs as a workflow in the registry."""
    return await registry.forward(request, "api", "models", name, "rollouts")


@router.get("/{name}/rollouts", dependencies=[READ])
async def list_rollouts(name: Name, request: Request, registry: RegistryDep) -> Response:
    """The model's rollouts, newest first."""
    return await registry.forward(request, "api", "models", name, "rollouts")


@router.get("/{name}/rollouts/{rollout_id}", dependencies=[READ])
async def get_rollout(name: Name, rollout_id: RolloutId, request: Request, registry: RegistryDep) -> Response:
    """One rollout as it stands: its status (waiting_for_approval: for a person), the step it is
    in, the traffic table it set, its gates' readings and, once finished, its outcome."""
    return await registry.forward(request, "api", "models", name, "rollouts", rollout_id)


@router.post("/{name}/rollouts/{rollout_id}/approve", dependencies=[ADMIN])
async def approve_rollout(
    name: Name, rollout_id: RolloutId, request: Request, registry: RegistryDep, reason: Why = None
) -> Response:
    """Lets a rollout waiting for approval go on to its next step."""
    return await registry.forward(
        request, "api", "models", name, "rollouts", rollout_id, "approve", query={"reason": reason}
    )


@router.post("/{name}/rollouts/{rollout_id}/reject", dependencies=[ADMIN])
async def reject_rollout(
    name: Name, rollout_id: RolloutId, request: Request, registry: RegistryDep, reason: Why = None
) -> Response:
    """Rolls the rollout back, a person's judgement (meant for one waiting for approval): the
    champion serves everything again."""
    return await registry.forward(
        request, "api", "models", name, "rollouts", rollout_id, "reject", query={"reason": reason}
    )


@router.post("/{name}/rollouts/{rollout_id}/abort", dependencies=[ADMIN])
async def abort_rollout(
    name: Name, rollout_id: RolloutId, request: Request, registry: RegistryDep, reason: Why = None
) -> Response:
    """Stops a rollout that has not finished, in any step, and rolls it back."""
    return await registry.forward(
        request, "api", "models", name, "rollouts", rollout_id, "abort", query={"reason": reason}
    )
