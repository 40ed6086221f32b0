"""In-memory fakes of our own ports, for unit and API tests. Not an imitation of Dapr: they
implement services.common.ports and nothing else."""

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from services.common.events import EventType, InstanceHeartbeat, Topic
from services.common.ports import (
    ActivityFunction,
    BlobStore,
    ConcurrencyConflict,
    EventPublisher,
    Jobs,
    NotFound,
    Reply,
    ScheduleRefused,
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
)


class FakeProbe:
    def __init__(self, healthy: bool = True, runtime_version: str = "1.18.2"):
        self.is_healthy, self.runtime_version = healthy, runtime_version
        self.heartbeats: list[InstanceHeartbeat] = []

    async def healthy(self) -> bool:
        return self.is_healthy

    async def info(self) -> SidecarInfo:
        return SidecarInfo(
            app_id="fake", runtime_version=self.runtime_version, components=[{"name": "state", "type": "state.fake"}]
        )

    async def announce(self, heartbeat: InstanceHeartbeat) -> None:
        if not self.is_healthy:
            raise SidecarUnavailable("the fake sidecar is down", "this service's Dapr sidecar does not answer")
        self.heartbeats.append(heartbeat)


class FakeStateStore:
    def __init__(self) -> None:
        self.items: dict[str, Versioned] = {}
        self._etags = itertools.count(1)

    async def get(self, key: str) -> Versioned | None:
        return self.items.get(key)

    def _check(self, key: str, etag: str | None) -> None:
        if etag is not None and (key not in self.items or self.items[key].etag != etag):
            raise ConcurrencyConflict(f"stale ETag for {key!r}")

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        self._check(key, etag)
        self.items[key] = Versioned(value, str(next(self._etags)))

    async def create(self, key: str, value: bytes) -> None:
        if key in self.items:
            raise ConcurrencyConflict(f"{key!r} already exists")
        await self.save(key, value)

    async def delete(self, key: str, etag: str | None = None) -> None:
        self._check(key, etag)
        self.items.pop(key, None)


class SlowStateStore(FakeStateStore):
    """Yields between every read and write, so concurrent changes (commits, registrations) interleave."""

    async def get(self, key: str) -> Versioned | None:
        await asyncio.sleep(0)
        return await super().get(key)

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        await asyncio.sleep(0)
        await super().save(key, value, etag)

    async def create(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        if key in self.items:
            raise ConcurrencyConflict(f"{key!r} exists")
        await FakeStateStore.save(self, key, value)  # the check and the write at once, as a store does


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    async def get(self, key: str) -> bytes:
        if key not in self.blobs:
            raise NotFound(f"no blob {key!r}")
        return self.blobs[key]

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)


class FakePublisher:
    """Records what is published; while `down`, refuses as an unreachable pub/sub would."""

    def __init__(self, down: bool = False) -> None:
        self.sent: list[tuple[EventType, BaseModel, str | None]] = []
        self.ids: list[str | None] = []
        self.republished: list[tuple[Topic, dict[str, Any]]] = []
        self.down = down

    async def publish(
        self, event_type: EventType, payload: BaseModel, subject: str | None = None, event_id: str | None = None
    ) -> None:
        if self.down:
            raise SidecarUnavailable("pubsub is down")
        self.sent.append((event_type, payload, subject))
        self.ids.append(event_id)

    async def publish_many(self, event_type: EventType, payloads: list[BaseModel]) -> None:
        if self.down:
            raise SidecarUnavailable("pubsub is down")
        for payload in payloads:
            self.sent.append((event_type, payload, None))
            self.ids.append(None)

    async def republish(self, topic: Topic, envelope: dict[str, Any]) -> None:
        if self.down:
            raise SidecarUnavailable("pubsub is down")
        self.republished.append((topic, envelope))


class FakeSecretStore:
    def __init__(self, secrets: dict[str, dict[str, str]] | None = None):
        self.secrets = secrets or {}

    async def get(self, name: str) -> dict[str, str]:
        if name not in self.secrets:
            raise NotFound(f"no secret {name!r}")
        return self.secrets[name]


class FakeInvoker:
    """Answers calls from a table of (app_id, method) -> Reply, or with a callable."""

    def __init__(self, replies: dict[tuple[str, str], Any] | None = None):
        self.replies = replies or {}
        self.calls: list[tuple[str, str, str]] = []
        self.forwarded: list[tuple[str, str, str, dict[str, str], bytes]] = []

    async def call(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        self.calls.append((app_id, method, http_verb))
        reply = self.replies.get((app_id, method), Reply(404, b'{"detail": "no such method"}'))
        answer: Reply = await reply(body) if callable(reply) else reply
        return answer

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        received = b"".join([chunk async for chunk in body])
        reply = await self.call(app_id, method, http_verb, received, headers)
        self.forwarded.append((app_id, method, http_verb, headers, received))

        async def stream() -> AsyncIterator[bytes]:
            yield reply.body

        async def close() -> None:
            return None

        return StreamedReply(reply.status, {"content-type": reply.content_type}, stream(), close)


class FakeJobs:
    """Keeps scheduled jobs by name (with their schedule and data); refuses a schedule in
    `refused`, as the scheduler refuses one it cannot read; while `down`, fails as an
    unreachable scheduler would. A test fires a job by calling the app's job route."""

    def __init__(self, refused: tuple[str, ...] = (), down: bool = False) -> None:
        self.jobs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.refused, self.down = refused, down

    async def schedule(
        self, name: str, schedule: str, data: Mapping[str, Any] | None = None, overwrite: bool = True
    ) -> None:
        if self.down:
            raise SidecarUnavailable("the scheduler is down")
        if schedule in self.refused:
            raise ScheduleRefused(f"the scheduler refused the schedule {schedule!r}")
        if name in self.jobs and not overwrite:
            raise ConcurrencyConflict(f"job {name!r} exists already")
        self.jobs[name] = (schedule, dict(data or {}))

    async def delete(self, name: str) -> None:
        if self.down:
            raise SidecarUnavailable("the scheduler is down")
        self.jobs.pop(name, None)


P = TypeVar("P", bound=SidecarPorts)

# Each returns the port's Protocol type, so that the type checker holds every fake to it.
FAKES: dict[str, Callable[[], Any]] = {}


def _fake(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(make: Callable[[], Any]) -> Callable[[], Any]:
        FAKES[name] = make
        return make

    return register


@_fake("probe")
def _probe() -> SidecarProbe:
    return FakeProbe()


@_fake("state")
def _state() -> StateStore:
    return FakeStateStore()


@_fake("blobs")
def _blobs() -> BlobStore:
    return FakeBlobStore()


@_fake("publisher")
def _publisher() -> EventPublisher:
    return FakePublisher()


@_fake("secrets")
def _secrets() -> SecretStore:
    return FakeSecretStore()


@_fake("invoker")
def _invoker() -> ServiceInvoker:
    return FakeInvoker()


@_fake("workflows")
def _workflows() -> Workflows:
    return FakeWorkflows()


@_fake("jobs")
def _jobs() -> Jobs:
    return FakeJobs()


def fake_ports(kind: type[P], **overrides: Any) -> P:
    """The ports `kind` declares, each an in-memory fake unless given."""
    wanted = [f.name for f in dataclasses.fields(kind) if f.name != "close"]
    return kind(**{name: overrides[name] if name in overrides else FAKES[name]() for name in wanted})


@dataclass
class _Step:
    name: str
    input: Any


@dataclass
class _Wait:
    """A wait for an event (WorkflowContext.event)."""

    name: str
    timeout_s: float


class FakeWorkflowContext:
    def __init__(self, instance_id: str, run: "FakeRun"):
        self.instance_id, self._run = instance_id, run

    def activity(self, name: str, input: Any = None) -> Any:
        return _Step(name, input)

    def status(self, value: Any) -> None:
        self._run.custom_status = value
        self._run.statuses.append(value)

    def event(self, name: str, timeout_s: float) -> Any:
        return _Wait(name, timeout_s)

    def now(self) -> datetime:
        return self._run.clock

    def continue_as_new(self, input: Any) -> None:
        self._run.continued_with = input

    def patched(self, change: str) -> bool:
        return change not in self._run.made_before


@dataclass
class FakeRun:
    instance_id: str
    input: Any
    name: str = ""  # the workflow's, as scheduled
    status: str = "PENDING"
    custom_status: Any = None
    output: Any = None
    error: str | None = None
    statuses: list[Any] = dataclasses.field(default_factory=list)
    # The workflow's clock: it moves only when a wait times out (by the wait's timeout).
    clock: datetime = dataclasses.field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    events: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # raised, not yet taken
    steps: Any = None  # the workflow's generator while it waits for an event
    continued_with: Any = None  # the input of the next run, once it continued as new
    runs: int = 1
    waiting: "_Wait | None" = None
    made_before: frozenset[str] = frozenset()  # the changes (WorkflowContext.patched) this run predates


class FakeWorkflows:
    """Runs a workflow function in-process when scheduled: each yielded activity is awaited and
    its result (or its error) sent back, as the engine would, without history or replay. A wait
    for an event takes one raised before; else a wait of at most `instant_timeout_s` times out
    at once (the clock moves on by its timeout), and a longer one suspends the run until
    raise_event or fire_timeout."""

    def __init__(self, run_on_schedule: bool = True, instant_timeout_s: float = 300) -> None:
        self.definitions: dict[str, tuple[WorkflowFunction, Mapping[str, ActivityFunction]]] = {}
        self.runs: dict[str, FakeRun] = {}
        self.started = False
        self.run_on_schedule = run_on_schedule
        self.instant_timeout_s = instant_timeout_s
        self.activity_calls: list[str] = []
        self.before_activity: Callable[[str], Any] | None = None  # a test's hook (say, to raise an event)
        self.down = False  # the engine away: scheduling and raising fail as the sidecar's adapter does
        self.scheduled: list[str] = []  # every instance id asked for, in order
        self.made_before: frozenset[str] = frozenset()  # changes the runs scheduled from now on predate

    def define(self, name: str, workflow: WorkflowFunction, activities: Mapping[str, ActivityFunction]) -> None:
        self.definitions[name] = (workflow, activities)

    async def start(self) -> None:
        self.started = True

    async def schedule(self, name: str, instance_id: str, input: Any) -> bool:
        self.scheduled.append(instance_id)
        if self.down:
            raise SidecarUnavailable(f"scheduling workflow {instance_id}: the engine is away")
        if instance_id in self.runs:
            return False
        self.runs[instance_id] = FakeRun(instance_id, input, name=name, made_before=self.made_before)
        if self.run_on_schedule:
            await self.drive(name, instance_id)
        return True

    async def drive(self, name: str, instance_id: str, sent: Any = None, failed: Exception | None = None) -> None:
        workflow, activities = self.definitions[name]
        run = self.runs[instance_id]
        if run.status == "TERMINATED":
            return
        run.status = "RUNNING"
        if run.steps is None:
            run.steps = workflow(FakeWorkflowContext(instance_id, run), run.input)
        steps, run.waiting = run.steps, None
        try:
            while True:
                step = steps.throw(failed) if failed is not None else steps.send(sent)
                sent, failed = None, None
                if isinstance(step, _Wait):
                    queued = run.events.get(step.name.lower())
                    if queued:
                        sent = queued.pop(0)
                    elif step.timeout_s <= self.instant_timeout_s:
                        run.clock += timedelta(seconds=step.timeout_s)
                        failed = TimeoutError(f"no {step.name} event in {step.timeout_s} s")
                    else:
                        run.waiting = step
                        return
                    continue
                self.activity_calls.append(step.name)
                if self.before_activity is not None:
                    self.before_activity(step.name)
                try:
                    sent = await activities[step.name](step.input)
                except Exception as exc:
                    failed = exc
                if run.status == "TERMINATED":  # as the engine does, it ignores what came after
                    return
        except StopIteration as done:
            run.steps = None
            if run.continued_with is not None:  # a fresh run on the new input, events kept
                run.input, run.continued_with, run.runs = run.continued_with, None, run.runs + 1
                await self.drive(name, instance_id)
                return
            run.status, run.output = "COMPLETED", done.value
        except Exception as exc:
            run.status, run.error, run.steps = "FAILED", str(exc), None

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        if self.down:
            raise SidecarUnavailable(f"raising {name} for workflow {instance_id}: the engine is away")
        run = self.runs.get(instance_id)
        if run is None or run.status in ("COMPLETED", "FAILED", "TERMINATED"):
            return  # dropped, as the engine drops it
        run.events.setdefault(name.lower(), []).append(data)  # names are case-insensitive there
        if run.waiting is not None and run.waiting.name.lower() == name.lower():
            await self.drive(run.name, instance_id, sent=run.events[name.lower()].pop(0))

    async def fire_timeout(self, instance_id: str) -> None:
        """The suspended wait of the run times out (its clock moves on by its timeout)."""
        run = self.runs[instance_id]
        assert run.waiting is not None, "the run waits for no event"
        run.clock += timedelta(seconds=run.waiting.timeout_s)
        await self.drive(run.name, instance_id, failed=TimeoutError(f"no {run.waiting.name} event"))

    async def terminate(self, instance_id: str, reason: str) -> bool:
        found = self.runs.get(instance_id)
        if found is None or found.status in ("COMPLETED", "FAILED", "TERMINATED"):
            return False
        found.status, found.output = "TERMINATED", reason
        return True

    async def run(self, instance_id: str) -> WorkflowRun | None:
        found = self.runs.get(instance_id)
        if found is None:
            return None
        return WorkflowRun(
            instance_id=instance_id,
            status=found.status,
            custom_status=found.custom_status,
            output=found.output,
            error=found.error,
        )
