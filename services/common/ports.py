"""The ports through which services reach infrastructure. Dapr implements them in
dapr_adapters; unit and API tests use the in-memory fakes in tests/fakes.py."""

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from services.common.errors import ClientError
from services.common.events import EventType, InstanceHeartbeat, Topic


class ConcurrencyConflict(Exception):
    """A write named an ETag that is no longer current: someone else wrote first."""


class NotFound(LookupError):
    """The key, blob or secret does not exist."""


class BlobTooLarge(ClientError):
    """A blob bigger than the blob store takes in one piece: what was asked makes too much
    (a model, a holdout), and asking again would too."""

    status = 413


class SidecarUnavailable(RuntimeError):
    """The sidecar did not answer, or answered with an error that is not the caller's fault.

    str() is the whole story, for the log (addresses, component names, the store's words);
    `public` says what failed in words for the client, who can only wait and try again."""

    def __init__(self, detail: str, public: str = "a service this request needs is unavailable"):
        super().__init__(detail)
        self.public = public


class AnswerCutShort(SidecarUnavailable):
    """An answer from another service that ended before the length its app declared: the app
    died while answering, after its sidecar had passed on the status (a 200, say)."""


@dataclass(frozen=True)
class Versioned:
    value: bytes
    etag: str


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class SidecarInfo:
    app_id: str
    runtime_version: str
    components: list[dict[str, Any]] = field(default_factory=list)


class StateStore(Protocol):
    async def get(self, key: str) -> Versioned | None: ...

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        """Without an ETag the last write wins; with one, a stale ETag raises ConcurrencyConflict."""

    async def create(self, key: str, value: bytes) -> None:
        """Writes only if the key does not exist yet, else raises ConcurrencyConflict. Keys made
        this way must afterwards be updated with their ETag."""

    async def delete(self, key: str, etag: str | None = None) -> None: ...


class EventPublisher(Protocol):
    async def publish(
        self, event_type: EventType, payload: BaseModel, subject: str | None = None, event_id: str | None = None
    ) -> None:
        """event_id: a stable id lets subscribers drop the copies an at-least-once retry sends."""

    async def publish_many(self, event_type: EventType, payloads: list[BaseModel]) -> None:
        """Several events of one type in one call; raises SidecarUnavailable when any of them was
        not accepted (the others may have been)."""

    async def republish(self, topic: Topic, envelope: dict[str, Any]) -> None:
        """Sends a CloudEvent again as it is (its id, source, type, data), to one of this
        deployment's topics: a dead letter replayed."""


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """Raises NotFound when there is no blob under the key."""

    async def delete(self, key: str) -> None: ...


class SecretStore(Protocol):
    async def get(self, name: str) -> dict[str, str]:
        """Raises NotFound when the secret does not exist."""


@dataclass
class StreamedReply:
    """A reply whose body is read as it arrives; close() must be called when done."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]  # raises AnswerCutShort at its end when it is shorter than `length`
    close: Callable[[], Awaitable[None]]
    length: int | None = None  # the bytes the app said it sent, when it said so


def sidecar_error_code(body: bytes) -> str | None:
    """The `ERR_...` code of an answer a sidecar gave itself rather than the app it called (the
    app unreachable, no instance registered, ...): daprd's own error bodies are JSON naming one."""
    try:
        error = json.loads(body)
    except ValueError:
        return None
    code = error.get("errorCode") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code.startswith("ERR_") else None


class ServiceInvoker(Protocol):
    async def call(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply: ...

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        """Streams a request to another service and its reply back, without holding either whole.
        `method` may carry a query string."""


class SidecarProbe(Protocol):
    async def healthy(self) -> bool: ...

    async def info(self) -> SidecarInfo: ...

    async def announce(self, heartbeat: InstanceHeartbeat) -> None:
        """Tells every gateway replica, through this sidecar, that this instance is alive (a
        heartbeat on the replica pub/sub component); raises SidecarUnavailable when it cannot."""


class WorkflowContext(Protocol):
    """What a workflow function sees. It must be deterministic: it is replayed from its history
    after a restart, so all I/O happens in activities, whose results it gets by yielding."""

    instance_id: str

    def activity(self, name: str, input: Any = None) -> Any:
        """A task to yield: `result = yield ctx.activity("fit", job)`. An activity that keeps
        failing (after its retries) raises inside the workflow at that yield; one that raises
        a ClientError (its input is at fault) is not retried."""

    def status(self, value: Any) -> None:
        """The instance's custom status (JSON-ready), for whoever watches its progress."""

    def event(self, name: str, timeout_s: float) -> Any:
        """A task to yield: `data = yield ctx.event("decision", 10)`, the data of the next
        event of that name raised for the instance (Workflows.raise_event; one raised before is
        kept until asked for). Raises TimeoutError at the yield when none comes in time."""

    def now(self) -> datetime:
        """The workflow's clock: the same at every replay (never datetime.now() in a workflow)."""

    def continue_as_new(self, input: Any) -> None:
        """Ends this run of the instance and starts it again on `input`, with a fresh history
        (events raised and not taken yet are kept): return right after calling it. Bounds the
        history, hence the replay, of a workflow that runs long."""

    def patched(self, change: str) -> bool:
        """Whether this run has the change so named (a new activity, say): True for a run
        started by code that has it, False for one whose history began before it, at every
        replay, so that an instance in flight across an upgrade replays as it ran. Ask at the
        start of the workflow function: the answer holds for the whole run."""


WorkflowFunction = Callable[[WorkflowContext, Any], Generator[Any, Any, Any]]
ActivityFunction = Callable[[Any], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class WorkflowRun:
    """One workflow instance as the engine reports it."""

    instance_id: str
    status: str  # PENDING, RUNNING, COMPLETED, FAILED, TERMINATED, SUSPENDED
    custom_status: Any = None
    output: Any = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Workflows(Protocol):
    """Durable workflows: a workflow function and its activities, run by an engine that keeps
    their history, so that an instance survives the process that started it."""

    def define(self, name: str, workflow: WorkflowFunction, activities: Mapping[str, ActivityFunction]) -> None:
        """Before start(): the workflow and the activities it calls by name."""

    async def start(self) -> None:
        """Connects to the engine and takes work: interrupted instances resume from here."""

    async def schedule(self, name: str, instance_id: str, input: Any) -> bool:
        """Starts an instance unless one with that id exists already; says whether it started one."""

    async def run(self, instance_id: str) -> WorkflowRun | None: ...

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        """Sends an event to an instance (WorkflowContext.event); one for an instance that has
        finished, or does not exist, is dropped by the engine."""

    async def terminate(self, instance_id: str, reason: str) -> bool:
        """Ends an instance that has not finished: it becomes TERMINATED, with `reason` as its
        output. Says whether there was such an instance. An activity it is running is not
        stopped (Dapr cannot): the service stops that itself."""


class ScheduleRefused(ClientError):
    """The scheduler refused a job's schedule: asking again with the same one changes nothing."""

    status = 422


class Jobs(Protocol):
    """Dapr Jobs: work the scheduler (a Dapr control-plane service) triggers on this app at the
    times a schedule names, kept by the scheduler, so that a job outlives the process that
    scheduled it. When it fires, the app receives it on its job route (ServiceSpec.jobs).

    Names are the service's own, `<kind>.<key>` (`drift-check.iris`): the adapter puts the
    deployment's prefix before them, as topics get theirs, so that stacks sharing a scheduler
    never trigger each other's jobs."""

    async def schedule(
        self, name: str, schedule: str, data: Mapping[str, Any] | None = None, overwrite: bool = True
    ) -> None:
        """Schedules the job, replacing one of that name (unless `overwrite` is False: then
        ConcurrencyConflict when it exists). `schedule` as the scheduler reads it (`@every 1h`,
        cron with seconds); ScheduleRefused when it refuses it. `data` comes back with each trigger."""

    async def delete(self, name: str) -> None:
        """Unschedules the job; a name that is not scheduled is not an error."""


JobHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Handles a job of one kind when it fires: gets the job's key (`iris` of `drift-check.iris`) and
the data it was scheduled with. Returning is success; a ClientError means no retry can help (the
trigger is dropped, logged); anything else fails the trigger, which the scheduler retries (by
default 3 times, 1 s apart) before it waits for the next one."""


async def _nothing_to_close() -> None:
    return None


@dataclass(kw_only=True)
class SidecarPorts:
    """What every service has: its sidecar's probe, and what to close at shutdown. Each service
    extends it with the ports it uses, and only those (services/<name>/ports.py)."""

    probe: SidecarProbe
    close: Callable[[], Awaitable[None]] = _nothing_to_close
