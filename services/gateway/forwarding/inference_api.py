"""The inference API, as the public sees it: each route a named operation of inference.

The JSON predict API beside the registry's model routes, and the Open Inference Protocol v2 at
/v2 as on the inference app, so that an OIP client (KServe's, Triton's) pointed at the gateway
works unchanged. Parameters are validated here by the rules inference applies before anything
is forwarded; what inference answers comes back as it is. tests/api/test_gateway_routes.py
checks that these routes and inference's public ones are the same set.
"""

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from services.common.contracts import ALIAS_NAME, MODEL_NAME
from services.common.contracts.models import MAX_ROUTING_KEY, ROUTING_KEY, ROUTING_KEY_HEADER
from services.common.errors import ClientError
from services.common.oip import ProtocolRoute
from services.gateway.deps import PREDICT, READ_MODELS, InferenceDep

predict_router = APIRouter(prefix="/api/models", tags=["inference"])
# Errors of its own (a bad path, a missing key) in the protocol's shape, as inference answers.
v2_router = APIRouter(prefix="/v2", tags=["open inference protocol v2"], route_class=ProtocolRoute)

Name = Annotated[str, Path(pattern=MODEL_NAME, description="lower-case letters, digits, '-' and '_'")]
Version = Annotated[str, Path(pattern=ALIAS_NAME, description="a version number, or an alias such as champion")]


class BadRoutingKey(ClientError):
    status = 422


async def routing_key(
    request: Request,
    # Declared for the OpenAPI document only (json_schema_extra documents, it does not check):
    # routing_key checks it, so that a bad key is a 422 on the OIP route too (where FastAPI's own
    # validation answers 400 in the protocol's shape) and a repeated header is refused.
    declared: Annotated[
        str | None,
        Header(
            alias=ROUTING_KEY_HEADER,
            description=f"names the caller for a sticky canary split: the same key is served by the same version "
            f"while the model's traffic table stays as it is (1 to {MAX_ROUTING_KEY} printable ASCII characters)",
            json_schema_extra={"pattern": ROUTING_KEY, "maxLength": MAX_ROUTING_KEY},
        ),
    ] = None,
) -> dict[str, str]:
    """The routing key to pass on to inference, once it is one: the only caller's header the
    predict routes pass on beside the plain ones (upstream.REQUEST_HEADERS)."""
    sent = request.headers.getlist(ROUTING_KEY_HEADER)
    if not sent:
        return {}
    if len(sent) > 1:
        raise BadRoutingKey(f"the {ROUTING_KEY_HEADER} header was sent {len(sent)} times: send it once")
    if not re.fullmatch(ROUTING_KEY, sent[0]):
        raise BadRoutingKey(
            f"the {ROUTING_KEY_HEADER} header must be 1 to {MAX_ROUTING_KEY} printable ASCII characters "
            f"(it has {len(sent[0])} characters{'' if sent[0].isascii() else ', some not ASCII'})"
        )
    return {ROUTING_KEY_HEADER: sent[0]}


RoutingKey = Annotated[dict[str, str], Depends(routing_key)]


@predict_router.post("/{name}/predict", dependencies=[PREDICT])
async def predict(name: Name, request: Request, inference: InferenceDep, key: RoutingKey) -> Response:
    """Predictions of a model version: {"records": [{feature: value}], "version"?, "alias"?, "strict"?}.
    A field the model does not know is a 422 naming the nearest known one, unless "strict" is
    false: then it is ignored and listed in the answer's "warnings". Without a version or an
    alias, the model's traffic table may send it to a canary version (the answer says which)."""
    return await inference.forward(request, "api", "models", name, "predict", headers=key)


@v2_router.get("/health/live", dependencies=[READ_MODELS])
async def live(request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "health", "live")


@v2_router.get("/health/ready", dependencies=[READ_MODELS])
async def ready(request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "health", "ready")


@v2_router.get("", dependencies=[READ_MODELS])
async def server_metadata(request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2")


@v2_router.get("/models/{name}", dependencies=[READ_MODELS])
async def model_metadata(name: Name, request: Request, inference: InferenceDep) -> Response:
    """The champion's inputs (one per feature) and outputs."""
    return await inference.forward(request, "v2", "models", name)


@v2_router.get("/models/{name}/versions/{version}", dependencies=[READ_MODELS])
async def version_metadata(name: Name, version: Version, request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "models", name, "versions", version)


@v2_router.get("/models/{name}/ready", dependencies=[READ_MODELS])
async def model_ready(name: Name, request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "models", name, "ready")


@v2_router.get("/models/{name}/versions/{version}/ready", dependencies=[READ_MODELS])
async def version_ready(name: Name, version: Version, request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "models", name, "versions", version, "ready")


@v2_router.post("/models/{name}/infer", dependencies=[PREDICT])
async def infer(name: Name, request: Request, inference: InferenceDep, key: RoutingKey) -> Response:
    """Predictions of the champion for the input tensors, or of a canary version as the model's
    traffic table says (model_version names the one that served)."""
    return await inference.forward(request, "v2", "models", name, "infer", headers=key)


@v2_router.post("/models/{name}/versions/{version}/infer", dependencies=[PREDICT])
async def infer_version(name: Name, version: Version, request: Request, inference: InferenceDep) -> Response:
    return await inference.forward(request, "v2", "models", name, "versions", version, "infer")


routers = [predict_router, v2_router]
