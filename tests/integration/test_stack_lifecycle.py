"""Starting and stopping through the project's scripts: clear failures, nothing left behind."""

import os
import signal
import socket
import sys

import httpx
import pytest

from scripts.infra import observability
from scripts.proc import SetupError, alive, group_members, listener_pid, port_open, read_pid, require_free
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration


def test_an_app_that_never_gets_ready_fails_with_the_tail_of_its_logs(one_app_stack):
    broken = one_app_stack([sys.executable, "-c", "print('model file missing'); raise SystemExit(3)"])
    with pytest.raises(SetupError) as failure:
        broken.start(timeout_s=15)
    message = str(failure.value)
    assert broken.apps[0].app_id in message
    assert "model file missing" in message, message
    assert "daprd" in message
    assert not broken.running()
    assert not any(port_open(p) for p in (broken.apps[0].http_port, broken.apps[0].grpc_port))
    assert not (observability.targets_dir() / f"{broken.name}.json").exists()


def test_stop_leaves_no_process_and_no_port_behind(one_app_stack):
    solo = one_app_stack(["python", "-m", "services.registry"])
    solo.start(timeout_s=60)
    pid = read_pid(solo.pidfile)
    app = solo.apps[0]
    assert pid and port_open(app.app_port) and port_open(app.http_port)
    targets = observability.targets_dir() / f"{solo.name}.json"  # what Prometheus scrapes of it
    assert targets.exists() == observability.enabled()
    assert solo.stop() == []
    assert not targets.exists()
    assert not alive(pid)
    assert not any(port_open(p) for p in (app.app_port, app.http_port, app.grpc_port))
    assert group_members(pid) == []


def test_a_taken_port_is_reported_by_number_and_owner():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SetupError) as failure:
            require_free(port, "gateway app")
    assert str(failure.value) == (
        f"port {port} (gateway app) is taken by pid {os.getpid()} "
        f"({open('/proc/self/comm').read().strip()}); stop it or free the port"
    )


def test_starting_on_a_taken_port_says_which_before_starting_anything(one_app_stack):
    solo = one_app_stack(["python", "-m", "services.registry"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", solo.apps[0].http_port))
        s.listen()
        with pytest.raises(SetupError, match=rf"port {solo.apps[0].http_port} \(solo-\d+ sidecar HTTP\) is taken"):
            solo.start(timeout_s=10)
    assert not solo.running()


def test_an_app_killed_with_sigkill_is_started_again_and_serves_again(stack, gateway):
    port = stack.app("ingestion").app_port
    killed = listener_pid(port)
    assert killed is not None
    os.kill(killed, signal.SIGKILL)

    def serving_again() -> bool:
        # While it restarts the gateway answers an error; only the recovery is asserted.
        try:
            return listener_pid(port) not in (None, killed) and gateway.get("/api/datasets").status_code == 200
        except httpx.HTTPError:
            return False

    assert poll(serving_again, timeout_s=60), f"ingestion is not serving again (logs: {stack.workdir}/.dapr/logs)"


def test_an_isolated_stack_subscribes_only_to_topics_of_its_own(stack):
    # It shares Redis with a developer's `make up`: unprefixed topics would carry each other's events.
    assert stack.topic_prefix.endswith(".") and len(stack.topic_prefix) > 1
    sidecar = f"http://127.0.0.1:{stack.app('training').http_port}"
    metadata = httpx.get(f"{sidecar}/v1.0/metadata", timeout=5, headers=stack.sidecar_headers()).json()
    topics = [s["topic"] for s in metadata.get("subscriptions", [])]
    assert topics and all(t.startswith(stack.topic_prefix) for t in topics), topics
