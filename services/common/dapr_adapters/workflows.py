"""The Workflows port on the sidecar's workflow engine (dapr-ext-workflow).

Traces: daprd 1.18.2 carries the trace context of the call that starts a workflow down to each
of its activities (the workflow's history keeps it; each activity request hands the activity
span's context to the SDK, whose worker opens a span `activity: <name>` from it with the
global tracer provider, services.common.tracing's). The SDK's client sends no context with that
call, though: the engine's calls here carry it as gRPC metadata (EngineCalls), so the
activities of a job started for a request or an event are part of its trace."""

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import grpc
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as engine_stubs
from dapr.ext.workflow._durabletask.task import NonRetryableError
from dapr.ext.workflow.logger.options import LoggerOptions

from services.common.dapr_adapters.sidecar import (
    NOT_ANSWERING,
    SDK_ERRORS,
    Sidecar,
    deadline,
    sdk_message,
    with_trace,
)
from services.common.errors import ClientError
from services.common.ports import ActivityFunction, SidecarUnavailable, WorkflowFunction, WorkflowRun
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)

UNAVAILABLE = "the workflow engine is unavailable"
_ENGINE_ERRORS = (*SDK_ERRORS, grpc.RpcError)


class _Context:
    """The WorkflowContext port over Dapr's: activities by name, each with the retry policy."""

    def __init__(self, ctx: DaprWorkflowContext, retry: RetryPolicy):
        self._ctx, self._retry = ctx, retry
        self.instance_id = ctx.instance_id

    def activity(self, name: str, input: Any = None) -> Any:
        return self._ctx.call_activity(name, input=input, retry_policy=self._retry)

    def status(self, value: Any) -> None:
        self._ctx.set_custom_status(json.dumps(value))

    def event(self, name: str, timeout_s: float) -> Any:
        # With a timeout the SDK forgets the waiter when its timer fires, so an event raised
        # later is kept for the next wait instead of completing the abandoned one.
        return self._ctx.wait_for_external_event(name, timeout=timedelta(seconds=timeout_s))

    def now(self) -> datetime:
        return self._ctx.current_utc_datetime.replace(tzinfo=UTC)

    def continue_as_new(self, input: Any) -> None:
        self._ctx.continue_as_new(input, save_events=True)

    def patched(self, change: str) -> bool:
        # The engine records the patches a run applied in its history (dapr 1.17+ versioning).
        return bool(self._ctx.is_patched(change))


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
            raise SidecarUnavailable(f"sidecar at {self.sidecar.http_url} is not ready for workflows", NOT_ANSWERING)
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
        intercept_engine(self._client, settings)

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
        except _ENGINE_ERRORS as exc:
            # Two requests for one id racing: the loser finds the winner's instance.
            if await self.run(instance_id) is not None:
                return False
            raise SidecarUnavailable(f"scheduling workflow {instance_id}: {sdk_message(exc)}", UNAVAILABLE) from exc
        return True

    async def run(self, instance_id: str, attempts: int = 3) -> WorkflowRun | None:
        # A read can land while the engine saves the workflow, whose state spans several keys;
        # daprd then answers UNKNOWN ("inbox key ... missing from state store"). Reading is
        # harmless to repeat: a few tries, a moment apart, before calling the engine unavailable.
        for attempt in range(attempts):
            try:
                state = await asyncio.to_thread(self._engine().get_workflow_state, instance_id)
                break
            except _ENGINE_ERRORS as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise SidecarUnavailable(f"reading workflow {instance_id}: {sdk_message(exc)}", UNAVAILABLE) from exc
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

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        try:
            await asyncio.to_thread(self._engine().raise_workflow_event, instance_id, name, data=data)
        except _ENGINE_ERRORS as exc:
            raise SidecarUnavailable(
                f"raising {name} for workflow {instance_id}: {sdk_message(exc)}", UNAVAILABLE
            ) from exc

    async def terminate(self, instance_id: str, reason: str) -> bool:
        found = await self.run(instance_id)
        if found is None or found.status in ("COMPLETED", "FAILED", "TERMINATED"):
            return False
        try:
            await asyncio.to_thread(self._engine().terminate_workflow, instance_id, output=reason)
        except _ENGINE_ERRORS as exc:
            raise SidecarUnavailable(f"terminating workflow {instance_id}: {sdk_message(exc)}", UNAVAILABLE) from exc
        return True

    async def close(self) -> None:
        for done in (self._runtime.shutdown if self._runtime else None, self._client.close if self._client else None):
            if done is not None:
                await asyncio.to_thread(done)
        self._runtime = self._client = None


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class EngineCalls(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc has no types
    """The workflow client's calls get a deadline (sidecar.deadline) and carry the current trace
    context as gRPC metadata (daprd's gRPC API reads `traceparent` there)."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        bounded = _CallDetails(
            details.method,
            deadline(details.method, details.timeout, self.settings),
            with_trace(details.metadata),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )
        return continuation(bounded, request)


def intercept_engine(client: DaprWorkflowClient, settings: ServiceSettings) -> bool:
    """Puts EngineCalls in front of the workflow client's gRPC stub. DaprWorkflowClient
    takes no interceptors of ours, so this reaches into the pinned SDK (1.18.3); a later one
    laid out otherwise gets a warning and calls the engine without our deadline or the trace context."""
    inner = getattr(client, "_DaprWorkflowClient__obj", None)
    channel = getattr(inner, "_channel", None)
    if inner is None or channel is None or not hasattr(inner, "_stub"):
        log.warning(
            "dapr-ext-workflow changed: calls to the workflow engine go without a deadline, and workflows "
            "started here will not join the trace that starts them"
        )
        return False
    traced = grpc.intercept_channel(channel, EngineCalls(settings))
    inner._stub = engine_stubs.TaskHubSidecarServiceStub(traced)  # type: ignore[no-untyped-call]
    return True


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
