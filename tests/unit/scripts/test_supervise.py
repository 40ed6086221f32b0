"""The supervisor each app runs under: a child that dies by itself is started again, a stop asked
of the supervisor ends both. Real processes: the supervisor runs a tiny module that dies on cue."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.proc import alive, free_port, wait_until
from scripts.supervise import (
    FIRST_DELAY_S,
    MAX_DELAY_S,
    STABLE_AFTER_S,
    Liveness,
    Supervised,
    backoff,
    exit_status,
    wait_ended,
)

# Each run appends its pid to RUNS, then does the next step of PLAN (the last step repeats).
FLAKY = """
import os, signal, sys
from pathlib import Path

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
runs = Path(os.environ["RUNS"])
with runs.open("a") as f:
    f.write(f"{os.getpid()}\\n")
plan = os.environ["PLAN"].split(",")
step = plan[min(len(runs.read_text().split()), len(plan)) - 1]
if step == "exit 1":
    sys.exit(1)
if step == "kill -9":
    os.kill(os.getpid(), signal.SIGKILL)
if step == "exit 0":
    sys.exit(0)
while True:  # serve
    signal.pause()
"""


@pytest.fixture
def supervise(tmp_path):
    """Starts the supervisor on the flaky module with a plan; returns it, a reader of the pids
    of its runs and its stderr (a file: a pipe would stay open as long as any child lives).
    Kills whatever is left at the end."""
    (tmp_path / "flaky.py").write_text(FLAKY)
    runs, log = tmp_path / "runs", tmp_path / "stderr"
    started: list[subprocess.Popen] = []

    def start(plan: str) -> subprocess.Popen:
        env = os.environ | {"PYTHONPATH": str(tmp_path), "RUNS": str(runs), "PLAN": plan}
        with open(log, "w") as stderr:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "scripts.supervise", "flaky"], cwd=tmp_path, env=env, stderr=stderr
                )
            )
        return started[-1]

    def pids() -> list[int]:
        return [int(p) for p in runs.read_text().split()] if runs.exists() else []

    yield start, pids, lambda: log.read_text()
    for supervisor in started:
        supervisor.kill()
        supervisor.wait()
    for pid in pids():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_child_that_dies_is_started_again_and_sigterm_ends_both(supervise):
    start, pids, stderr = supervise
    supervisor = start("exit 1,kill -9,serve")
    assert wait_until(lambda: len(pids()) == 3, 20), pids()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(10) == 0  # the child's status: it exited 0 on SIGTERM
    first, second, third = pids()
    assert wait_until(lambda: not alive(third), 5)
    lines = stderr().splitlines()
    assert [line.split(" after ")[0] for line in lines] == [
        f"supervise: flaky (pid {first}) exited with status 1",
        f"supervise: flaky (pid {second}) was killed by SIGKILL",
    ]
    assert lines[0].endswith(f"; started again 0.5s later as pid {second}")
    assert lines[1].endswith(f"; started again 1.0s later as pid {third}")


def test_a_child_that_finishes_is_not_started_again(supervise):
    start, pids, stderr = supervise
    supervisor = start("exit 0")
    assert supervisor.wait(10) == 0
    assert len(pids()) == 1
    assert "finished, not started again" in stderr()


def test_a_supervisor_killed_with_sigkill_takes_its_child_along(supervise):
    # What the dapr CLI does to an app's command when it shuts down.
    start, pids, _ = supervise
    supervisor = start("serve")
    assert wait_until(lambda: len(pids()) == 1, 10)
    supervisor.kill()
    assert wait_until(lambda: not alive(pids()[0]), 5)


def test_the_back_off_doubles_up_to_its_cap_and_starts_over_after_a_stable_run():
    waits, previous = [], None
    for _ in range(8):
        previous = backoff(previous, uptime_s=1)
        waits.append(previous)
    assert waits == [0.5, 1, 2, 4, 8, 10, 10, 10] and FIRST_DELAY_S == 0.5 and MAX_DELAY_S == 10
    assert backoff(MAX_DELAY_S, uptime_s=STABLE_AFTER_S) == FIRST_DELAY_S


def test_on_a_stop_the_supervisor_exits_with_its_childs_status_as_a_shell_reports_it():
    assert exit_status(0) == 0 and exit_status(3) == 3
    assert exit_status(-signal.SIGKILL) == 137


def test_without_a_module_it_says_how_to_call_it():
    done = subprocess.run(
        [sys.executable, "-m", "scripts.supervise"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    assert done.returncode == 2 and "python -m scripts.supervise services.ingestion" in done.stderr


# Answers /healthz with 200 until the file STUCK exists, then stops answering (a wedged event loop).
WEDGED = """
import http.server, os, sys
from pathlib import Path

with Path(os.environ["RUNS"]).open("a") as f:
    f.write(f"{os.getpid()}\\n")

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if Path(os.environ["STUCK"]).exists():
            import time; time.sleep(60)
        self.send_response(200); self.end_headers()
    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_a_process_that_stops_answering_its_liveness_probe_is_killed_and_started_again(tmp_path):
    (tmp_path / "wedged.py").write_text(WEDGED)
    runs, stuck, port = tmp_path / "runs", tmp_path / "stuck", free_port()
    said: list[str] = []
    child = Supervised(
        "wedged",
        [sys.executable, str(tmp_path / "wedged.py"), str(port)],
        env=os.environ | {"RUNS": str(runs), "STUCK": str(stuck)},
        liveness=Liveness(f"http://127.0.0.1:{port}/healthz", interval_s=0.2, timeout_s=0.5, failures=3, grace_s=30),
        say=said.append,
    )

    def pids() -> list[int]:
        return [int(p) for p in runs.read_text().split()] if runs.exists() else []

    child.start()
    try:
        # Answering: nothing happens, however long it runs.
        assert wait_until(lambda: Liveness(f"http://127.0.0.1:{port}/healthz").check() is None, 10)
        time.sleep(1.5)
        child.poll()
        assert len(pids()) == 1 and child.restarts == 0
        stuck.touch()  # from now on every probe times out
        assert wait_until(lambda: child.poll() or child.restarts == 1, 20), said
        stuck.unlink()
        assert wait_until(lambda: len(pids()) == 2, 10)
        assert said[0].startswith(f"wedged (pid {pids()[0]}) failed http://127.0.0.1:{port}/healthz 3 times in a row")
        assert "was killed by SIGKILL" in said[1]
    finally:
        child.stop(signal.SIGKILL)
        wait_ended([child], 5)
