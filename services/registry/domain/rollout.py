"""A rollout's judgement, over plain values: what a step's evidence says of the candidate
against the champion (gates), and whether the step is over. The workflow (rollouts/workflow.py)
gathers the evidence and acts on the verdict; nothing here does I/O or reads a clock.

A gate judges only once it has its minimum evidence (`min_samples` predictions, `min_feedback`
feedback pairs): before that its `passed` is None. A step is over when its `for` is met (its
duration has passed, or the candidate made that many predictions in it) and every gate the step
needs has passed; a gate that fails ends the rollout at once.
"""

from pydantic import BaseModel, Field

from services.common.contracts import LOWER_IS_BETTER
from services.common.contracts.rollouts import DEFAULT_FOR, GateResult, RolloutGates, RolloutStep, seconds


class VersionReading(BaseModel):
    """One version's serving over the step so far (counters since the step's start)."""

    requests: int = Field(0, ge=0)
    failures: int = Field(0, ge=0)
    p99_ms: float | None = None
    live_metric: str | None = None  # accuracy, or an error metric such as mae for regressors
    live_value: float | None = None
    live_count: int = Field(0, ge=0)  # feedback pairs behind live_value

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None


class StepEvidence(BaseModel):
    """What a step has seen of the candidate and the champion since it started."""

    candidate: VersionReading = Field(default_factory=VersionReading)
    champion: VersionReading = Field(default_factory=VersionReading)
    shadow_pairs: int = Field(0, ge=0)  # the candidate's shadow answers joined with the served ones
    agreement: float | None = None
    mean_abs_difference: float | None = None


def predictions(kind: str, evidence: StepEvidence) -> int:
    """The candidate's predictions in the step: its shadow answers, or the requests it served."""
    return evidence.shadow_pairs if kind == "shadow" else evidence.candidate.requests


def judge(kind: str, gates: RolloutGates, evidence: StepEvidence) -> list[GateResult]:
    """Every gate of a shadow or canary step, read off the evidence."""
    if kind == "shadow":
        return _shadow(gates, evidence)
    return _canary(gates, evidence)


def _shadow(gates: RolloutGates, e: StepEvidence) -> list[GateResult]:
    enough = e.shadow_pairs >= gates.min_samples
    results = []
    if gates.max_mean_abs_difference is not None and e.mean_abs_difference is not None:
        bound = gates.max_mean_abs_difference
        passed = e.mean_abs_difference <= bound if enough else None
        results.append(_result("mean_abs_difference", e.mean_abs_difference, None, bound, e.shadow_pairs, passed))
    else:
        agreed = e.agreement
        passed = (agreed is not None and agreed >= gates.min_agreement) if enough else None
        results.append(_result("agreement", agreed, None, gates.min_agreement, e.shadow_pairs, passed))
    return results


def _canary(gates: RolloutGates, e: StepEvidence) -> list[GateResult]:
    cand, champ = e.candidate, e.champion
    enough = cand.requests >= gates.min_samples
    results = []
    champion_rate = champ.error_rate or 0.0
    bound = champion_rate + gates.max_error_rate_increase
    rate = cand.error_rate
    results.append(
        _result("error_rate", rate, champ.error_rate, bound, cand.requests, (rate or 0.0) <= bound if enough else None)
    )
    latency_bound: float | None = None
    passed: bool | None = None
    if cand.p99_ms is not None and champ.p99_ms is not None:
        latency_bound = champ.p99_ms * gates.max_p99_ratio + gates.p99_slack_ms
        passed = cand.p99_ms <= latency_bound if enough and champ.requests >= gates.min_samples else None
    results.append(_result("latency_p99", cand.p99_ms, champ.p99_ms, latency_bound, cand.requests, passed))
    results.append(_accuracy(gates, cand, champ))
    return results


def _accuracy(gates: RolloutGates, cand: VersionReading, champ: VersionReading) -> GateResult:
    """The live metric from feedback, once both versions have enough pairs; never required."""
    if cand.live_value is None or champ.live_value is None or cand.live_metric != champ.live_metric:
        return _result("accuracy", cand.live_value, champ.live_value, None, cand.live_count, None)
    enough = min(cand.live_count, champ.live_count) >= gates.min_feedback
    if cand.live_metric in LOWER_IS_BETTER:  # an error (mae): it may grow by the drop's share at most
        bound = champ.live_value * (1 + gates.max_accuracy_drop)
        passed = cand.live_value <= bound if enough else None
    else:
        bound = champ.live_value - gates.max_accuracy_drop
        passed = cand.live_value >= bound if enough else None
    return _result("accuracy", cand.live_value, champ.live_value, bound, cand.live_count, passed)


def _result(
    gate: str, candidate: float | None, champion: float | None, bound: float | None, samples: int, passed: bool | None
) -> GateResult:
    return GateResult.model_validate(
        {
            "gate": gate,
            "candidate": _round(candidate),
            "champion": _round(champion),
            "bound": _round(bound),
            "samples": samples,
            "passed": passed,
        }
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


REQUIRED = {"shadow": {"agreement", "mean_abs_difference"}, "canary": {"error_rate", "latency_p99"}}


def failed(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if r.passed is False]


def over(step: RolloutStep, results: list[GateResult], made: int, elapsed_s: float) -> bool:
    """Whether a shadow or canary step is done: its `for` is met and its required gates passed."""
    wanted = step.for_ if step.for_ is not None else DEFAULT_FOR
    met = made >= wanted if isinstance(wanted, int) else elapsed_s >= seconds(wanted)
    required = [r for r in results if r.gate in REQUIRED[step.kind]]
    return met and bool(required) and all(r.passed for r in required)


def why_failed(results: list[GateResult]) -> str:
    """The failed gates and their numbers, in words."""
    return "; ".join(f"gate {r.gate} failed: {_numbers(r)}" for r in failed(results))


def why_unfinished(results: list[GateResult], made: int) -> str:
    """What a step that timed out still lacked."""
    waiting = [r.gate for r in results if r.gate in REQUIRED_ALL and r.passed is None]
    return f"{made} predictions; gates without enough evidence: {', '.join(waiting) or 'none'}"


REQUIRED_ALL = REQUIRED["shadow"] | REQUIRED["canary"]


def _numbers(r: GateResult) -> str:
    versus = f" (champion {r.champion})" if r.champion is not None else ""
    return f"candidate {r.candidate}{versus}, bound {r.bound}, over {r.samples}"
