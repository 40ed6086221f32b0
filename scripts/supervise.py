"""Keeps processes running: one that dies (an exit, a kill -9) is started again after a back-off,
and one whose liveness probe fails a few times in a row is killed and started again.

scripts/launch.py keeps every app and every daprd of a stack running with it. On its own it
runs one service, for a user who starts a service by hand under `dapr run`:

    dapr run --app-id ingestion --app-port 8001 -- python -m scripts.supervise services.ingestion

There the service runs as `python -m <module>`, a child of this process, probed at
http://127.0.0.1:$APP_PORT/healthz when the dapr CLI passes APP_PORT. Back-off: 0.5 s, doubling
up to 10 s; back to 0.5 s once it stayed up 30 s. Each restart is one line on stderr. Exiting 0
is a finish, not a crash: this process exits 0 too. SIGTERM or SIGINT asks for a stop: the
child gets SIGTERM, and this process exits with the child's status (128 + N when a signal N
ended it).
"""

import ctypes
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

FIRST_DELAY_S = 0.5  # the wait before the first restart
MAX_DELAY_S = 10.0
STABLE_AFTER_S = 30.0
PR_SET_PDEATHSIG = 1


def backoff(previous_s: float | None, uptime_s: float) -> float:
    """How long to wait before starting the child again, given the wait before its last start
    (None: it never died before) and how long it then ran."""
    if previous_s is None or uptime_s >= STABLE_AFTER_S:
        return FIRST_DELAY_S
    return min(previous_s * 2, MAX_DELAY_S)


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def exit_status(returncode: int) -> int:
    """A shell's way to report a child a signal ended: 128 + the signal's number."""
    return 128 - returncode if returncode < 0 else returncode


def die_with_parent(parent: int) -> None:
    """For a child's preexec_fn: the child gets SIGTERM when its parent dies (a supervisor
    killed with -9 must not leave its children holding their ports). Linux only; elsewhere it
    is skipped."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@dataclass(frozen=True)
class Liveness:
    """An HTTP probe of a process that answers while it can do its job (an app's /healthz).
    Failures count once it has answered well, or `grace_s` after its start, whichever is
    first: a slow start is not a failure."""

    url: str
    interval_s: float = 5.0
    timeout_s: float = 3.0
    failures: int = 3
    """Failed probes in a row after which the process is killed and started again."""
    grace_s: float = 60.0

    def check(self) -> str | None:
        """None when the probe passes, else why it failed."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout_s)
        try:
            connection.request("GET", parts.path or "/")
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            connection.close()
        return None if 200 <= status < 300 else f"HTTP {status}"


def _say(message: str) -> None:
    print(f"supervise: {message}", file=sys.stderr, flush=True)


class Supervised:
    """One process kept running. poll() does the bookkeeping without blocking: call it often.

    `restart_on_success`: whether an exit with status 0 is started again too (a stack's
    processes are meant to run until asked to stop) or is a finish."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        liveness: Liveness | None = None,
        restart_on_success: bool = True,
        say: Callable[[str], None] = _say,
    ):
        self.name, self.argv, self.env, self.cwd, self.log = name, argv, env, cwd, log
        self.liveness, self.restart_on_success, self.say = liveness, restart_on_success, say
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.stopping = False
        self.finished: int | None = None  # the exit status, once it is not started again
        self.restarts = 0
        self._wait_s: float | None = None
        self._restart_at: float | None = None
        self._died: tuple[int, int, float] | None = None  # pid, returncode, uptime of the last death
        self._lock = threading.Lock()

    def start(self) -> None:
        parent = os.getpid()
        out = open(self.log, "ab") if self.log else None  # noqa: SIM115 - the child keeps it
        try:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL,
                preexec_fn=lambda: die_with_parent(parent),
            )
        finally:
            if out:
                out.close()
        self.started_at = time.monotonic()
        if self.liveness is not None:
            threading.Thread(target=self._probe, args=(self.process,), name=f"probe {self.name}", daemon=True).start()

    def poll(self) -> None:
        """Notices a death and starts the process again when its back-off has passed."""
        with self._lock:
            if self.stopping or self.finished is not None:
                return
            now = time.monotonic()
            if self._restart_at is None and self.process is not None and self.process.poll() is not None:
                returncode, uptime = self.process.returncode, now - self.started_at
                if returncode == 0 and not self.restart_on_success:
                    self.say(
                        f"{self.name} (pid {self.process.pid}) exited with status 0 after {uptime:.1f}s: "
                        "finished, not started again"
                    )
                    self.finished = 0
                    return
                self._wait_s = backoff(self._wait_s, uptime)
                self._restart_at = now + self._wait_s
                self._died = (self.process.pid, returncode, uptime)
            if self._restart_at is not None and now >= self._restart_at:
                self._restart_at = None
                self.start()
                self.restarts += 1
                assert self.process is not None and self._died is not None
                dead, returncode, uptime = self._died
                self.say(
                    f"{self.name} (pid {dead}) {describe(returncode)} after {uptime:.1f}s up; "
                    f"started again {self._wait_s:.1f}s later as pid {self.process.pid}"
                )

    def send(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """No more restarts; the process gets `signum`."""
        with self._lock:
            self.stopping = True
            self.send(signum)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _probe(self, process: subprocess.Popen) -> None:
        """Runs beside one instance of the process, until that instance ends: kills it after
        `failures` failed probes in a row, so that poll() starts it again."""
        probe = self.liveness
        assert probe is not None
        started, answered, failed = time.monotonic(), False, 0
        while not self.stopping and process.poll() is None:
            time.sleep(probe.interval_s)
            if self.stopping or process.poll() is not None:
                return
            why = probe.check()
            if why is None:
                answered, failed = True, 0
                continue
            if not answered and time.monotonic() - started < probe.grace_s:
                continue
            failed += 1
            if failed >= probe.failures:
                self.say(
                    f"{self.name} (pid {process.pid}) failed {probe.url} {failed} times in a row "
                    f"(last: {why}); killing it to start it again"
                )
                process.kill()
                return


def run_until_stopped(supervised: list[Supervised], interval_s: float = 0.1) -> None:
    """Starts each, keeps each running until SIGTERM or SIGINT, then stops them all (SIGTERM;
    SIGKILL to what is left after `grace_s`). Returns once every one has ended."""
    stop_signal: list[int] = []

    def on_stop(signum: int, _frame: object) -> None:
        stop_signal.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_stop)
    for one in supervised:
        one.start()
    while not stop_signal and not all(one.finished is not None for one in supervised):
        for one in supervised:
            one.poll()
        time.sleep(interval_s)
    # Always SIGTERM: a signal sent to the whole process group (Ctrl-C, `make down`) reaches the
    # children directly too, and a second SIGINT would make uvicorn skip its graceful shutdown.
    for one in supervised:
        one.stop()


def wait_ended(supervised: list[Supervised], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for one in supervised:
        if one.process is None:
            continue
        try:
            one.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            one.say(f"{one.name} (pid {one.process.pid}) did not stop within {grace_s:.0f}s; killing it")
            one.process.kill()
            one.process.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    port = os.environ.get("APP_PORT")
    child = Supervised(
        argv[0],
        [sys.executable, "-m", argv[0]],
        liveness=Liveness(f"http://127.0.0.1:{port}/healthz") if port else None,
        restart_on_success=False,
    )
    run_until_stopped([child])
    wait_ended([child], grace_s=3600)  # its own graceful shutdown decides
    assert child.process is not None
    return exit_status(child.process.returncode)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
