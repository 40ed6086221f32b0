"""An app that dies in the middle of its answers, run behind its own real sidecar by a test
(python tests/integration/cutting.py): GET /cut/<n> sends a 200 with a JSON body of n bytes as
its Content-Length says, but only the first 10 bytes of it, then its connection breaks (as when
a replica is killed while it answers). GET /whole/<n> sends all n bytes. Built with the service
kit, like the services, so its answers carry what theirs do."""

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app, serve
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings

router = APIRouter()


class Answer(Response):
    """A JSON answer of `size` bytes of which only `sent` go out before the connection breaks."""

    def __init__(self, size: int, sent: int):
        super().__init__(b'"' + b"x" * (size - 2) + b'"', media_type="application/json")
        self.sent = sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cut = self.sent < len(self.body)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: self.sent], "more_body": cut})
        if cut:  # uvicorn drops the connection
            raise ConnectionAbortedError("dying in the middle of an answer, on purpose")


@router.get("/cut/{size}")
async def cut(size: int) -> Response:
    return Answer(size, 10)


@router.get("/whole/{size}")
async def whole(size: int) -> Response:
    return Answer(size, size)


def create_app(settings: ServiceSettings) -> FastAPI:
    ports = dapr_adapters.sidecar_ports(SidecarPorts, settings)
    return build_app(ServiceSpec(title="cutting", settings=settings, ports=ports, routers=[router]))


if __name__ == "__main__":
    serve(create_app, ServiceSettings)
