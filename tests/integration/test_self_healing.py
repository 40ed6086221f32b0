"""Nothing stays dead: a daprd killed with -9 is started again by the launcher within seconds
with the same ports; while it is away the gateway answers 503 at once, not after a hang; the
stack's own commands run against a live stack restart nothing and fail no request. (The kills
of the gateway's sidecar, of inference replicas and of training's sidecar mid-job run on every
profile in test_e2e.py.)"""

import os
import signal

import pytest

from scripts.proc import listener_pid
from scripts.stack import Stack
from tests.integration.conftest import poll
from tests.integration.load import FixedRate, reads_across_a_kill

pytestmark = pytest.mark.integration


def test_a_killed_sidecar_comes_back_and_meanwhile_the_gateway_answers_503_at_once(stack, gateway):
    """The registry's daprd killed under a steady stream of reads through the gateway."""
    load, back_s, killed_at = reads_across_a_kill(stack, stack.app("registry").http_port, duration_s=12)
    print(f"\nregistry's daprd listening again {back_s:.1f}s after kill -9; {load.report('reads through the gateway')}")
    assert back_s < 10
    # Every failure answered fast and in words (503), none hung or broke the connection.
    for failed in load.failures():
        assert failed.status == 503 and failed.latency_s < 2, failed
    # Serving again well before the stream ended.
    assert load.failures(since=killed_at + 8) == []
    assert len(load.answers) >= 200


def test_stack_commands_on_a_live_stack_restart_nothing_and_fail_no_request(stack, run_id):
    """`make up` again (the run file, each Configuration and component file made again) and
    `status` three times, while requests flow: no daprd restarts, no watched file is touched."""
    watched = [p for p in stack.workdir.rglob("*.yaml") if "components" in p.parts or "config" in p.parts]
    assert watched
    stamps = {p: p.stat().st_mtime_ns for p in watched}
    daprds = {a.http_port: listener_pid(a.http_port) for a in stack.apps}
    launcher_log = stack.log.read_text()
    load = FixedRate(lambda c: c.get("/api/models"), stack.gateway, per_second=20, duration_s=8)
    with load:
        again = Stack.isolated(stack.workdir, run_id)
        assert again.apps == stack.apps  # the same ports as before
        again.start()  # finds it running, starts nothing
        for _ in range(3):
            assert all(s["reachable"] for s in again.status()["services"])
    print(f"\n{load.report('reads while make up and status ran again')}")
    assert load.failures() == []
    assert {p: p.stat().st_mtime_ns for p in watched} == stamps
    assert {a.http_port: listener_pid(a.http_port) for a in stack.apps} == daprds
    assert "started again" not in stack.log.read_text()[len(launcher_log) :]


def test_the_status_lists_each_instance_and_is_not_ok_while_one_sidecar_is_frozen(stack, gateway):
    """A daprd that stops answering (SIGSTOP: not dead, so nothing restarts it) silences its
    app's heartbeats, which go through it: the status says so, and recovers with it."""

    def registry() -> dict:
        return next(s for s in gateway.get("/api/status").json()["services"] if s["service"] == "registry")

    assert poll(lambda: [i["up"] for i in registry()["instances"]] == [True], 20), registry()
    daprd = listener_pid(stack.app("registry").http_port)
    os.kill(daprd, signal.SIGSTOP)
    try:
        down = poll(lambda: [i["up"] for i in registry()["instances"]] == [False], 30)
        assert down, registry()
        assert gateway.get("/api/status").json()["ok"] is False
        print(f"\nwith registry's daprd frozen: {registry()['instances'][0]['error']}")
    finally:
        os.kill(daprd, signal.SIGCONT)
    assert poll(lambda: gateway.get("/api/status").json()["ok"], 30), gateway.get("/api/status").json()
