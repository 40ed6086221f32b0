"""This service's own daprd, as the adapters reach it: one gRPC client (the SDK's) and one HTTP
client, and how the SDK's errors read. Every call to the sidecar carries the current trace
context (`traceparent`: a header, or gRPC metadata), so the sidecar's span is the child of the
app's and a request stays one trace across the apps (services.common.tracing)."""

import asyncio
import re
from collections.abc import Callable
from typing import Any

import dapr.conf
import grpc
import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprInternalError
from grpc.aio import AioRpcError

from services.common import tracing
from services.common.ports import SidecarUnavailable
from services.common.settings import ServiceSettings

SDK_ERRORS = (DaprGrpcError, DaprInternalError, AioRpcError)
"""What a failed SDK call raises: each adapter turns these into the ports' own errors."""

NOT_ANSWERING = "this service's Dapr sidecar does not answer"

# How components say a key does not exist (the local folder's binding: "no such file or
# directory"; S3 "NoSuchKey", Azure "BlobNotFound", GCS "object doesn't exist"; the secret stores
# alike): daprd answers every such failure with INTERNAL, so only their words tell.
MISSING = re.compile(r"no such file|not found|NoSuchKey|BlobNotFound|doesn't exist", re.IGNORECASE)


def sdk_message(err: Exception) -> str:
    details = getattr(err, "details", None)
    return details() if callable(details) else str(err)


def grpc_code(err: BaseException | None) -> grpc.StatusCode | None:
    """The gRPC status of a failed call. The SDK's async client wraps the gRPC error in a
    DaprInternalError that keeps only the text: the status is on the error it was raised from."""
    while err is not None:
        code = getattr(err, "code", None)
        if callable(code):
            return code()
        err = err.__cause__
    return None


def is_missing(err: Exception) -> bool:
    """Whether a failed binding or secret read says the key is not there (and not that the store is broken)."""
    return grpc_code(err) == grpc.StatusCode.INTERNAL and MISSING.search(sdk_message(err)) is not None


class Sidecar:
    """This service's own daprd: one gRPC client and one HTTP client, made on first use."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.http_url = f"http://{settings.dapr_host}:{settings.dapr_http_port}"
        self.grpc_address = f"{settings.dapr_host}:{settings.dapr_grpc_port}"
        token = settings.dapr_api_token.get_secret_value() if settings.dapr_api_token else None
        self.http = httpx.AsyncClient(
            base_url=self.http_url,
            timeout=settings.sidecar_timeout_s,
            headers={"dapr-api-token": token} if token else None,
            event_hooks={"request": [_traced]},
        )
        if token:
            # The SDK (clients, workflow runtime) reads its token from its global settings.
            dapr.conf.settings.DAPR_API_TOKEN = token  # type: ignore[attr-defined]
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()

    async def healthy(self) -> bool:
        try:
            reply = await self.http.get("/v1.0/healthz/outbound")
        except httpx.HTTPError:
            return False
        return reply.is_success

    async def client(self) -> DaprClient:
        async with self._lock:
            if self._client is None:
                # The SDK's constructor blocks until the sidecar answers, polling the address
                # in its global settings; check first, then point those settings at our sidecar.
                if not await self.healthy():
                    raise SidecarUnavailable(f"sidecar at {self.http_url} is not ready", NOT_ANSWERING)
                dapr.conf.settings.DAPR_HTTP_ENDPOINT = self.http_url  # type: ignore[attr-defined]
                self._client = DaprClient(
                    address=self.grpc_address,
                    max_grpc_message_length=self.settings.max_message_bytes,
                    interceptors=[SidecarCalls(self.settings)],
                )
            return self._client

    async def close(self) -> None:
        await self.http.aclose()
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None


async def _traced(request: httpx.Request) -> None:
    """Every HTTP call to the sidecar carries the current trace context, replacing any the caller
    passed along (the gateway never forwards a client's)."""
    for name in (tracing.TRACEPARENT, tracing.TRACESTATE):
        request.headers.pop(name, None)
    request.headers.update(tracing.headers())


def with_trace(metadata: Any) -> list[tuple[str, str]] | Any:
    """gRPC call metadata with the current trace context added (as is outside a trace)."""
    found = tracing.headers()
    if not found:
        return metadata
    kept = [(k, v) for k, v in (metadata or ()) if k not in (tracing.TRACEPARENT, tracing.TRACESTATE)]
    return [*kept, *found.items()]


# The calls that carry a whole blob (a model's files, a dataset's rows) through a binding: they
# may take as long as a call to another service does.
LONG_CALLS = frozenset({"InvokeBinding"})


def deadline(method: str | bytes, timeout: float | None, settings: ServiceSettings) -> float:
    """The deadline for an SDK call to the sidecar: the caller's, else one by kind. Without one,
    a call to a sidecar that stopped answering (its container gone, its process stopped) waits
    for as long as the socket lives: the SDK sets none unless DAPR_API_TIMEOUT_SECONDS is set."""
    if timeout is not None:
        return timeout
    name = method.decode() if isinstance(method, bytes) else method
    return settings.call_timeout_s if name.rsplit("/", 1)[-1] in LONG_CALLS else settings.sdk_timeout_s


class SidecarCalls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc has no types
    """Every SDK gRPC call (state, pub/sub, bindings, secrets) gets a deadline, and carries the
    current trace context as metadata, which daprd reads as it reads the header (and puts on a
    published event)."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        details = client_call_details
        bounded = grpc.aio.ClientCallDetails(
            details.method,
            deadline(details.method, details.timeout, self.settings),
            with_trace(details.metadata),
            details.credentials,
            details.wait_for_ready,
        )
        return await continuation(bounded, request)
