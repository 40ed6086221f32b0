"""Rollouts over in-memory fakes of the registry's ports: the workflow runs in-process (FakeWorkflows:
waits for a decision time out at once, on the workflow's own clock) over a scripted monitor."""

import asyncio
from datetime import datetime
from typing import Any

import pytest

from services.common.contracts.models import PromotionRequest, RegisterVersion, Traffic
from services.common.contracts.rollouts import StartRollout
from services.common.errors import ClientError
from services.common.ports import SidecarUnavailable
from services.registry.domain.model import PromotionPolicy
from services.registry.domain.rollout import StepEvidence, VersionReading
from services.registry.repository import ModelRepository
from services.registry.rollout_workflow import DECIDED
from services.registry.rollouts import Rollouts
from services.registry.service import RegistryService
from services.registry.settings import Settings
from tests.api.test_registry_api import registration
from tests.fakes import FakeBlobStore, FakePublisher, FakeStateStore, FakeWorkflows


class Monitor:
    """Each reading counts one more poll; a step's evidence grows by `per_poll` predictions a poll."""

    def __init__(self, agreement: float = 1.0, per_poll: int = 10, failures: int = 0, p99_ms: float = 5.0):
        self.polls, self.agreement, self.per_poll, self.failures, self.p99_ms = 0, agreement, per_poll, failures, p99_ms
        self.down = False

    async def read(self, name: str, since: datetime) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("the monitor is away")
        self.polls += 1
        return {"polls": self.polls}

    def step(self, baseline: dict[str, Any], now: dict[str, Any], candidate: int, champion: int) -> dict[str, Any]:
        made = (now["polls"] - baseline["polls"]) * self.per_poll
        return StepEvidence(
            candidate=VersionReading(requests=made, failures=min(made, self.failures), p99_ms=self.p99_ms),
            champion=VersionReading(requests=made * 3, p99_ms=5.0),
            shadow_pairs=made,
            agreement=self.agreement,
        ).model_dump(mode="json")


def setup(monitor: Monitor) -> tuple[Rollouts, RegistryService, FakeWorkflows]:
    repo = ModelRepository(FakeStateStore(), FakeBlobStore(), 5)
    service = RegistryService(repo, FakePublisher(), Settings())
    workflows = FakeWorkflows()
    rollouts = Rollouts(service, workflows, monitor, poll_s=10)

    async def models() -> None:
        for job in ("job-1", "job-2"):
            await service.register("iris", RegisterVersion.model_validate(registration(job=job)))
        await service.set_alias("iris", "champion", 1, "ops")

    asyncio.run(models())
    return rollouts, service, workflows


def plan(*steps: dict[str, Any]) -> StartRollout:
    return StartRollout.model_validate({"candidate": 2, "plan": list(steps), "reason": "try v2"})


def actions(service: RegistryService) -> list[str]:
    entries = asyncio.run(service.history("iris", limit=100)).entries
    return [e.action for e in reversed(entries)]


def test_a_candidate_as_good_as_the_champion_passes_its_gates_and_is_promoted():
    rollouts, service, _ = setup(Monitor())
    steps = plan({"shadow": 50, "for": 40}, {"canary": 30, "for": 40}, {"promote": True})
    started = asyncio.run(rollouts.start("iris", steps, "ops"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert (done.status, done.outcome) == ("promoted", "version 2 is champion"), done
    record = asyncio.run(service.record("iris"))
    assert record.aliases["champion"] == 2 and record.traffic == Traffic()
    assert actions(service)[1:] == [
        "rollout.started",
        *("traffic.changed", "rollout.step", "rollout.passed"),  # the shadow step
        *("traffic.changed", "rollout.step", "rollout.passed"),  # the canary step
        "alias.moved",
        "traffic.changed",  # the candidate leaves the table on becoming champion, in the same write
        "rollout.promoted",
    ]
    passed = [r for r in done.gate_results if r.gate == "error_rate"]
    assert passed and passed[0].passed is True and passed[0].samples >= 40


def test_a_candidate_that_disagrees_is_rolled_back_by_its_gate_with_the_numbers():
    rollouts, service, _ = setup(Monitor(agreement=0.3))
    started = asyncio.run(rollouts.start("iris", plan({"shadow": 50, "for": 40}, {"promote": True}), "ops"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "rolled_back"
    assert "gate agreement failed: candidate 0.3" in done.outcome and "bound 0.9" in done.outcome
    record = asyncio.run(service.record("iris"))
    assert record.aliases["champion"] == 1 and record.traffic == Traffic()
    last = asyncio.run(service.history("iris", limit=1)).entries[0]
    assert last.action == "rollout.rolled_back" and last.details["gates"][0]["passed"] is False


def test_failing_requests_roll_a_canary_back():
    rollouts, _, _ = setup(Monitor(failures=5))
    started = asyncio.run(rollouts.start("iris", plan({"canary": 30, "for": 100}, {"promote": True}), "ops"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "rolled_back" and "gate error_rate failed" in done.outcome, done.outcome


def test_an_approval_waits_and_approve_moves_it_on():
    rollouts, service, workflows = setup(Monitor())
    started = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    waiting = asyncio.run(rollouts.get("iris", started.id))
    assert waiting.status == "waiting_for_approval" and waiting.deadline is not None
    asyncio.run(rollouts.decide("iris", started.id, "approve", "boss", "looks fine"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "promoted"
    entries = asyncio.run(service.history("iris", limit=20)).entries
    (decision,) = [e for e in entries if e.action == "rollout.decision"]
    assert (decision.actor, decision.reason, decision.details["decision"]) == ("boss", "looks fine", "approve")


def test_the_workflow_writes_the_decision_it_takes_once_and_none_it_never_got():
    rollouts, service, workflows = setup(Monitor())
    started = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    workflows.down = True  # the engine away: the decision never reaches the workflow
    with pytest.raises(SidecarUnavailable):
        asyncio.run(rollouts.decide("iris", started.id, "reject", "boss", "no"))
    assert "rollout.decision" not in actions(service)
    workflows.down = False
    at = {"model": "iris", "id": started.id, "step": 0, "decision": {"action": "reject", "by": "boss", "reason": "no"}}
    for _ in range(2):  # an activity the engine runs again after a crash
        asyncio.run(rollouts.decided(at))
    assert actions(service).count("rollout.decision") == 1


def test_reject_rolls_back_and_a_finished_rollout_takes_no_decision():
    rollouts, service, _ = setup(Monitor())
    started = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    asyncio.run(rollouts.decide("iris", started.id, "reject", "boss", "not now"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert (done.status, done.outcome) == ("rolled_back", "rejected by boss: not now")
    assert asyncio.run(service.record("iris")).aliases["champion"] == 1
    with pytest.raises(ClientError, match="has ended"):
        asyncio.run(rollouts.decide("iris", started.id, "abort", "boss"))


def test_an_approval_nobody_gives_times_out_and_rolls_back():
    rollouts, _, workflows = setup(Monitor())
    started = asyncio.run(rollouts.start("iris", plan({"approval": True, "timeout": "2h"}, {"promote": True}), "ops"))
    asyncio.run(workflows.fire_timeout(f"rollout-iris-{started.id}"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "rolled_back" and "nobody approved within 2h" in done.outcome


def test_one_rollout_at_a_time_and_approve_only_where_one_waits():
    rollouts, _, workflows = setup(Monitor(per_poll=0))  # no traffic: the shadow step waits
    started = asyncio.run(rollouts.start("iris", plan({"shadow": 50, "timeout": "1h"}, {"promote": True}), "ops"))
    # The fake's waits time out at once, so without evidence the step ran to its deadline.
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "rolled_back" and "timed out" in done.outcome and "0 predictions" in done.outcome
    # 360 polls of 10 s: the workflow continued as new every MAX_POLLS (100), where it was.
    assert workflows.runs[f"rollout-iris-{started.id}"].runs == 4
    workflows.run_on_schedule = False  # the next one stays in its first step
    again = asyncio.run(rollouts.start("iris", plan({"shadow": 50}, {"approval": True}, {"promote": True}), "ops"))
    with pytest.raises(ClientError, match="has rollout r2 running"):
        asyncio.run(rollouts.start("iris", plan({"approval": True}), "ops"))
    with pytest.raises(ClientError, match="waits for no approval"):
        asyncio.run(rollouts.decide("iris", again.id, "approve", "boss"))


def test_a_repeated_activity_has_no_second_effect():
    rollouts, service, workflows = setup(Monitor())
    workflows.run_on_schedule = False
    started = asyncio.run(rollouts.start("iris", plan({"shadow": 20, "for": 10}, {"promote": True}), "ops"))
    at = {"model": "iris", "id": started.id, "step": 0, "started_at": "2026-01-01T00:00:00+00:00"}
    at["deadline"] = "2026-01-01T01:00:00+00:00"
    before = len(actions(service))
    for _ in range(2):
        asyncio.run(rollouts.begin_step(at))
    assert actions(service)[before:] == ["traffic.changed", "rollout.step"]
    for _ in range(2):
        asyncio.run(rollouts.promote({"model": "iris", "id": started.id, "step": 1}))
        asyncio.run(
            rollouts.finish({"model": "iris", "id": started.id, "step": None, "status": "promoted", "outcome": "ok"})
        )
    assert actions(service)[before + 2 :] == ["alias.moved", "traffic.changed", "rollout.promoted"]


def test_the_monitor_away_for_a_while_loses_no_step():
    monitor = Monitor()
    rollouts, _, workflows = setup(monitor)
    calls = {"n": 0}

    def flaky(name: str) -> None:
        calls["n"] += 1
        monitor.down = name == "evidence" and calls["n"] in (3, 4, 5)

    workflows.before_activity = flaky
    started = asyncio.run(rollouts.start("iris", plan({"shadow": 50, "for": 30}, {"promote": True}), "ops"))
    done = asyncio.run(rollouts.get("iris", started.id))
    assert done.status == "promoted", done.outcome


def test_a_policy_with_a_plan_rolls_a_winner_out_instead_of_promoting_it():
    rollouts, service, _ = setup(Monitor())
    plan = [{"approval": True}, {"promote": True}]
    policy = PromotionPolicy.model_validate({"mode": "auto", "rollout": plan})
    asyncio.run(service.set_policy("iris", policy, "ops"))
    asyncio.run(service.register("iris", RegisterVersion.model_validate(registration(job="job-3", accuracy=0.95))))
    scores = {"candidate": {"accuracy": 0.95}, "champion_version": 1, "champion": {"accuracy": 0.9}}
    decision = asyncio.run(service.promote("iris", 3, PromotionRequest.model_validate(scores), "training"))
    assert decision.alias == "challenger"
    (started,) = asyncio.run(rollouts.list("iris")).rollouts
    assert (started.candidate, started.champion, started.status) == (3, 1, "waiting_for_approval")
    assert started.reason.startswith("promotion policy: auto policy: version 3's accuracy 0.95")
    entry = next(e for e in asyncio.run(service.history("iris", limit=20)).entries if e.action == "rollout.started")
    assert (entry.actor, entry.details["rollout"]) == ("training", started.id)
    assert asyncio.run(service.record("iris")).aliases["champion"] == 1


def test_a_start_that_did_not_reach_the_engine_is_made_by_the_relay_which_then_looks_at_nothing_else():
    rollouts, _, workflows = setup(Monitor())
    workflows.run_on_schedule, workflows.down = False, True
    started = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    instance = f"rollout-iris-{started.id}"
    assert instance not in workflows.runs  # recorded, not running: the relay's to start
    asyncio.run(rollouts.resume_all())  # the engine still away: tried, kept for the next pass
    workflows.down = False
    asyncio.run(rollouts.resume_all())
    assert instance in workflows.runs and workflows.scheduled == [instance] * 3
    # Every model was looked at once, all started: later passes schedule nothing, read nothing.
    asyncio.run(rollouts.resume_all())
    assert workflows.scheduled == [instance] * 3


def test_after_a_restart_the_relay_looks_at_every_model_once_for_a_start_lost_in_a_crash():
    rollouts, service, workflows = setup(Monitor())
    workflows.run_on_schedule = False
    started = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    workflows.runs.clear()  # as if the process died between the record's write and the start
    restarted = Rollouts(service, workflows, Monitor(), poll_s=10)
    asyncio.run(restarted.resume_all())
    assert f"rollout-iris-{started.id}" in workflows.runs


def test_a_rollout_started_before_decisions_were_recorded_by_the_workflow_takes_them_without_the_activity():
    """Its history has no `decided` activity: replayed with one it would no longer match (a
    non-determinism failure after an upgrade); WorkflowContext.patched keeps it as it ran."""
    rollouts, service, workflows = setup(Monitor())
    workflows.made_before = frozenset({DECIDED})
    older = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    asyncio.run(rollouts.decide("iris", older.id, "reject", "boss", "not now"))
    assert asyncio.run(rollouts.get("iris", older.id)).status == "rolled_back"
    assert DECIDED not in workflows.activity_calls
    workflows.made_before = frozenset()
    newer = asyncio.run(rollouts.start("iris", plan({"approval": True}, {"promote": True}), "ops"))
    asyncio.run(rollouts.decide("iris", newer.id, "reject", "boss", "not now"))
    assert workflows.activity_calls.count(DECIDED) == 1
