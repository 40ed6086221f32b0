"""Worker processes for the CPU-bound steps of training jobs (services/training/worker.py),
at most `slots` tasks at a time, each task in a process of its own that can be killed.

concurrent.futures' ProcessPoolExecutor could not do this: one dead worker broke the whole
pool for good ("the process pool is not usable anymore"), and no task of it can be stopped.
Here a task that is canceled, runs out of time or of memory, or whose worker dies, costs only
its own worker, which is replaced.

Workers are started with fork+exec of a fresh interpreter, never a bare fork: the service's
process holds gRPC threads, which a fork would copy in a broken state (and whose fork handlers
crashed children before their exec: fork_safety.py turns them off). They are started from
the event loop's thread, which lives as long as the service: the kernel kills a worker when the
thread that started it ends (PR_SET_PDEATHSIG), not only when the process does.
"""

import asyncio
import logging
import os
import pickle
import signal
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.common.errors import ClientError
from services.training.worker import HEADER

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # where `python -m services.training.worker` runs
READ_CHUNK = 16 * 1024 * 1024  # read from a worker this much at a time (answers are up to ~48 MB)
REMEMBERED_CANCELS = 1000  # job ids whose later steps are refused at once; the oldest are forgotten


class Stopped(ClientError):
    """A step stopped on purpose: trying it again would end the same way, so the workflow does
    not (the activity adapter makes a ClientError non-retryable)."""

    status = 422


class Canceled(Stopped):
    pass


class OutOfTime(Stopped):
    pass


class OutOfMemory(Stopped):
    pass


def out_of_time(key: str, deadline: datetime) -> OutOfTime:
    return OutOfTime(
        f"job {key} was stopped at its wall-clock limit (it had until {deadline:%Y-%m-%d %H:%M:%S} UTC; "
        "the limit is the setting job_timeout_s, DAPRML_JOB_TIMEOUT_S)"
    )


class WorkerDied(Exception):
    """The worker process ended in the middle of a task (killed, or crashed): the workflow's
    retry policy runs the step again, in a new worker."""


class CannotStart(Exception):
    """No worker process could be started."""


class Worker:
    """One worker process, seen from the service."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.pid = process.pid

    @classmethod
    async def start(
        cls, memory_bytes: int, preload: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> "Worker":
        argv = [sys.executable, "-m", "services.training.worker", str(os.getpid()), str(memory_bytes), *preload]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
                env={**os.environ, **env},
                limit=READ_CHUNK,
            )
        except OSError as exc:
            raise CannotStart(f"running {sys.executable}: {exc}") from exc
        worker = cls(process)
        try:
            async with asyncio.timeout(timeout_s):
                await worker._receive()
        except TimeoutError:
            worker.kill()
            raise CannotStart(f"a worker process was not ready {timeout_s:g} s after it started") from None
        except WorkerDied as exc:
            raise CannotStart(f"a worker process ended before it was ready: {exc}") from None
        except BaseException:  # shutdown while it started
            worker.kill()
            raise
        return worker

    def alive(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()

    async def call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """What the function returns in the worker; what it raised, raised here."""
        assert self.process.stdin is not None
        try:
            # The header apart: the rows are the bulk of a task, not to be copied once more.
            task = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.write(HEADER.pack(len(task)))
            self.process.stdin.write(memoryview(task))  # what the pipe does not take at once is copied once, not twice
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerDied(await self._death()) from None
        kind, value = await self._receive()
        if kind == "ok":
            return value
        if kind == "memory":
            raise MemoryError(value)
        raise value

    async def _receive(self) -> tuple[str, Any]:
        assert self.process.stdout is not None
        try:
            header = await self.process.stdout.readexactly(HEADER.size)
            data = await self.process.stdout.readexactly(HEADER.unpack(header)[0])
        except asyncio.IncompleteReadError:
            raise WorkerDied(await self._death()) from None
        try:
            kind, value = pickle.loads(data)
        except Exception as exc:  # an exception whose class cannot be rebuilt here
            return "raised", RuntimeError(f"the worker's answer could not be read: {exc!r}")
        return kind, value

    async def _death(self) -> str:
        """Why the process ended, once it has (it closed its pipes: it is ending)."""
        try:
            code = await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.kill()
            return f"worker process {self.pid} stopped answering and was killed"
        if code < 0:
            name = signal.Signals(-code).name
            cause = " (the system's out-of-memory killer does this too)" if -code == signal.SIGKILL else ""
            return f"worker process {self.pid} was killed by {name}{cause}"
        return f"worker process {self.pid} exited with code {code}"

    async def stop(self) -> None:
        self.kill()
        await self.process.wait()


class Step:
    """One step of a job in the pool: waiting for a slot, then in a worker."""

    def __init__(self, key: str):
        self.key = key
        self.waiting: asyncio.Future[Any] | None = None
        self.worker: Worker | None = None
        self.canceled = False


class Pool:
    def __init__(
        self,
        slots: int,
        memory_mb: int = 0,
        preload: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 120.0,
    ):
        self.slots, self.memory_mb = slots, memory_mb
        self._preload, self._env, self._start_timeout_s = tuple(preload), dict(env or {}), start_timeout_s
        self._free = asyncio.Semaphore(slots)
        self._idle: list[Worker] = []  # started, ready, waiting for a task
        self._busy: set[Worker] = set()
        self._starting: asyncio.Future[None] | None = None  # one start at a time
        self._steps: dict[str, list[Step]] = {}
        self._canceled: OrderedDict[str, None] = OrderedDict()
        self._failure: str | None = None
        self._closed = False
        self._refills: set[asyncio.Task[None]] = set()

    # what callers use

    async def run(
        self,
        key: str,
        function: Callable[..., Any],
        *args: Any,
        deadline: datetime | None = None,
        started: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        """Runs function(*args) in a worker, for the job `key`, once a slot is free; `started`
        is awaited when a worker has it. Raises Canceled once cancel(key) was called,
        OutOfTime at the deadline (waiting for a slot included), OutOfMemory when the worker
        reached its memory limit, WorkerDied when the worker ended under it."""
        if key in self._canceled:
            raise Canceled(f"job {key} was canceled")
        task = Step(key)
        self._steps.setdefault(key, []).append(task)
        remaining = (deadline - datetime.now(UTC)).total_seconds() if deadline else None
        try:
            async with asyncio.timeout(max(remaining, 0) if remaining is not None else None):
                await self._take_slot(task)
                try:
                    return await self._in_worker(task, function, args, started)
                finally:
                    self._free.release()
        except TimeoutError:
            assert deadline is not None  # the only timeout there is
            raise out_of_time(key, deadline) from None
        finally:
            self._steps[key].remove(task)
            if not self._steps[key]:
                del self._steps[key]

    def cancel(self, key: str) -> bool:
        """Stops the job's steps: a worker running one is killed at once, one waiting for a slot
        stops waiting, and later ones are refused. Says whether anything was stopped."""
        self._canceled[key] = None
        while len(self._canceled) > REMEMBERED_CANCELS:
            self._canceled.popitem(last=False)
        stopped = False
        for task in self._steps.get(key, []):
            task.canceled = stopped = True
            if task.worker is not None:
                log.info("job %s canceled: killing worker process %s", key, task.worker.pid)
                task.worker.kill()
            elif task.waiting is not None:
                task.waiting.cancel()
        return stopped

    def problem(self) -> str | None:
        if self._failure:
            return f"fit worker processes cannot start: {self._failure}"
        return None

    async def refill(self) -> None:
        """Starts workers until each slot has one (the first task then does not wait for a
        process and its imports); run at start-up and now and then, it also replaces workers
        that died while idle."""
        self._idle = [w for w in self._idle if w.alive()]
        while not self._closed and len(self._idle) + len(self._busy) < self.slots:
            await self._spawn()

    async def close(self) -> None:
        self._closed = True
        for pending in [*self._refills, *([self._starting] if self._starting else [])]:
            pending.cancel()
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        await asyncio.gather(*(w.stop() for w in workers))

    def pids(self) -> list[int]:
        return [w.pid for w in [*self._idle, *self._busy] if w.alive()]

    def queued(self) -> int:
        """Steps waiting for a fit worker: for a slot, or for their worker to start."""
        return sum(1 for steps in self._steps.values() for step in steps if step.worker is None)

    def running(self) -> int:
        """Steps computing in a worker."""
        return sum(1 for steps in self._steps.values() for step in steps if step.worker is not None)

    # inside

    async def _take_slot(self, task: Step) -> None:
        # The wait is a future of its own, so that cancel() can end it without canceling the
        # caller (whose cancellation means something else: the deadline, or shutdown).
        waiting = asyncio.ensure_future(self._free.acquire())
        task.waiting = waiting
        try:
            await waiting
        except asyncio.CancelledError:
            if waiting.done() and not waiting.cancelled():
                self._free.release()  # the slot came just as the wait was given up
            if task.canceled and waiting.cancelled() and not _cancelling():
                raise Canceled(f"job {task.key} was canceled while it waited for a worker") from None
            raise
        finally:
            task.waiting = None
        if task.canceled:
            self._free.release()
            raise Canceled(f"job {task.key} was canceled while it waited for a worker")

    async def _in_worker(
        self,
        task: Step,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        started: Callable[[], Awaitable[None]] | None,
    ) -> Any:
        worker = await self._take_worker()
        self._busy.add(worker)
        task.worker = worker
        reusable = False
        try:
            if task.canceled:
                raise Canceled(f"job {task.key} was canceled")
            if started is not None:
                await started()
            result = await worker.call(function, args)
            reusable = True
            return result
        except WorkerDied as exc:
            if task.canceled:
                raise Canceled(f"job {task.key} was canceled; its worker process {worker.pid} was killed") from None
            log.warning("job %s: %s in the middle of its step; the step will be tried again", task.key, exc)
            raise WorkerDied(f"{exc} before the step finished") from None
        except MemoryError as exc:
            raise OutOfMemory(
                f"the step needed more memory than a fit worker may use ({self.memory_mb} MiB, the setting "
                f"fit_memory_mb, DAPRML_FIT_MEMORY_MB): {exc}"
            ) from None
        except Exception:
            reusable = worker.alive()  # the function raised: the worker answered and is fine
            raise
        finally:
            task.worker = None
            self._busy.discard(worker)
            if reusable and not self._closed:
                self._idle.append(worker)
            else:
                # Killed, dead, out of memory, or stopped in the middle of a task (deadline,
                # shutdown): no later task may inherit its state. It is gone before this step
                # ends (SIGKILL: at once), and a new one replaces it.
                await worker.stop()
                self._refill_soon()

    async def _take_worker(self) -> Worker:
        while True:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
            await self._spawn()

    async def _spawn(self) -> None:
        """Adds a started worker to the idle ones. One start at a time: whoever needs a worker
        meanwhile waits for that one, so there are never more processes than slots."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        try:
            worker = await Worker.start(self.memory_mb * 1024 * 1024, self._preload, self._env, self._start_timeout_s)
        except CannotStart as exc:
            low = 0 < self.memory_mb < 1024  # a worker needs about 620 MiB to load its libraries
            self._failure = f"{exc} (is fit_memory_mb, {self.memory_mb} MiB, too low?)" if low else str(exc)
            log.error("a fit worker process could not start: %s", exc)
            raise
        finally:
            self._starting = None
        self._failure = None
        if self._closed:
            await worker.stop()
        else:
            self._idle.append(worker)

    def _refill_soon(self) -> None:
        if self._closed or self._refills:
            return
        refill = asyncio.ensure_future(self.refill())
        self._refills.add(refill)
        refill.add_done_callback(self._refilled)

    def _refilled(self, refill: asyncio.Task[None]) -> None:
        self._refills.discard(refill)
        if not refill.cancelled() and refill.exception() is not None:
            log.warning("replacing a fit worker failed (tried again later): %s", refill.exception())


def _cancelling() -> bool:
    """Whether the current task itself is being canceled (a deadline, shutdown)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
