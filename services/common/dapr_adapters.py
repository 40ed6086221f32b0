"""The one module that imports the Dapr SDK: each port of services.common.ports over a sidecar.

State, pub/sub, bindings and secrets go through the SDK's gRPC client. Service invocation,
health and metadata use the sidecar's HTTP API, which keeps the callee's status code and
content type intact.
"""

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import dapr.conf
import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprInternalError
from dapr.clients.grpc._state import Concurrency, StateOptions
from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, Request
from grpc.aio import AioRpcError
from pydantic import BaseModel

from services.common import events
from services.common.ports import (
    ConcurrencyConflict,
    NotFound,
    Ports,
    Reply,
    SidecarInfo,
    SidecarUnavailable,
    StreamedReply,
    Versioned,
)
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)

_SDK_ERRORS = (DaprGrpcError, DaprInternalError, AioRpcError)


def _message(err: Exception) -> str:
    details = getattr(err, "details", None)
    return details() if callable(details) else str(err)


class Sidecar:
    """This service's own daprd: one gRPC client and one HTTP client, made on first use."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.http_url = f"http://{settings.dapr_host}:{settings.dapr_http_port}"
        self.grpc_address = f"{settings.dapr_host}:{settings.dapr_grpc_port}"
        self._http = httpx.AsyncClient(base_url=self.http_url, timeout=settings.sidecar_timeout_s)
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()

    async def healthy(self) -> bool:
        try:
            reply = await self._http.get("/v1.0/healthz/outbound")
        except httpx.HTTPError:
            return False
        return reply.is_success

    async def info(self) -> SidecarInfo:
        try:
            reply = await self._http.get("/v1.0/metadata")
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"sidecar at {self.http_url} did not answer /v1.0/metadata: {exc}") from exc
        meta = reply.json()
        return SidecarInfo(
            app_id=meta.get("id", ""),
            runtime_version=meta.get("runtimeVersion", ""),
            components=meta.get("components", []),
        )

    async def client(self) -> DaprClient:
        async with self._lock:
            if self._client is None:
                # The SDK's constructor blocks until the sidecar answers, polling the address
                # in its global settings; check first, then point those settings at our sidecar.
                if not await self.healthy():
                    raise SidecarUnavailable(f"sidecar at {self.http_url} is not ready")
                dapr.conf.settings.DAPR_HTTP_ENDPOINT = self.http_url
                self._client = DaprClient(address=self.grpc_address,
                                          max_grpc_message_length=self.settings.max_message_bytes)
            return self._client

    @staticmethod
    def _invoke_url(app_id: str, method: str) -> str:
        return f"/v1.0/invoke/{app_id}/method/{method.lstrip('/')}"

    async def invoke(self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"",
                     headers: dict[str, str] | None = None) -> Reply:
        try:
            reply = await self._http.request(http_verb, self._invoke_url(app_id, method), content=body,
                                             headers=headers, timeout=self.settings.call_timeout_s)
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"invoking {app_id}/{method} through {self.http_url} failed: {exc}") from exc
        return Reply(reply.status_code, reply.content, reply.headers.get("content-type", ""))

    async def forward(self, app_id: str, method: str, http_verb: str, headers: dict[str, str],
                      body: AsyncIterator[bytes]) -> StreamedReply:
        request = self._http.build_request(http_verb, self._invoke_url(app_id, method), headers=headers,
                                           content=body if http_verb in ("POST", "PUT", "PATCH") else None,
                                           timeout=self.settings.call_timeout_s)
        try:
            reply = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"forwarding to {app_id}/{method} through {self.http_url} failed: {exc}") from exc
        return StreamedReply(reply.status_code, dict(reply.headers), reply.aiter_raw(), reply.aclose)

    async def close(self) -> None:
        await self._http.aclose()
        if self._client is not None:
            await self._client.close()
            self._client = None


class DaprStateStore:
    def __init__(self, sidecar: Sidecar, store: str):
        self.sidecar, self.store = sidecar, store

    async def get(self, key: str) -> Versioned | None:
        client = await self.sidecar.client()
        try:
            resp = await client.get_state(self.store, key)
        except _SDK_ERRORS as exc:
            raise SidecarUnavailable(f"reading {key!r} from {self.store}: {_message(exc)}") from exc
        if not resp.data:
            return None
        return Versioned(resp.data, resp.etag)

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        client = await self.sidecar.client()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        try:
            await client.save_state(self.store, key, value, etag=etag, options=options)
        except _SDK_ERRORS as exc:
            raise _state_error(exc, f"saving {key!r} to {self.store}") from exc

    async def create(self, key: str, value: bytes) -> None:
        client = await self.sidecar.client()
        try:
            await client.save_state(self.store, key, value,
                                    options=StateOptions(concurrency=Concurrency.first_write))
        except _SDK_ERRORS as exc:
            # Stores word "already exists" differently; whether the key is there now says it.
            if await self.get(key) is not None:
                raise ConcurrencyConflict(f"{key!r} already exists in {self.store}") from exc
            raise SidecarUnavailable(f"creating {key!r} in {self.store}: {_message(exc)}") from exc

    async def delete(self, key: str, etag: str | None = None) -> None:
        client = await self.sidecar.client()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        try:
            await client.delete_state(self.store, key, etag=etag, options=options)
        except _SDK_ERRORS as exc:
            raise _state_error(exc, f"deleting {key!r} from {self.store}") from exc


def _state_error(exc: Exception, doing: str) -> Exception:
    message = _message(exc)
    if "etag" in message.lower():
        return ConcurrencyConflict(f"{doing}: the ETag is stale ({message})")
    return SidecarUnavailable(f"{doing}: {message}")


class DaprPublisher:
    def __init__(self, sidecar: Sidecar, pubsub: str, source: str):
        self.sidecar, self.pubsub, self.source = sidecar, pubsub, source

    async def publish(self, event_type: events.EventType, payload: BaseModel, subject: str | None = None,
                      event_id: str | None = None) -> None:
        body = events.encode(event_type, self.source, payload, subject, event_id)
        client = await self.sidecar.client()
        try:
            await client.publish_event(self.pubsub, events.topic_of(event_type), body,
                                       data_content_type=events.CLOUDEVENTS_JSON)
        except _SDK_ERRORS as exc:
            raise SidecarUnavailable(f"publishing {event_type} to {self.pubsub}: {_message(exc)}") from exc


class DaprBlobStore:
    """Blobs through an output binding that supports create/get/delete with a fileName
    (bindings.localstorage locally; S3, Azure Blob or GCS buckets elsewhere use `key`).

    Data goes out base64-encoded with decodeBase64 set: bindings.localstorage (like the
    bucket bindings with that flag) decodes whatever parses as base64 or as a quoted string,
    which would silently alter a binary blob that happens to. Reads come back raw."""

    def __init__(self, sidecar: Sidecar, binding: str):
        self.sidecar, self.binding = sidecar, binding

    async def _call(self, operation: str, key: str, data: bytes = b"") -> bytes:
        client = await self.sidecar.client()
        metadata = {"fileName": key, "key": key}
        if operation == "create":
            # Big blobs are encoded in a worker thread, off the event loop.
            encoded = await asyncio.to_thread(base64.b64encode, data) if len(data) > 1 << 16 else base64.b64encode(data)
            data, metadata = encoded, metadata | {"decodeBase64": "true"}
        try:
            resp = await client.invoke_binding(self.binding, operation, data, binding_metadata=metadata)
        except _SDK_ERRORS as exc:
            message = _message(exc)
            if "not found" in message.lower() or "no such file" in message.lower():
                raise NotFound(f"no blob {key!r} in {self.binding}") from exc
            raise SidecarUnavailable(f"{operation} {key!r} on {self.binding}: {message}") from exc
        return resp.data

    async def put(self, key: str, data: bytes) -> None:
        await self._call("create", key, data)

    async def get(self, key: str) -> bytes:
        return await self._call("get", key)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)


class DaprSecretStore:
    def __init__(self, sidecar: Sidecar, store: str):
        self.sidecar, self.store = sidecar, store

    async def get(self, name: str) -> dict[str, str]:
        client = await self.sidecar.client()
        try:
            resp = await client.get_secret(self.store, name)
        except _SDK_ERRORS as exc:
            message = _message(exc)
            if "not found" in message.lower():
                raise NotFound(f"no secret {name!r} in {self.store}") from exc
            raise SidecarUnavailable(f"reading secret {name!r} from {self.store}: {message}") from exc
        return dict(resp.secret)


class DaprInvoker:
    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar

    async def call(self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"",
                   headers: dict[str, str] | None = None) -> Reply:
        return await self.sidecar.invoke(app_id, method, http_verb, body, headers)

    async def forward(self, app_id: str, method: str, http_verb: str, headers: dict[str, str],
                      body: AsyncIterator[bytes]) -> StreamedReply:
        return await self.sidecar.forward(app_id, method, http_verb, headers, body)


def dapr_ports(settings: ServiceSettings) -> Ports:
    """The ports of one service, each through its own sidecar, component names from settings."""
    sidecar = Sidecar(settings)
    return Ports(
        probe=sidecar,
        state=DaprStateStore(sidecar, settings.statestore),
        blobs=DaprBlobStore(sidecar, settings.blobstore),
        publisher=DaprPublisher(sidecar, settings.pubsub, source=f"/daprml/{settings.app_id}"),
        secrets=DaprSecretStore(sidecar, settings.secretstore),
        invoker=DaprInvoker(sidecar),
        close=sidecar.close,
    )


Handler = Callable[[dict[str, Any], BaseModel], Awaitable[None]]


async def deliver(envelope: bytes, event_type: events.EventType, handler: Handler) -> str:
    """What Dapr should do with one delivery. SUCCESS; RETRY when a sidecar or store failed
    (the resiliency policy backs off and tries again); DROP for an event no retry can make
    valid, which Dapr logs and discards rather than redelivering it forever."""
    try:
        attributes, payload = events.decode(envelope, event_type)
    except events.InvalidEvent as exc:
        log.warning("dropping an invalid %s event: %s", event_type, exc)
        return "DROP"
    try:
        await handler(attributes, payload)
    except SidecarUnavailable as exc:
        log.warning("%s event %s will be retried: %s", event_type, attributes.get("id"), exc)
        return "RETRY"
    return "SUCCESS"


def subscribe(app: FastAPI, pubsub: str, event_type: events.EventType, route: str, handler: Handler) -> None:
    """Subscribes the app to the topic of an event type, declared on its /dapr/subscribe.
    The handler gets the CloudEvent's attributes and its validated payload."""
    dapr_app = getattr(app.state, "dapr_app", None)
    if dapr_app is None:
        dapr_app = app.state.dapr_app = DaprApp(app)

    @dapr_app.subscribe(pubsub=pubsub, topic=events.topic_of(event_type), route=route)
    async def _deliver(request: Request) -> dict[str, str]:
        return {"status": await deliver(await request.body(), event_type, handler)}
