"""Rollouts on the real stack (the registry's Dapr Workflows, two inference replicas, the monitor's
evidence): a candidate as good as the champion passes a shadow and a canary step and is promoted
with no failed request; a candidate that disagrees is rolled back by its agreement gate, with the
numbers; an approval step waits through a kill of the registry's app and moves on when approved,
each step made once; an inference replica or the monitor killed mid-step loses none; the history lists every
move with who and why. Steps last a number of predictions, and the registry reads the evidence
every second (DAPRML_ROLLOUT_POLL_S)."""

import os
import signal
import uuid

import httpx
import pytest

from scripts.proc import listener_pid
from scripts.stack import Stack
from tests.integration.conftest import launched_with, poll
from tests.integration.test_hot_swap import Stream, champion_and_challenger, finished_job, streaming_headers
from tests.integration.test_monitor_drift import iris_records

pytestmark = pytest.mark.integration
FINISHED = ("promoted", "completed", "rolled_back", "failed")
GATES = {"min_samples": 20}


@pytest.fixture(scope="module")
def rolling(infrastructure, tmp_path_factory):
    """Two inference replicas; the registry judges a step's gates every second."""
    stack = Stack.isolated(tmp_path_factory.mktemp("rollouts"), uuid.uuid4().hex[:8], replicas={"inference": 2})
    with launched_with(DAPRML_ROLLOUT_POLL_S="1"):
        stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def rollout(gateway: httpx.Client, name: str, rollout_id: str) -> dict:
    reply = gateway.get(f"/api/models/{name}/rollouts/{rollout_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def ended(gateway: httpx.Client, name: str, rollout_id: str, timeout_s: float = 240) -> dict:
    done = poll(lambda: (r := rollout(gateway, name, rollout_id))["status"] in FINISHED and r, timeout_s)
    assert done, rollout(gateway, name, rollout_id)
    return done


def start(gateway: httpx.Client, name: str, candidate: int, plan: list[dict], reason: str) -> dict:
    body = {"candidate": candidate, "plan": plan, "gates": GATES, "reason": reason}
    reply = gateway.post(f"/api/models/{name}/rollouts", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def rollout_history(gateway: httpx.Client, name: str) -> list[dict]:
    entries = gateway.get(f"/api/models/{name}/history", params={"limit": 200}).json()["entries"]
    return [e for e in reversed(entries) if e["action"].startswith("rollout.") or e["action"] == "traffic.changed"]


def test_a_candidate_as_good_as_the_champion_is_promoted_with_no_failed_request(rolling):
    with rolling.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, "rollout-good")
        forest = {"dataset": name, "estimator": "random_forest"}
        assert gateway.post("/api/training/jobs", json=forest).status_code == 202
        finished_job(gateway, name, count=3)  # version 3: a good model too, of another kind
        headers = streaming_headers(gateway)
        plan = [{"shadow": 50, "for": 30}, {"canary": 30, "for": 30}, {"promote": True}]
        with Stream(rolling.gateway_url, name, headers) as stream:
            started = start(gateway, name, 3, plan, "v3 as good as v1")
            done = ended(gateway, name, started["id"])
        assert done["status"] == "promoted", done
        assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == 3
        statuses = [status for _, status, _ in stream.answers]
        assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
        served = {version for _, _, version in stream.answers}
        assert {1, 3} <= served, served  # the canary served, then the new champion
        moves = [(e["action"], e["actor"]) for e in rollout_history(gateway, name)]
        assert [a for a, _ in moves] == [
            "rollout.started",
            *("traffic.changed", "rollout.step", "rollout.passed"),
            *("traffic.changed", "rollout.step", "rollout.passed"),
            "traffic.changed",
            "rollout.promoted",
        ], moves
        assert {actor for _, actor in moves} == {"development admin"}
        print(
            f"\nrollouts: v3 promoted through shadow and canary; {len(statuses)} requests meanwhile, 0 failed; "
            f"canary gates {[(g['gate'], g['candidate'], g['champion']) for g in done['gate_results']]}"
        )


def test_a_candidate_that_disagrees_is_rolled_back_by_its_gate(rolling):
    with rolling.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, "rollout-bad")  # version 2: C=1e-6, one class for all
        headers = streaming_headers(gateway)
        started = start(gateway, name, 2, [{"shadow": 100, "for": 60}, {"promote": True}], "try the weak one")
        rows = iris_records(seed=7)
        with httpx.Client(base_url=rolling.gateway_url, headers=headers, timeout=30) as client:

            def judged() -> dict | None:
                for i in range(0, 20, 5):
                    reply = client.post(f"/api/models/{name}/predict", json={"records": rows[i : i + 5]})
                    assert reply.status_code == 200, reply.text
                found = rollout(gateway, name, started["id"])
                return found if found["status"] in FINISHED else None

            done = poll(judged, 240)
        assert done and done["status"] == "rolled_back", done
        assert "gate agreement failed" in done["outcome"] and "bound 0.9" in done["outcome"], done["outcome"]
        model = gateway.get(f"/api/models/{name}").json()
        assert model["aliases"]["champion"] == 1
        assert gateway.get(f"/api/models/{name}/traffic").json()["traffic"]["shadows"] == []
        last = rollout_history(gateway, name)[-1]
        assert last["action"] == "rollout.rolled_back" and last["details"]["gates"][0]["passed"] is False
        print(f"\nrollouts: v2 rolled back: {done['outcome']}")


def test_an_approval_survives_a_killed_registry_and_approve_moves_it_on(rolling):
    with rolling.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, "rollout-approval")
        plan = [{"approval": True, "timeout": "30m"}, {"promote": True}]
        started = start(gateway, name, 2, plan, "a person decides")
        waiting = poll(lambda: (r := rollout(gateway, name, started["id"]))["status"] == "waiting_for_approval" and r)
        assert waiting and waiting["deadline"], rollout(gateway, name, started["id"])
        rejected = gateway.post(f"/api/models/{name}/rollouts/{started['id']}/reject", params={"reason": "not now"})
        assert rejected.status_code == 200, rejected.text
        done = ended(gateway, name, started["id"], 60)
        assert (done["status"], done["outcome"]) == ("rolled_back", "rejected by development admin: not now"), done
        assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == 1
    # A second model's rollout, approved after the registry's app was killed while it waited.
    with rolling.gateway(timeout_s=120) as gateway:
        other = champion_and_challenger(gateway, "rollout-kill")
        started = start(gateway, other, 2, plan, "waits through a kill")
        assert poll(lambda: rollout(gateway, other, started["id"])["status"] == "waiting_for_approval")
        port = rolling.app("registry").app_port
        killed = listener_pid(port)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        assert poll(lambda: listener_pid(port) not in (None, killed), 30), "the registry's app did not come back"
        still = poll(
            lambda: (r := gateway.get(f"/api/models/{other}/rollouts/{started['id']}")).status_code == 200 and r
        )
        assert still and still.json()["status"] == "waiting_for_approval", still.json() if still else None
        approved = gateway.post(f"/api/models/{other}/rollouts/{started['id']}/approve", params={"reason": "ok"})
        assert approved.status_code == 200, approved.text
        done = ended(gateway, other, started["id"], 120)
        assert done["status"] == "promoted", done
        steps = [e["action"] for e in rollout_history(gateway, other)]
        assert steps == ["rollout.started", "rollout.step", "rollout.decision", "rollout.promoted"], steps


def killed_mid_step(rolling, prefix: str, port_of) -> tuple[dict, list[str], list[int]]:
    """A rollout of a good candidate (shadow 50% for 60 predictions, then promote) whose process
    on port_of(stack) is SIGKILLed once the step has counted predictions: how it ended, its
    history and the status of every request streamed meanwhile."""
    with rolling.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, prefix)
        forest = {"dataset": name, "estimator": "random_forest"}
        assert gateway.post("/api/training/jobs", json=forest).status_code == 202
        finished_job(gateway, name, count=3)
        headers = streaming_headers(gateway)
        with Stream(rolling.gateway_url, name, headers) as stream:
            started = start(gateway, name, 3, [{"shadow": 50, "for": 60}, {"promote": True}], "through a kill")
            assert poll(lambda: rollout(gateway, name, started["id"])["step_predictions"] > 0, 60)
            port = port_of(rolling)
            killed = listener_pid(port)
            assert killed is not None
            os.kill(killed, signal.SIGKILL)
            assert poll(lambda: listener_pid(port) not in (None, killed), 30), f"{prefix}: nothing came back"
            done = ended(gateway, name, started["id"])
        steps = [e["action"] for e in rollout_history(gateway, name)]
    return done, steps, [s for _, s, _ in stream.answers]


ONE_STEP_PROMOTED = [
    "rollout.started",
    *("traffic.changed", "rollout.step", "rollout.passed"),
    "traffic.changed",
    "rollout.promoted",
]


def test_an_inference_replica_killed_mid_rollout_loses_no_step(rolling):
    done, steps, statuses = killed_mid_step(rolling, "rollout-replica", lambda s: s.replicas("inference")[0].app_port)
    assert done["status"] == "promoted", done
    assert steps == ONE_STEP_PROMOTED, steps
    failed = [s for s in statuses if s != 200]
    # A request the kill cut may fail, but as an error a client can see and retry: never as a
    # 200 without its prediction, nor without an answer from the gateway.
    assert all(isinstance(s, int) for s in failed), sorted(set(map(str, failed)))
    print(f"\nrollouts: a replica killed mid-step; promoted; {len(failed)} of {len(statuses)} requests failed")


def test_the_monitor_killed_mid_rollout_delays_its_evidence_and_loses_no_step(rolling):
    """The evidence comes from the monitor: while it is down a reading fails and is tried at the
    next poll; the shadow answers captured meanwhile reach it by redelivery."""
    done, steps, statuses = killed_mid_step(rolling, "rollout-monitor", lambda s: s.app("monitor").app_port)
    assert done["status"] == "promoted", done
    assert steps == ONE_STEP_PROMOTED, steps
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))  # not on the request path
    print(f"\nrollouts: the monitor killed mid-step; promoted; 0 of {len(statuses)} requests failed")
