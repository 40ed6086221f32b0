"""The one module that imports the Dapr SDK: each port of services.common.ports over a sidecar.

State, pub/sub, bindings and secrets go through the SDK's gRPC client. Service invocation,
health and metadata use the sidecar's HTTP API, which keeps the callee's status code and
content type intact.
"""

import asyncio
import base64
import dataclasses
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import dapr.conf
import grpc
import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprInternalError
from dapr.clients.grpc._state import Concurrency, StateOptions
from dapr.ext.fastapi import DaprApp
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)
from dapr.ext.workflow._durabletask.task import NonRetryableError
from dapr.ext.workflow.logger.options import LoggerOptions
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc.aio import AioRpcError
from pydantic import BaseModel

from services.common import events, middleware
from services.common.errors import ClientError
from services.common.ports import (
    ActivityFunction,
    BlobStore,
    BlobTooLarge,
    ConcurrencyConflict,
    EventPublisher,
    NotFound,
    Reply,
    SecretStore,
    ServiceInvoker,
    SidecarInfo,
    SidecarPorts,
    SidecarProbe,
    SidecarUnavailable,
    StateStore,
    StreamedReply,
    Versioned,
    WorkflowFunction,
    WorkflowRun,
    Workflows,
    sidecar_error_code,
)
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)

_SDK_ERRORS = (DaprGrpcError, DaprInternalError, AioRpcError)


def _message(err: Exception) -> str:
    details = getattr(err, "details", None)
    return details() if callable(details) else str(err)


def _grpc_code(err: BaseException | None) -> grpc.StatusCode | None:
    """The gRPC status of a failed call. The SDK's async client wraps the gRPC error in a
    DaprInternalError that keeps only the text: the status is on the error it was raised from."""
    while err is not None:
        code = getattr(err, "code", None)
        if callable(code):
            return code()
        err = err.__cause__
    return None


# App ids and the segments of a method path: what our own code builds, nothing a client could
# bend. httpx collapses '.' and '..' segments and the sidecar decodes %2F, so either would let
# a path leave /v1.0/invoke/<app>/method/ for the sidecar's own API.
_APP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_QUERY = re.compile(r"^[A-Za-z0-9_.~%&=+-]*$")


class UnsafePath(ValueError):
    """A method path that is not plain segments: refused before anything is sent."""


def invoke_path(app_id: str, method: str) -> str:
    """/v1.0/invoke/<app>/method/<method>, after checking every part is a plain segment."""
    path, _, query = method.partition("?")
    if not _APP_ID.match(app_id):
        raise UnsafePath(f"refusing to invoke app id {app_id!r}")
    segments = path.split("/")
    if not all(_SEGMENT.match(seg) and seg.strip(".") for seg in segments) or not _QUERY.match(query):
        raise UnsafePath(f"refusing to invoke method {method!r} on {app_id}: only plain path segments")
    return f"/v1.0/invoke/{app_id}/method/{method}"


def _with_request_id(headers: dict[str, str] | None) -> dict[str, str]:
    """The call carries the id of the request it is made for (see middleware.py)."""
    rid = middleware.request_id.get()
    given = dict(headers or {})
    if rid != "-" and not any(k.lower() == middleware.REQUEST_ID for k in given):
        given[middleware.REQUEST_ID] = rid
    return given


class Sidecar:
    """This service's own daprd: one gRPC client and one HTTP client, made on first use."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.http_url = f"http://{settings.dapr_host}:{settings.dapr_http_port}"
        self.grpc_address = f"{settings.dapr_host}:{settings.dapr_grpc_port}"
        token = settings.dapr_api_token.get_secret_value() if settings.dapr_api_token else None
        self._http = httpx.AsyncClient(
            base_url=self.http_url,
            timeout=settings.sidecar_timeout_s,
            headers={"dapr-api-token": token} if token else None,
        )
        if token:
            # The SDK (clients, workflow runtime) reads its token from its global settings.
            dapr.conf.settings.DAPR_API_TOKEN = token  # type: ignore[attr-defined]
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
            raise SidecarUnavailable(
                f"sidecar at {self.http_url} did not answer /v1.0/metadata: {exc}",
                "this service's Dapr sidecar does not answer",
            ) from exc
        meta = reply.json()
        return SidecarInfo(
            app_id=meta.get("id", ""),
            runtime_version=meta.get("runtimeVersion", ""),
            components=meta.get("components", []),
        )

    async def announce(self, heartbeat: events.InstanceHeartbeat) -> None:
        settings = self.settings
        publisher = DaprPublisher(self, settings.replica_pubsub, f"/daprml/{settings.app_id}", settings.topic_prefix)
        await publisher.publish(events.EventType.INSTANCE_HEARTBEAT, heartbeat)

    async def client(self) -> DaprClient:
        async with self._lock:
            if self._client is None:
                # The SDK's constructor blocks until the sidecar answers, polling the address
                # in its global settings; check first, then point those settings at our sidecar.
                if not await self.healthy():
                    raise SidecarUnavailable(
                        f"sidecar at {self.http_url} is not ready", "this service's Dapr sidecar does not answer"
                    )
                dapr.conf.settings.DAPR_HTTP_ENDPOINT = self.http_url  # type: ignore[attr-defined]
                self._client = DaprClient(
                    address=self.grpc_address, max_grpc_message_length=self.settings.max_message_bytes
                )
            return self._client

    async def invoke(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        async def once(may_retry: bool) -> Reply | None:
            reply = await self._http.request(
                http_verb,
                invoke_path(app_id, method),
                content=body,
                headers=_with_request_id(headers),
                timeout=self.settings.call_timeout_s,
            )
            if may_retry and _unreached(reply.status_code, reply.content):
                return None
            return Reply(reply.status_code, reply.content, reply.headers.get("content-type", ""))

        return await _with_retries(
            http_verb, once, f"invoking {app_id}/{method} through {self.http_url}", f"the {app_id} service"
        )

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        async def once(may_retry: bool) -> StreamedReply | None:
            request = self._http.build_request(
                http_verb,
                invoke_path(app_id, method),
                headers=_with_request_id(headers),
                content=body if http_verb in ("POST", "PUT", "PATCH") else None,
                timeout=self.settings.call_timeout_s,
            )
            reply = await self._http.send(request, stream=True)
            if not (may_retry and reply.status_code >= 500):
                return StreamedReply(reply.status_code, dict(reply.headers), reply.aiter_raw(), reply.aclose)
            # Small enough to read whole: an idempotent request's error answer.
            content = await reply.aread()
            await reply.aclose()
            if _unreached(reply.status_code, content):
                return None
            return StreamedReply(reply.status_code, dict(reply.headers), _once(content), _nothing_to_close)

        return await _with_retries(
            http_verb, once, f"forwarding to {app_id}/{method} through {self.http_url}", f"the {app_id} service"
        )

    async def close(self) -> None:
        await self._http.aclose()
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None


class DaprStateStore:
    def __init__(self, sidecar: Sidecar, store: str):
        self.sidecar, self.store = sidecar, store

    async def get(self, key: str) -> Versioned | None:
        client = await self.sidecar.client()
        try:
            resp = await client.get_state(self.store, key)
        except _SDK_ERRORS as exc:
            raise SidecarUnavailable(f"reading {key!r} from {self.store}: {_message(exc)}", STATE) from exc
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
            await client.save_state(self.store, key, value, options=StateOptions(concurrency=Concurrency.first_write))
        except _SDK_ERRORS as exc:
            # Stores word "already exists" differently (and Redis answers it as an ETag
            # mismatch): whether the key is there now says it.
            if await self.get(key) is not None:
                raise ConcurrencyConflict(f"{key!r} already exists in {self.store}") from exc
            raise SidecarUnavailable(f"creating {key!r} in {self.store}: {_message(exc)}", STATE) from exc

    async def delete(self, key: str, etag: str | None = None) -> None:
        client = await self.sidecar.client()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        try:
            await client.delete_state(self.store, key, etag=etag, options=options)
        except _SDK_ERRORS as exc:
            raise _state_error(exc, f"deleting {key!r} from {self.store}") from exc


STATE = "the state store is unavailable"
BLOBS = "the blob store is unavailable"


def _state_error(exc: Exception, doing: str) -> Exception:
    # daprd answers an ETag mismatch with ABORTED (and a malformed ETag with INVALID_ARGUMENT,
    # which for us is an ETag from another store's era: stale as well).
    if _grpc_code(exc) in (grpc.StatusCode.ABORTED, grpc.StatusCode.INVALID_ARGUMENT):
        return ConcurrencyConflict(f"{doing}: the ETag is stale ({_message(exc)})")
    return SidecarUnavailable(f"{doing}: {_message(exc)}", STATE)


class DaprPublisher:
    def __init__(self, sidecar: Sidecar, pubsub: str, source: str, topic_prefix: str = ""):
        self.sidecar, self.pubsub, self.source, self.topic_prefix = sidecar, pubsub, source, topic_prefix

    async def publish(
        self, event_type: events.EventType, payload: BaseModel, subject: str | None = None, event_id: str | None = None
    ) -> None:
        body = events.encode(event_type, self.source, payload, subject, event_id)
        await self._send(events.topic_of(event_type, self.topic_prefix), body, f"publishing {event_type}")

    async def publish_many(self, event_type: events.EventType, payloads: list[BaseModel]) -> None:
        if not payloads:
            return
        # Each entry a structured CloudEvent, as publish() sends: the sidecar passes it on as it is.
        bodies = [events.encode(event_type, self.source, payload) for payload in payloads]
        client = await self.sidecar.client()
        try:
            reply = await client.publish_events(
                self.pubsub,
                events.topic_of(event_type, self.topic_prefix),
                bodies,
                data_content_type=events.CLOUDEVENTS_JSON,
            )
        except _SDK_ERRORS as exc:
            raise SidecarUnavailable(
                f"bulk publishing {len(bodies)} {event_type} to {self.pubsub}: {_message(exc)}",
                "the event bus is unavailable",
            ) from exc
        if reply.failed_entries:
            raise SidecarUnavailable(
                f"bulk publishing {event_type} to {self.pubsub}: {len(reply.failed_entries)} of {len(bodies)} "
                f"events failed, the first with: {reply.failed_entries[0].error}",
                "the event bus is unavailable",
            )

    async def republish(self, topic: events.Topic, envelope: dict[str, Any]) -> None:
        body = json.dumps(envelope).encode()
        await self._send(f"{self.topic_prefix}{topic}", body, f"publishing event {envelope.get('id')} again")

    async def _send(self, topic: str, body: bytes, doing: str) -> None:
        """One structured CloudEvent to a topic, as it is."""
        client = await self.sidecar.client()
        try:
            await client.publish_event(self.pubsub, topic, body, data_content_type=events.CLOUDEVENTS_JSON)
        except _SDK_ERRORS as exc:
            raise SidecarUnavailable(
                f"{doing} to {topic} on {self.pubsub}: {_message(exc)}", "the event bus is unavailable"
            ) from exc


# How the blob bindings say a key does not exist (localstorage: "no such file or directory";
# S3 "NoSuchKey", Azure "BlobNotFound", GCS "object doesn't exist").
_MISSING = re.compile(r"no such file|not found|NoSuchKey|BlobNotFound|doesn't exist", re.IGNORECASE)


class DaprBlobStore:
    """Blobs through an output binding that supports create/get/delete with a fileName
    (a local folder's binding), a `key` (S3, GCS) or a `blobName` (Azure Blob Storage).

    Data goes out base64-encoded with decodeBase64 set: the local folder's binding (like the
    bucket bindings with that flag) decodes whatever parses as base64 or as a quoted string,
    which would silently alter a binary blob that happens to. Reads come back raw."""

    def __init__(self, sidecar: Sidecar, binding: str):
        self.sidecar, self.binding = sidecar, binding

    async def _call(self, operation: str, key: str, data: bytes = b"") -> bytes:
        metadata = {"fileName": key, "key": key, "blobName": key}  # each binding reads its own name
        if operation == "create":
            # Big blobs are encoded in a worker thread, off the event loop.
            encoded = await asyncio.to_thread(base64.b64encode, data) if len(data) > 1 << 16 else base64.b64encode(data)
            # The whole blob travels in one gRPC message: say so plainly rather than let gRPC refuse it.
            room = self.sidecar.settings.max_message_bytes - (64 << 10)
            if len(encoded) > room:
                raise BlobTooLarge(
                    f"{key!r} is {len(data) / 1e6:.1f} MB; the blob store takes at most {room * 3 // 4 / 1e6:.1f} MB "
                    f"in one piece"
                )
            data, metadata = encoded, metadata | {"decodeBase64": "true"}
        client = await self.sidecar.client()
        try:
            resp = await client.invoke_binding(self.binding, operation, data, binding_metadata=metadata)
        except _SDK_ERRORS as exc:
            # daprd answers every failed binding call alike (INTERNAL, ERR_INVOKE_OUTPUT_BINDING):
            # only the component's own words tell a missing blob from a broken store.
            message = _message(exc)
            if _grpc_code(exc) == grpc.StatusCode.INTERNAL and _MISSING.search(message):
                raise NotFound(f"no blob {key!r} in {self.binding}") from exc
            raise SidecarUnavailable(f"{operation} {key!r} on {self.binding}: {message}", BLOBS) from exc
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
            # As with bindings, daprd answers every failed secret read with INTERNAL.
            message = _message(exc)
            if _grpc_code(exc) == grpc.StatusCode.INTERNAL and _MISSING.search(message):
                raise NotFound(f"no secret {name!r} in {self.store}") from exc
            raise SidecarUnavailable(
                f"reading secret {name!r} from {self.store}: {message}", "the secret store is unavailable"
            ) from exc
        return dict(resp.secret)


# A GET or HEAD whose call did not reach the app (its sidecar, or the callee's, answered with an
# ERR_ code: the app restarting, a replica just gone) goes again after each of these waits; other
# requests are sent once (an upload or a commit is not safe to send twice). The resiliency policy
# retries calls to inference in the sidecar already; these cover the rest.
_RETRY_DELAYS_S = (0.1, 0.3)
_IDEMPOTENT = ("GET", "HEAD")


def _unreached(status: int, body: bytes) -> bool:
    return status >= 500 and sidecar_error_code(body) is not None


T = TypeVar("T")


async def _with_retries(http_verb: str, attempt: Callable[[bool], Awaitable[T | None]], doing: str, service: str) -> T:
    """Calls attempt(may_retry) until it returns an answer: it returns None for a call that did
    not reach the app, which goes again while the verb is idempotent and tries are left; a
    connection failure to the sidecar goes again the same way, and is SidecarUnavailable after."""
    for delay_s in (*_RETRY_DELAYS_S, None):
        may_retry = delay_s is not None and http_verb in _IDEMPOTENT
        try:
            answer = await attempt(may_retry)
        except httpx.HTTPError as exc:
            if not may_retry:
                raise SidecarUnavailable(f"{doing} failed: {exc}", f"{service} cannot be reached") from exc
            answer = None
        if answer is not None:
            return answer
        await asyncio.sleep(delay_s or 0)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def _nothing_to_close() -> None:
    return None


class DaprInvoker:
    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar

    async def call(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        return await self.sidecar.invoke(app_id, method, http_verb, body, headers)

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        return await self.sidecar.forward(app_id, method, http_verb, headers, body)


class _Context:
    """The WorkflowContext port over Dapr's: activities by name, each with the retry policy."""

    def __init__(self, ctx: DaprWorkflowContext, retry: RetryPolicy):
        self._ctx, self._retry = ctx, retry
        self.instance_id = ctx.instance_id

    def activity(self, name: str, input: Any = None) -> Any:
        return self._ctx.call_activity(name, input=input, retry_policy=self._retry)

    def status(self, value: Any) -> None:
        self._ctx.set_custom_status(json.dumps(value))


# The SDK gives its loggers handlers of their own; the service's logging configuration already
# prints what they say, so without this every line appeared twice.
_QUIET = LoggerOptions(log_handler=logging.NullHandler())


class DaprWorkflows:
    """Workflows on the sidecar's engine (dapr-ext-workflow). The engine's worker runs in its own
    thread and event loop; each activity is handed over to the app's event loop, where the
    service's ports live, and the worker thread waits for it there."""

    def __init__(self, sidecar: Sidecar, activity_attempts: int = 3):
        self.sidecar = sidecar
        self._retry = RetryPolicy(
            first_retry_interval=timedelta(seconds=2),
            max_number_of_attempts=activity_attempts,
            backoff_coefficient=2.0,
            max_retry_interval=timedelta(seconds=30),
        )
        self._definitions: list[tuple[str, WorkflowFunction, Mapping[str, ActivityFunction]]] = []
        self._runtime: WorkflowRuntime | None = None
        self._client: DaprWorkflowClient | None = None

    def define(self, name: str, workflow: WorkflowFunction, activities: Mapping[str, ActivityFunction]) -> None:
        self._definitions.append((name, workflow, activities))

    async def start(self) -> None:
        if not await self.sidecar.healthy():
            raise SidecarUnavailable(
                f"sidecar at {self.sidecar.http_url} is not ready for workflows",
                "this service's Dapr sidecar does not answer",
            )
        loop = asyncio.get_running_loop()
        settings = self.sidecar.settings
        runtime = WorkflowRuntime(host=settings.dapr_host, port=str(settings.dapr_grpc_port), logger_options=_QUIET)
        for name, workflow, activities in self._definitions:
            runtime.register_workflow(self._workflow(workflow), name=name)
            for activity_name, activity in activities.items():
                runtime.register_activity(_on_loop(activity, loop), name=activity_name)
        await asyncio.to_thread(runtime.start)
        self._runtime = runtime
        self._client = DaprWorkflowClient(
            host=settings.dapr_host, port=str(settings.dapr_grpc_port), logger_options=_QUIET
        )

    def _workflow(self, workflow: WorkflowFunction) -> Callable[[DaprWorkflowContext, Any], Any]:
        def run(ctx: DaprWorkflowContext, input: Any) -> Any:
            return workflow(_Context(ctx, self._retry), input)

        return run

    def _engine(self) -> DaprWorkflowClient:
        if self._client is None:
            raise SidecarUnavailable("the workflow engine is not connected yet", "the workflow engine is starting")
        return self._client

    async def schedule(self, name: str, instance_id: str, input: Any) -> bool:
        if await self.run(instance_id) is not None:
            return False
        try:
            await asyncio.to_thread(self._engine().schedule_new_workflow, name, input=input, instance_id=instance_id)
        except _SDK_ERRORS + (grpc.RpcError,) as exc:
            # Two requests for one id racing: the loser finds the winner's instance.
            if await self.run(instance_id) is not None:
                return False
            raise SidecarUnavailable(
                f"scheduling workflow {instance_id}: {_message(exc)}", "the workflow engine is unavailable"
            ) from exc
        return True

    async def run(self, instance_id: str, attempts: int = 3) -> WorkflowRun | None:
        # A read can land while the engine saves the workflow, whose state spans several keys;
        # daprd then answers UNKNOWN ("inbox key ... missing from state store"). Reading is
        # harmless to repeat: a few tries, a moment apart, before calling the engine unavailable.
        for attempt in range(attempts):
            try:
                state = await asyncio.to_thread(self._engine().get_workflow_state, instance_id)
                break
            except _SDK_ERRORS + (grpc.RpcError,) as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise SidecarUnavailable(
                    f"reading workflow {instance_id}: {_message(exc)}", "the workflow engine is unavailable"
                ) from exc
        if state is None:
            return None
        failure = state.failure_details
        return WorkflowRun(
            instance_id=instance_id,
            status=state.runtime_status.name if isinstance(state.runtime_status, WorkflowStatus) else "UNKNOWN",
            custom_status=_json_or_none(state.serialized_custom_status),
            output=_json_or_none(state.serialized_output),
            # The engine words it "<instance>: Activity task #N failed: <the activity's error>".
            error=_ENGINE_PREFIX.sub("", failure.message) if failure is not None else None,
            created_at=state.created_at,
            updated_at=state.last_updated_at,
        )

    async def terminate(self, instance_id: str, reason: str) -> bool:
        found = await self.run(instance_id)
        if found is None or found.status in ("COMPLETED", "FAILED", "TERMINATED"):
            return False
        try:
            await asyncio.to_thread(self._engine().terminate_workflow, instance_id, output=reason)
        except _SDK_ERRORS + (grpc.RpcError,) as exc:
            raise SidecarUnavailable(
                f"terminating workflow {instance_id}: {_message(exc)}", "the workflow engine is unavailable"
            ) from exc
        return True

    async def close(self) -> None:
        for done in (self._runtime.shutdown if self._runtime else None, self._client.close if self._client else None):
            if done is not None:
                await asyncio.to_thread(done)
        self._runtime = self._client = None


def _on_loop(activity: ActivityFunction, loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    def run(_ctx: WorkflowActivityContext, input: Any = None) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(activity(input), loop).result()
        except ClientError as exc:
            # The input is at fault (a dataset too small, a parameter refused): trying again
            # would fail again, so the engine is told not to.
            raise NonRetryableError(str(exc)) from exc

    return run


_ENGINE_PREFIX = re.compile(r"^.*?Activity task #\d+ failed: ")


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


P = TypeVar("P", bound=SidecarPorts)


def sidecar_ports(kind: type[P], settings: ServiceSettings) -> P:
    """The ports a service declares (the fields of `kind`), each over the service's own
    sidecar, component names from its settings."""
    sidecar = Sidecar(settings)
    makers: dict[str, Callable[[], Any]] = {
        "probe": lambda: _probe(sidecar),
        "state": lambda: _state(sidecar, settings),
        "blobs": lambda: _blobs(sidecar, settings),
        "publisher": lambda: _publisher(sidecar, settings),
        "secrets": lambda: _secrets(sidecar, settings),
        "invoker": lambda: _invoker(sidecar),
        "workflows": lambda: _workflows(sidecar),
    }
    wanted = [f.name for f in dataclasses.fields(kind) if f.name != "close"]
    unknown = sorted(set(wanted) - makers.keys())
    if unknown:
        raise TypeError(f"{kind.__name__} declares ports the Dapr adapters do not provide: {unknown}")
    made = {name: makers[name]() for name in wanted}

    async def close() -> None:
        # Ports with connections of their own (the workflow engine's) close before the sidecar's.
        for port in made.values():
            if port is not sidecar and hasattr(port, "close"):
                await port.close()
        await sidecar.close()

    return kind(**made, close=close)


# Each returns the port's Protocol type, so that the type checker holds every adapter to it.
def _probe(sidecar: Sidecar) -> SidecarProbe:
    return sidecar


def _state(sidecar: Sidecar, settings: ServiceSettings) -> StateStore:
    return DaprStateStore(sidecar, settings.statestore)


def _blobs(sidecar: Sidecar, settings: ServiceSettings) -> BlobStore:
    return DaprBlobStore(sidecar, settings.blobstore)


def _publisher(sidecar: Sidecar, settings: ServiceSettings) -> EventPublisher:
    return DaprPublisher(sidecar, settings.pubsub, f"/daprml/{settings.app_id}", settings.topic_prefix)


def _secrets(sidecar: Sidecar, settings: ServiceSettings) -> SecretStore:
    return DaprSecretStore(sidecar, settings.secretstore)


def _invoker(sidecar: Sidecar) -> ServiceInvoker:
    return DaprInvoker(sidecar)


def _workflows(sidecar: Sidecar) -> Workflows:
    return DaprWorkflows(sidecar)


async def deliver(
    envelope: bytes, event_type: events.EventType, handler: events.EventHandler, app_id: str = "", topic: str = ""
) -> str:
    """What Dapr should do with one delivery, every failure logged with its reason (Dapr moves
    the event to the dead-letter topic without it). SUCCESS; DROP for an event no retry can make
    valid (the envelope or payload is invalid, or the handler raised InvalidEvent): Dapr moves it
    to the dead-letter topic at once; RETRY when the handler failed otherwise (a sidecar or store
    down, a bug): the resiliency policy backs off and tries again, a bounded number of times,
    then Dapr moves it to the dead-letter topic."""
    where = f"{app_id or 'this app'} on {topic or events.topic_of(event_type)}"
    try:
        attributes, payload = events.decode(envelope, event_type)
    except events.InvalidEvent as exc:
        log.warning("dropping an invalid %s event (%s; dead-lettered): %s", event_type, where, exc)
        return "DROP"
    event_id = attributes.get("id")
    try:
        await handler(attributes, payload)
    except events.InvalidEvent as exc:
        log.warning("dropping %s event %s (%s; dead-lettered): %s", event_type, event_id, where, exc)
        return "DROP"
    except (SidecarUnavailable, ConcurrencyConflict) as exc:
        log.warning("%s event %s will be retried (%s): %s", event_type, event_id, where, exc)
        return "RETRY"
    except Exception as exc:
        log.error("%s event %s failed (%s), will be retried: %r", event_type, event_id, where, exc, exc_info=exc)
        return "RETRY"
    return "SUCCESS"


DeadLetterHandler = Callable[[bytes], Awaitable[None]]
"""Receives each message of the dead-letter topic as it was published (bytes: usually a
CloudEvent, but whatever reached the topic)."""

DEAD_LETTER_ROUTE = f"/internal/events/{events.DEAD_LETTERS}"


def declare_subscriptions(
    app: FastAPI,
    settings: ServiceSettings,
    subscriptions: Mapping[events.EventType, events.EventHandler],
    every_replica: Mapping[events.EventType, events.EventHandler] | None = None,
    dead_letters: DeadLetterHandler | None = None,
) -> None:
    """Serves /dapr/subscribe for the app (the sidecar asks it at start) and one delivery
    route per event type, /internal/events/<topic>, which hands each event to its handler.
    Those of `every_replica` come through the replica pub/sub component instead, on
    /internal/events/replica/<topic>. Every subscription names the deployment's dead-letter
    topic (events.dead_letter_topic), where Dapr moves what a handler drops or keeps failing
    (with the replica component, through the same broker). `dead_letters`, for the service that
    keeps them, subscribes to that topic itself (raw, so that nothing on it is unreadable)."""
    dapr_app = DaprApp(app)
    dead_letter_topic = events.dead_letter_topic(settings.topic_prefix)
    routes = [(settings.pubsub, "", subscriptions), (settings.replica_pubsub, "replica/", every_replica or {})]
    for pubsub, route, handlers in routes:
        for event_type, handler in handlers.items():
            topic = events.topic_of(event_type, settings.topic_prefix)
            dapr_app.subscribe(
                pubsub=pubsub,
                topic=topic,
                route=f"/internal/events/{route}{events.topic_of(event_type)}",
                dead_letter_topic=dead_letter_topic,
            )(_delivery(event_type, handler, settings, topic))
    if dead_letters is not None:
        # No dead-letter topic for the dead-letter topic: what fails here is logged, and what
        # fails for want of the state store stays in the broker to be delivered again.
        dapr_app.subscribe(
            pubsub=settings.pubsub,
            topic=dead_letter_topic,
            metadata={"rawPayload": "true"},
            route=DEAD_LETTER_ROUTE,
        )(_dead_letter_delivery(dead_letters, settings))
    for api_route in app.routes:
        if str(getattr(api_route, "path", "")).startswith(("/internal/events/", "/dapr/")):
            api_route.include_in_schema = False  # type: ignore[attr-defined]  # the sidecar's, not an API


def _from_sidecar(request: Request, settings: ServiceSettings) -> bool:
    """Whether a delivery carries the app token, checked here too: the gateway's middleware does
    not ask for it (clients call it, with API keys), yet its deliveries must come from its sidecar."""
    token = settings.app_api_token
    if token is None:
        return True
    given = request.headers.get("dapr-api-token", "")
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


def _refused() -> JSONResponse:
    return JSONResponse({"detail": "event deliveries come from this app's Dapr sidecar only"}, status_code=401)


def _delivery(
    event_type: events.EventType, handler: events.EventHandler, settings: ServiceSettings, topic: str
) -> Callable[[Request], Any]:
    async def receive(request: Request) -> Any:
        if not _from_sidecar(request, settings):
            return _refused()
        return {"status": await deliver(await request.body(), event_type, handler, settings.app_id, topic)}

    return receive


def _dead_letter_delivery(handler: DeadLetterHandler, settings: ServiceSettings) -> Callable[[Request], Any]:
    async def receive(request: Request) -> Any:
        if not _from_sidecar(request, settings):
            return _refused()
        try:
            wrapper = json.loads(await request.body())
            message = base64.b64decode(wrapper["data_base64"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping a dead letter the sidecar did not wrap as a raw payload: %r", exc)
            return {"status": "DROP"}
        try:
            await handler(message)
        except (SidecarUnavailable, ConcurrencyConflict) as exc:
            log.warning("a dead letter could not be kept yet, will be retried: %s", exc)
            return {"status": "RETRY"}
        except Exception as exc:
            log.error("dropping a dead letter that could not be kept: %r (%.200r)", exc, message, exc_info=exc)
            return {"status": "DROP"}
        return {"status": "SUCCESS"}

    return receive
