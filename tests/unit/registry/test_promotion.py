"""The promotion rule: which alias a new version gets."""

from datetime import UTC, datetime

import pytest

from services.common.contracts.models import PromotionRequest
from services.registry.domain.errors import Unprocessable
from services.registry.domain.model import PromotionPolicy
from services.registry.domain.promotion import at_least_as_good, decide, primary_metric

AT = datetime(2026, 1, 1, tzinfo=UTC)
AUTO, MANUAL = PromotionPolicy(mode="auto"), PromotionPolicy()


def scores(candidate, champion=None, metric="accuracy"):
    return PromotionRequest(
        candidate={metric: candidate},
        champion_version=None if champion is None else 1,
        champion=None if champion is None else {metric: champion},
    )


def alias(policy, task, request):
    return decide("m", 2, policy, task, request, AT).alias


def test_the_primary_metric_is_accuracy_or_r2_by_task_unless_the_policy_names_one():
    assert primary_metric(AUTO, "classification") == "accuracy"
    assert primary_metric(AUTO, "regression") == "r2"
    assert primary_metric(PromotionPolicy(mode="auto", metric="rmse"), "regression") == "rmse"


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "wins"),
    [
        ("accuracy", 0.91, 0.90, True),
        ("accuracy", 0.89, 0.90, False),
        ("accuracy", 0.90, 0.90, True),  # a tie promotes
        ("r2", -0.5, -0.7, True),
        ("rmse", 1.0, 2.0, True),  # error metrics: lower is better
        ("rmse", 2.0, 1.0, False),
        ("mae", 3.0, 3.0, True),
        ("log_loss", 0.3, 0.2, False),
    ],
)
def test_at_least_as_good_knows_which_way_each_metric_points(metric, candidate, champion, wins):
    assert at_least_as_good(metric, candidate, champion) is wins


def test_auto_makes_a_better_version_champion():
    assert alias(AUTO, "classification", scores(0.95, 0.90)) == "champion"


def test_auto_makes_a_worse_version_challenger():
    assert alias(AUTO, "classification", scores(0.85, 0.90)) == "challenger"


def test_auto_makes_an_equal_version_champion():
    assert alias(AUTO, "classification", scores(0.90, 0.90)) == "champion"


def test_auto_makes_the_first_version_champion_when_there_is_none():
    decision = decide("m", 1, AUTO, "regression", scores(0.1, metric="r2"), AT)
    assert decision.alias == "champion" and decision.champion is None and decision.candidate == 0.1


def test_auto_on_a_lower_is_better_policy_metric():
    rmse = PromotionPolicy(mode="auto", metric="rmse")
    assert alias(rmse, "regression", scores(1.5, 2.0, metric="rmse")) == "champion"
    assert alias(rmse, "regression", scores(2.5, 2.0, metric="rmse")) == "challenger"


def test_the_default_policy_is_manual_so_new_data_never_replaces_a_champion_by_itself():
    assert PromotionPolicy().mode == "manual"
    assert alias(PromotionPolicy(), "classification", scores(0.99, 0.5)) == "challenger"


def test_manual_sets_challenger_whenever_the_model_has_had_a_champion():
    assert alias(MANUAL, "classification", scores(0.99, 0.5)) == "challenger"
    # No champion now, but there was one (a person removed it): nothing is put back by itself.
    assert alias(MANUAL, "classification", scores(0.99)) == "challenger"


def test_manual_makes_the_first_champion_of_a_model_that_never_had_one():
    decision = decide("m", 1, MANUAL, "classification", scores(0.7), AT, first=True)
    assert decision.alias == "champion" and decision.policy == "manual"


def test_manual_without_first_champion_leaves_even_the_first_version_to_a_person():
    cautious = PromotionPolicy(first_champion=False)
    assert decide("m", 1, cautious, "classification", scores(0.7), AT, first=True).alias == "challenger"


def test_scores_without_the_primary_metric_are_refused_naming_it():
    with pytest.raises(Unprocessable, match="'r2'"):
        decide("m", 2, AUTO, "regression", scores(0.9, 0.8, metric="rmse"), AT)


def test_the_champion_and_its_scores_go_together():
    with pytest.raises(ValueError, match="go together"):
        PromotionRequest(candidate={"accuracy": 1.0}, champion_version=1)
