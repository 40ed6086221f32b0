"""The fit workers' pool with real worker processes (the tasks are small ones of tests/unit/
training/tasks.py, so that no worker imports scikit-learn): what comes back, and what happens
to a task and its worker when it is canceled, killed, runs out of memory or out of time."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scripts.proc import alive, wait_until
from services.training.pool import Canceled, CannotStart, OutOfMemory, OutOfTime, Pool, WorkerDied
from tests.unit.training import tasks


def run(test: Callable[[Pool], Awaitable[Any]], slots: int = 1, **options: Any) -> Any:
    """Runs an async test against a pool, closed at the end whatever happens."""

    async def main() -> Any:
        pool = Pool(slots, **options)
        try:
            return await test(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def in_worker(pool: Pool, key: str, function: Callable[..., Any], *args: Any) -> tuple[asyncio.Task, int]:
    """Starts the task and waits until a worker has it; the task and that worker's pid."""
    has_it = asyncio.Event()

    async def started() -> None:
        has_it.set()

    task = asyncio.ensure_future(pool.run(key, function, *args, started=started))
    await has_it.wait()
    (pid,) = pool.pids()
    return task, pid


def test_a_task_answers_and_its_exceptions_come_back_and_the_worker_serves_again():
    async def test(pool: Pool):
        first = await pool.run("job", tasks.pid)
        with pytest.raises(ValueError, match="bad input"):
            await pool.run("job", tasks.fail, "bad input")
        with pytest.raises(RuntimeError, match="Unreadable"):
            await pool.run("job", tasks.raise_unreadable)
        assert await pool.run("job", tasks.pid) == first != os.getpid()
        assert pool.problem() is None

    run(test)


def test_a_worker_killed_under_its_task_fails_the_task_and_is_replaced():
    async def test(pool: Pool):
        task, pid = await in_worker(pool, "job", tasks.sleep_forever)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDied, match=rf"worker process {pid} was killed by SIGKILL"):
            await task
        assert await pool.run("job", tasks.pid) not in (pid, os.getpid())

    run(test)


def test_a_worker_that_ends_itself_is_reported_and_replaced():
    async def test(pool: Pool):
        with pytest.raises(WorkerDied, match="was killed by SIGKILL"):
            await pool.run("job", tasks.die)
        assert await pool.run("other", tasks.pid) > 0

    run(test)


def test_cancel_kills_the_worker_of_the_job_at_once_and_refuses_its_later_steps():
    async def test(pool: Pool):
        task, pid = await in_worker(pool, "job", tasks.sleep_forever)
        assert pool.cancel("job") is True
        with pytest.raises(Canceled, match=f"worker process {pid} was killed"):
            await task
        assert not alive(pid)
        with pytest.raises(Canceled):
            await pool.run("job", tasks.pid)
        assert await pool.run("another job", tasks.pid) != pid

    run(test)


def test_cancel_of_a_job_waiting_for_a_slot_ends_its_wait_and_leaves_the_others_alone():
    async def test(pool: Pool):
        running, pid = await in_worker(pool, "first", tasks.sleep_forever)
        waiting = asyncio.ensure_future(pool.run("second", tasks.pid))
        await asyncio.sleep(0)  # it is in the queue now
        assert pool.cancel("second") is True
        with pytest.raises(Canceled, match="while it waited for a worker"):
            await waiting
        assert not running.done() and alive(pid)
        pool.cancel("first")
        with pytest.raises(Canceled):
            await running
        assert await pool.run("third", tasks.pid) > 0  # the slot the canceled ones held is free

    run(test)


def test_a_task_over_the_memory_limit_fails_saying_so():
    async def test(pool: Pool):
        with pytest.raises(OutOfMemory, match=r"more memory than a fit worker may use \(300 MiB.*DAPRML_FIT_MEMORY_MB"):
            await pool.run("job", tasks.allocate, 1024)
        assert await pool.run("job", tasks.allocate, 10) == 10 * 1024 * 1024  # a new worker, same limit

    run(test, memory_mb=300)


def test_a_task_past_its_deadline_is_stopped_and_its_worker_killed():
    async def test(pool: Pool):
        started: list[int] = []

        async def note() -> None:
            started.extend(pool.pids())

        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        with pytest.raises(OutOfTime, match="wall-clock limit .*DAPRML_JOB_TIMEOUT_S"):
            await pool.run("job", tasks.sleep_forever, deadline=soon, started=note)
        assert started and not alive(started[0])
        with pytest.raises(OutOfTime):  # past it already: not started at all
            await pool.run("job", tasks.pid, deadline=soon)

    run(test)


def test_a_worker_that_cannot_start_is_a_problem_the_pool_names():
    async def test(pool: Pool):
        assert pool.problem() is None
        with pytest.raises(CannotStart, match="ended before it was ready"):
            await pool.run("job", tasks.pid)
        assert pool.problem().startswith("fit worker processes cannot start: a worker process ended before")

    run(test, preload=["tests.unit.training.no_such_module"])


def test_refill_starts_one_worker_per_slot_and_close_stops_them():
    async def test(pool: Pool):
        await pool.refill()
        pids = pool.pids()
        assert len(pids) == 2 and all(alive(p) for p in pids)
        await pool.close()
        assert pool.pids() == [] and not any(alive(p) for p in pids)

    run(test, slots=2)


PARENT = """
import asyncio, sys
from services.training.pool import Pool

async def main():
    pool = Pool(1)
    await pool.refill()
    print(pool.pids()[0], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_worker_dies_with_the_process_that_started_it():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, cwd=Path(__file__).parents[3])
    try:
        worker = int(parent.stdout.readline())
        assert alive(worker)
        parent.kill()
        parent.wait()
        # No deadline is being tested: the kernel kills the worker as the parent ends.
        wait_until(lambda: not alive(worker), 30, interval_s=0.05)
        assert not alive(worker)
    finally:
        parent.kill()
        parent.wait()
