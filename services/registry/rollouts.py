"""Rollouts: the use cases behind /api/models/{name}/rollouts and the activities of their
workflow (rollout_workflow.py). Every change is one compare-and-swap of the model record, in
the same write as its history entry and its events, and each activity's effect is made once
(RolloutState.made): the engine may run an activity again after a crash."""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from services.common.contracts.models import CanaryWeight, ShadowShare, Traffic
from services.common.contracts.rollouts import GateResult, Rollout, RolloutList, RolloutStep, StartRollout
from services.common.ports import ActivityFunction, SidecarUnavailable, Workflows
from services.registry.domain import rollout_state as states
from services.registry.domain import traffic as tables
from services.registry.domain.errors import Conflict, Missing, Unprocessable
from services.registry.domain.history import ROLLOUT
from services.registry.domain.model import CHAMPION, ModelRecord, exists, now, numbered
from services.registry.domain.rollout_start import begin
from services.registry.domain.rollout_state import RolloutState
from services.registry.rollout_workflow import DECIDED, DECISION, WORKFLOW, roll_out
from services.registry.service import RegistryService

log = logging.getLogger(__name__)


class EvidenceReader(Protocol):
    """The monitor's evidence of a model's versions, as the rollout's gates need it."""

    async def read(self, name: str, since: datetime) -> dict[str, Any]:
        """The monitor's reading now (JSON-ready; cumulative serving counters)."""

    def step(self, baseline: dict[str, Any], now: dict[str, Any], candidate: int, champion: int) -> dict[str, Any]:
        """StepEvidence (JSON-ready) between the step's first reading and this one."""


class Rollouts:
    def __init__(self, registry: RegistryService, workflows: Workflows, evidence: EvidenceReader, poll_s: float):
        self.registry, self.workflows, self.evidence, self.poll_s = registry, workflows, evidence, poll_s
        self._scanned = False  # every model looked at since this process started
        self._unstarted: set[tuple[str, str]] = set()  # (model, rollout id) whose start failed here
        workflows.define(WORKFLOW, roll_out, self.activities())
        registry.on_rollout = self._run

    # the API

    async def start(self, name: str, request: StartRollout, actor: str) -> Rollout:
        """Records the rollout in the model record (one at a time per model), then starts its
        workflow; should that fail, the registry's background relay starts it later."""
        made: RolloutState | None = None

        def add(record: ModelRecord | None) -> ModelRecord:
            nonlocal made
            record = exists(record, name)
            made = begin(record, request, actor, now())
            return record

        await self.registry.change(name, add)
        assert made is not None
        await self._run(name, made)
        return made.view()

    async def list(self, name: str) -> RolloutList:
        record = await self.registry.record(name)
        found = [await self._view(r) for r in reversed(record.rollouts)]
        return RolloutList(model=name, rollouts=found)

    async def get(self, name: str, rollout_id: str) -> Rollout:
        return await self._view(await self._rollout(name, rollout_id))

    async def decide(self, name: str, rollout_id: str, action: str, actor: str, reason: str = "") -> Rollout:
        """Hands a person's decision to the rollout's workflow: approve an approval step, or
        reject or abort from any step (both roll back). The workflow acts on it at once and
        writes it into the model's history as it takes it (`decided`); the answer is the
        rollout as it stood when the decision was sent."""
        rollout = await self._rollout(name, rollout_id)
        if rollout.finished:
            raise Conflict(f"rollout {rollout_id} of model {name!r} has ended ({rollout.status}): {rollout.outcome}")
        if action == "approve" and rollout.status != "waiting_for_approval":
            raise Conflict(
                f"rollout {rollout_id} of model {name!r} waits for no approval now (it is {rollout.status}"
                f"{_step_words(rollout)}); approve it when it reaches its approval step"
            )
        await self.workflows.raise_event(rollout.workflow, DECISION, {"action": action, "by": actor, "reason": reason})
        return await self.get(name, rollout_id)

    async def resume_all(self) -> None:
        """Starts the workflow of any running rollout whose start did not reach the engine
        (scheduling an instance that exists does nothing). Every model is looked at until one
        pass reached the engine for all (a start lost in a crash is found then); after that,
        only the rollouts whose start failed here since."""
        if self._scanned:
            pending = sorted(self._unstarted)
        else:
            pending = []
            for name in await self.registry.repo.names():
                record = await self.registry.repo.model(name)
                pending += [(name, r.id) for r in record.rollouts if not r.finished] if record else []
        for name, rollout_id in pending:
            record = await self.registry.repo.model(name)
            found = states.at(record.rollouts, rollout_id) if record else None
            self._unstarted.discard((name, rollout_id))
            if found is not None and not found.finished:
                await self._run(name, found)
        self._scanned = self._scanned or not self._unstarted

    async def _run(self, name: str, rollout: RolloutState) -> None:
        start = {
            "model": name,
            "id": rollout.id,
            "candidate": rollout.candidate,
            "champion": rollout.champion,
            "plan": [s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in rollout.plan],
            "gates": rollout.gates.model_dump(mode="json"),
            "poll_s": self.poll_s,
        }
        try:
            await self.workflows.schedule(WORKFLOW, rollout.workflow, start)
        except SidecarUnavailable as exc:
            self._unstarted.add((name, rollout.id))
            log.warning("rollout %s of model %s: its workflow will be started later: %s", rollout.id, name, exc)

    async def _rollout(self, name: str, rollout_id: str) -> RolloutState:
        record = await self.registry.record(name)
        found = states.at(record.rollouts, rollout_id)
        if found is None:
            ids = [r.id for r in record.rollouts]
            raise Missing(f"model {name!r} has no rollout {rollout_id!r}; its latest: {ids or 'none'}")
        return found

    async def _view(self, rollout: RolloutState) -> Rollout:
        """The record's facts, with the live readings of a running step from its workflow."""
        view = rollout.view()
        if rollout.finished:
            return view
        try:
            run = await self.workflows.run(rollout.workflow)
        except SidecarUnavailable:
            return view
        live = run.custom_status if run is not None and isinstance(run.custom_status, dict) else {}
        if live.get("step") == rollout.step and "gate_results" in live:
            view.gate_results = [GateResult.model_validate(r) for r in live["gate_results"]]
            view.step_predictions = int(live.get("step_predictions", 0))
        if run is not None and run.status in ("FAILED", "TERMINATED"):
            view.outcome = f"its workflow {run.status.lower()}: {run.error or run.output}"
        return view

    # the workflow's activities

    def activities(self) -> Mapping[str, ActivityFunction]:
        return {
            "begin_step": self.begin_step,
            "evidence": self.read_evidence,
            "passed": self.passed,
            DECIDED: self.decided,
            "promote": self.promote,
            "finish": self.finish,
        }

    async def begin_step(self, at: dict[str, Any]) -> None:
        """Step `step` starts: the table it needs (shadow, canary) or the wait (approval)."""

        def begin(record: ModelRecord, rollout: RolloutState) -> None:
            index = at["step"]
            step = rollout.plan[index]
            when = datetime.fromisoformat(at["started_at"])
            rollout.step, rollout.step_started_at, rollout.deadline = (
                index,
                when,
                datetime.fromisoformat(at["deadline"]),
            )
            rollout.status = "waiting_for_approval" if step.kind == "approval" else "running"
            rollout.step_predictions, rollout.gate_results = 0, []
            if record.aliases.get(CHAMPION) != rollout.champion:
                raise Unprocessable(
                    f"the champion of model {record.name!r} moved to {record.aliases.get(CHAMPION)} during rollout "
                    f"{rollout.id} (it started with version {rollout.champion})"
                )
            why = f"rollout {rollout.id} step {index + 1}: {_words(step)}"
            if step.kind in ("shadow", "canary"):
                record.set_traffic(_table(step, rollout.candidate), when, rollout.started_by, why)
                rollout.traffic = record.traffic
            details = {"rollout": rollout.id, "step": index, "kind": step.kind, "deadline": at["deadline"]}
            record.note(f"{ROLLOUT}step", rollout.started_by, why, when, details)

        await self._effect(at, f"{at['step']}:begin", begin)

    async def read_evidence(self, at: dict[str, Any]) -> dict[str, Any]:
        rollout = await self._rollout(at["model"], at["id"])
        since = rollout.step_started_at or rollout.started_at
        raw = await self.evidence.read(at["model"], since)
        if at["baseline"] is None:
            return {"raw": raw}
        assert rollout.champion is not None  # a rollout starts only under a champion
        return {"raw": raw, "evidence": self.evidence.step(at["baseline"], raw, rollout.candidate, rollout.champion)}

    async def passed(self, at: dict[str, Any]) -> None:
        def record_it(record: ModelRecord, rollout: RolloutState) -> None:
            rollout.gate_results = [GateResult.model_validate(r) for r in at["gate_results"]]
            rollout.step_predictions = at["made"]
            step = rollout.plan[at["step"]]
            why = f"rollout {rollout.id} step {at['step'] + 1} ({_words(step)}) passed its gates"
            details = {"rollout": rollout.id, "step": at["step"], "gates": _gates(at["gate_results"])}
            record.note(f"{ROLLOUT}passed", rollout.started_by, why, now(), details)

        await self._effect(at, f"{at['step']}:passed", record_it)

    async def decided(self, at: dict[str, Any]) -> None:
        """A person's decision, as the workflow took it at step `step`: into the history, once
        (a step takes one decision at most: the rollout moves on or ends with it)."""

        def record_it(record: ModelRecord, rollout: RolloutState) -> None:
            decision = at["decision"]
            action, by = decision["action"], decision.get("by") or "someone"
            why = decision.get("reason") or f"{action} rollout {rollout.id}"
            details = {"rollout": rollout.id, "decision": action, "step": at["step"]}
            record.note(f"{ROLLOUT}decision", by, why, now(), details)

        await self._effect(at, f"{at['step']}:decision", record_it)

    async def promote(self, at: dict[str, Any]) -> None:
        def promote_it(record: ModelRecord, rollout: RolloutState) -> None:
            numbered(record, rollout.candidate)
            why = f"rollout {rollout.id}: every step passed"
            details = {"rollout": rollout.id}
            record.move_alias(CHAMPION, rollout.candidate, "promotion", now(), rollout.started_by, why, details)

        await self._effect(at, "promote", promote_it)

    async def finish(self, at: dict[str, Any]) -> None:
        """The rollout ends: rolled back (the candidate leaves the table), completed (the table
        is cleared), promoted (the candidate left it on becoming champion) or failed."""

        def end(record: ModelRecord, rollout: RolloutState) -> None:
            when = now()
            rollout.status, rollout.outcome, rollout.finished_at = at["status"], at["outcome"], when
            if at.get("gate_results"):
                rollout.gate_results = [GateResult.model_validate(r) for r in at["gate_results"]]
            if rollout.candidate in record.traffic.versions:
                ended = at["status"].replace("_", " ")
                why = f"rollout {rollout.id} {ended}: version {rollout.candidate} leaves the table"
                record.set_traffic(tables.without(record.traffic, rollout.candidate), when, rollout.started_by, why)
                rollout.traffic = record.traffic
            details = {"rollout": rollout.id, "candidate": rollout.candidate, "step": rollout.step}
            if rollout.gate_results:
                details["gates"] = _gates([r.model_dump(mode="json") for r in rollout.gate_results])
            record.note(f"{ROLLOUT}{at['status']}", rollout.started_by, at["outcome"][:2000], when, details)

        await self._effect(at, "finish", end)

    async def _effect(self, at: dict[str, Any], key: str, make: Callable[[ModelRecord, RolloutState], None]) -> None:
        """Makes one effect of a rollout, once, in one write of its model record."""

        def change(record: ModelRecord | None) -> ModelRecord:
            record = exists(record, at["model"])
            rollout = states.at(record.rollouts, at["id"])
            if rollout is None:
                raise Missing(f"model {at['model']!r} no longer keeps rollout {at['id']!r}")
            if rollout.made(key):
                return record
            make(record, rollout)
            rollout.updated_at = now()
            return record

        await self.registry.change(at["model"], change)


def _table(step: RolloutStep, candidate: int) -> Traffic:
    if step.kind == "shadow":
        assert step.shadow is not None
        return Traffic(shadows=[ShadowShare(version=candidate, percent=step.shadow)])
    assert step.canary is not None
    return Traffic(canary=[CanaryWeight(version=candidate, percent=step.canary)])


def _words(step: RolloutStep) -> str:
    if step.kind == "shadow":
        return f"shadow {step.shadow:g}%"
    if step.kind == "canary":
        return f"canary {step.canary:g}%"
    return step.kind


def _step_words(rollout: RolloutState) -> str:
    return f", step {rollout.step + 1}: {_words(rollout.plan[rollout.step])}" if rollout.step is not None else ""


def _gates(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gate results as the history keeps them (small: details are bounded)."""
    keys = ("gate", "candidate", "champion", "bound", "samples", "passed")
    return [{k: r.get(k) for k in keys} for r in results]
