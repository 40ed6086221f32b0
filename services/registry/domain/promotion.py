"""The promotion rule: does a new version replace the champion?"""

from datetime import datetime

from services.common.contracts import LOWER_IS_BETTER, Task
from services.common.contracts.models import Promotion, PromotionRequest, TaskName
from services.registry.domain.errors import Unprocessable
from services.registry.domain.model import CHALLENGER, CHAMPION, PromotionPolicy

DEFAULT_METRIC: dict[TaskName, str] = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "r2"}


def primary_metric(policy: PromotionPolicy, task: TaskName) -> str:
    return policy.metric or DEFAULT_METRIC[task]


def at_least_as_good(metric: str, candidate: float, champion: float) -> bool:
    """A tie promotes: the newer version was trained on data at least as recent."""
    return candidate <= champion if metric in LOWER_IS_BETTER else candidate >= champion


def held_by_feedback(policy: PromotionPolicy, feedback_rows: int) -> bool:
    """Whether the policy keeps the version challenger because rows it was trained on were
    labeled through feedback: feedback may come with a predict key, which must not be able to
    change what is served by itself."""
    return feedback_rows > 0 and policy.trained_on_feedback == "challenger"


def decide(
    model: str,
    version: int,
    policy: PromotionPolicy,
    task: TaskName,
    request: PromotionRequest,
    at: datetime,
    first: bool = False,
    feedback_rows: int = 0,
) -> Promotion:
    """Where the new version goes. The champion's scores are those of the champion the
    request names, on the candidate's holdout; none when the model has no champion. `first`:
    the model has never had a champion (manual mode then makes it champion if the policy's
    first_champion says so: nothing served is replaced). `feedback_rows`: rows of the version's
    training data labeled through feedback (its lineage's); unless the policy's
    trained_on_feedback is as_any, any makes it challenger, whatever the mode and even when the
    model has no champion."""
    metric = primary_metric(policy, task)
    candidate = request.candidate.get(metric)
    champion = request.champion.get(metric) if request.champion is not None else None
    if policy.mode == "auto":
        if candidate is None:
            raise Unprocessable(
                f"the candidate's scores have no {metric!r}, the metric model {model!r} is promoted on; "
                f"send it (scores sent: {sorted(request.candidate)})"
            )
        if request.champion is not None and champion is None:
            raise Unprocessable(
                f"the champion's scores have no {metric!r}, the metric model {model!r} is promoted on; send it"
            )
    if held_by_feedback(policy, feedback_rows):
        wins = False
    elif policy.mode == "auto":
        wins = champion is None or (candidate is not None and at_least_as_good(metric, candidate, champion))
    else:
        wins = first and policy.first_champion
    return Promotion(
        model=model,
        version=version,
        alias=CHAMPION if wins else CHALLENGER,
        policy=policy.mode,
        metric=metric,
        candidate=candidate,
        champion=champion,
        champion_version=request.champion_version,
        decided_at=at,
    )


def explain(decision: Promotion, first: bool, policy: PromotionPolicy | None = None, feedback_rows: int = 0) -> str:
    """Why the decision went as it did, in words, for the model's history. `policy` and
    `feedback_rows` as `decide` had them (None: the default policy)."""
    scored = f"{decision.metric} {_score(decision.candidate)}"
    rows = f"version {decision.version} was trained on {feedback_rows} rows labeled through feedback"
    if held_by_feedback(policy or PromotionPolicy(), feedback_rows):
        return (
            f"{rows}: the policy's trained_on_feedback keeps it challenger ({decision.policy} policy, {scored}); "
            f"a person with the admin role moves champion"
        )
    why = _explain(decision, first, scored)
    return f"{why} ({rows}; trained_on_feedback is as_any)" if feedback_rows > 0 else why


def _explain(decision: Promotion, first: bool, scored: str) -> str:
    champion = decision.champion
    if decision.policy == "auto":
        if decision.champion_version is None:
            return f"auto policy: version {decision.version} ({scored}) had no champion to beat"
        versus = f"champion version {decision.champion_version}'s {_score(champion)}"
        if decision.alias == CHAMPION:
            return f"auto policy: version {decision.version}'s {scored} is at least as good as {versus}"
        return f"auto policy: version {decision.version}'s {scored} is worse than {versus}"
    if decision.alias == CHAMPION:
        return f"manual policy: version {decision.version} ({scored}) is the model's first champion (first_champion)"
    why = "the model had a champion before" if not first else "first_champion is off"
    return f"manual policy: version {decision.version} ({scored}) waits as challenger for a person ({why})"


def _score(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.4g}"
