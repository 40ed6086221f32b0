"""The Open Inference Protocol's error shape, for the routes that speak it (inference's /v2 and
the gateway's): {"error": "..."} with the status the service kit would give, so that OIP
clients (tritonclient, KServe's) show the message."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from services.common.errors import ClientError
from services.common.ports import SidecarUnavailable


class ProtocolRoute(APIRoute):
    """Errors in the protocol's shape, {"error": "..."}, with the status the kit would give."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as e:
                problems = "; ".join(f"{' '.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
                return JSONResponse({"error": f"invalid request: {problems}"}, status_code=400)
            except ClientError as e:
                return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)
            except HTTPException as e:  # FastAPI's own: a body that is not JSON, say
                return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)
            except SidecarUnavailable as e:
                return JSONResponse(
                    {"error": f"{e.public}; try again in a few seconds"}, status_code=503, headers={"retry-after": "5"}
                )

        return handler
