"""Runs one service and starts it again when it dies by itself, as the app command of dapr.yaml.

    python -m scripts.supervise services.ingestion

The dapr CLI starts each app once and never again: an app killed with -9 would leave its
sidecar answering 500 to every call until `make down` and `make up`. Here the service runs as
`python -m <module>`, a child of this process; when it dies by a signal or exits non-zero, it is
started again after a back-off (0.5 s, doubling up to 10 s; back to 0.5 s once it stayed up 30 s),
and each restart is one line on stderr, which the CLI writes to the app's log. Exiting 0 is a
finish, not a crash: this process exits 0 too.

SIGTERM or SIGINT asks for a stop: the child gets SIGTERM, and this process exits with the
child's status (128 + N when a signal N ended it).
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

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


def _die_with_parent(parent: int) -> None:
    # The CLI stops an app with SIGKILL to the pid it started, which is this process: without
    # this the child would outlive it and keep the app port. Linux only; elsewhere it is skipped.
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Supervisor:
    def __init__(self, module: str):
        self.module = module
        self.child: subprocess.Popen | None = None
        self.stop_signal: int | None = None

    def _on_stop(self, signum: int, _frame) -> None:
        self.stop_signal = signum
        self._forward()

    def _forward(self) -> None:
        # Always SIGTERM: a signal sent to the whole process group (Ctrl-C, `make down`) reaches
        # the child directly too, and a second SIGINT would make uvicorn skip its graceful shutdown.
        if self.child is not None and self.child.returncode is None:
            try:
                self.child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _start(self) -> subprocess.Popen:
        parent = os.getpid()
        self.child = subprocess.Popen([sys.executable, "-m", self.module], preexec_fn=lambda: _die_with_parent(parent))
        if self.stop_signal is not None:  # asked to stop while it was being started
            self._forward()
        return self.child

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        wait_s = None
        child = self._start()
        while True:
            started = time.monotonic()
            returncode = child.wait()
            uptime = time.monotonic() - started
            if self.stop_signal is not None:
                return exit_status(returncode)
            if returncode == 0:
                self._log(
                    f"{self.module} (pid {child.pid}) exited with status 0 after {uptime:.1f}s: "
                    "finished, not started again"
                )
                return 0
            wait_s = backoff(wait_s, uptime)
            self._sleep(wait_s)
            if self.stop_signal is not None:
                return exit_status(-self.stop_signal)
            dead = child.pid
            child = self._start()
            self._log(
                f"{self.module} (pid {dead}) {describe(returncode)} after {uptime:.1f}s up; "
                f"started again {wait_s:.1f}s later as pid {child.pid}"
            )

    @staticmethod
    def _log(message: str) -> None:
        print(f"supervise: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    return Supervisor(argv[0]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
