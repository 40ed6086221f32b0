"""A steady stream of requests for the failure tests: sent at a fixed rate from a thread of its
own (a slow answer does not slow the stream; each request waits for its answer at most
`timeout_s`), each answer kept with its time, status and latency; bounded by a duration."""

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from scripts.proc import listener_pid
from tests.integration.conftest import poll


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when sent
    status: int | str  # the HTTP status, or the name of the transport error
    latency_s: float


class FixedRate:
    def __init__(
        self,
        send: Callable[[httpx.Client], httpx.Response],
        client: Callable[[], httpx.Client],
        per_second: float = 20,
        duration_s: float = 60,
    ):
        self.send, self.client, self.interval_s, self.duration_s = send, client, 1 / per_second, duration_s
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self, client: httpx.Client) -> None:
        sent = time.monotonic()
        try:
            reply = self.send(client)
            status: int | str = reply.status_code
            if status == 200 and "json" in reply.headers.get("content-type", ""):
                reply.json()  # a 200 that is not the answer it says it is, is a failure too
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        except ValueError:
            status = "unreadable 200"
        self.answers.append(Answer(sent, status, time.monotonic() - sent))

    def _run(self) -> None:
        start = time.monotonic()
        with self.client() as client, ThreadPoolExecutor(8) as pool:
            n = 0
            while not self._stop.is_set() and time.monotonic() - start < self.duration_s:
                pool.submit(self._one, client)
                n += 1
                self._stop.wait(max(0.0, start + n * self.interval_s - time.monotonic()))

    def __enter__(self) -> "FixedRate":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.finish()

    def finish(self) -> None:
        """Waits out the duration (or stops early when asked to) and the last answers."""
        self._thread.join(self.duration_s + 60)

    def stop(self) -> None:
        self._stop.set()
        self.finish()

    def failures(self, since: float = 0.0) -> list[Answer]:
        return [a for a in self.answers if a.status != 200 and a.sent >= since]

    def report(self, what: str) -> str:
        failed = self.failures()
        worst = max((a.latency_s for a in failed), default=0.0)
        share = 100 * len(failed) / max(1, len(self.answers))
        statuses = sorted({str(a.status) for a in failed})
        return (
            f"{what}: {len(failed)} of {len(self.answers)} requests failed "
            f"({share:.2f}%; statuses {statuses}; slowest failure {worst * 1000:.0f} ms)"
        )


def kill_listener(port: int, timeout_s: float = 10) -> tuple[int, float]:
    """Kills with -9 the process listening on the port; returns its pid and the seconds until a
    new process listens there (the test fails when none does within `timeout_s`)."""
    before = listener_pid(port)
    assert before is not None, f"nothing listens on {port}"
    killed_at = time.monotonic()
    os.kill(before, signal.SIGKILL)
    back = poll(lambda: listener_pid(port) not in (None, before), timeout_s)
    assert back, f"nothing listens on {port} again {timeout_s:.0f}s after pid {before} was killed"
    return before, time.monotonic() - killed_at


def reads_across_a_kill(stack, port: int, duration_s: float = 15, after_s: float = 2) -> tuple[FixedRate, float, float]:
    """20 reads a second (GET /api/models) through a stack's gateway, the process listening on
    `port` killed with -9 `after_s` into them; returns the stream once it has ended, how long
    until the port was listened on again, and when the kill was."""
    load = FixedRate(lambda c: c.get("/api/models"), stack.gateway, per_second=20, duration_s=duration_s)
    with load:
        time.sleep(after_s)
        killed_at = time.monotonic()
        _, back_s = kill_listener(port)
    return load, back_s, killed_at
