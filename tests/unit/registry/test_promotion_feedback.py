"""The promotion rule for a version trained on rows labeled through feedback (a monitoring
retrain): challenger whatever the mode, unless the policy's trained_on_feedback says as_any."""

from datetime import UTC, datetime

import pytest

from services.common.contracts.models import PromotionRequest
from services.registry.domain.model import PromotionPolicy
from services.registry.domain.promotion import decide, explain, held_by_feedback

AT = datetime(2026, 1, 1, tzinfo=UTC)
AUTO, MANUAL = PromotionPolicy(mode="auto"), PromotionPolicy()
AS_ANY_AUTO = PromotionPolicy(mode="auto", trained_on_feedback="as_any")
AS_ANY_MANUAL = PromotionPolicy(trained_on_feedback="as_any")


def scores(candidate, champion=None):
    return PromotionRequest(
        candidate={"accuracy": candidate},
        champion_version=None if champion is None else 3,
        champion=None if champion is None else {"accuracy": champion},
    )


def test_the_default_keeps_a_version_trained_on_feedback_challenger():
    assert PromotionPolicy().trained_on_feedback == "challenger"
    assert held_by_feedback(MANUAL, 1) and held_by_feedback(AUTO, 120)
    assert not held_by_feedback(AUTO, 0) and not held_by_feedback(AS_ANY_AUTO, 120)


@pytest.mark.parametrize(
    ("policy", "request_", "first"),
    [
        (AUTO, scores(0.99, 0.80), False),  # it beats the champion
        (AUTO, scores(0.99), False),  # no champion to beat
        (AUTO, scores(0.99), True),  # the model never had one
        (MANUAL, scores(0.99), True),  # the first version, which first_champion would make champion
    ],
)
def test_feedback_rows_make_challenger_whatever_the_mode_and_the_scores(policy, request_, first):
    assert decide("m", 4, policy, "classification", request_, AT, first).alias == "champion"
    held = decide("m", 4, policy, "classification", request_, AT, first, feedback_rows=120)
    assert held.alias == "challenger" and held.policy == policy.mode and held.candidate == 0.99


@pytest.mark.parametrize(
    ("policy", "request_", "first", "alias"),
    [
        (AS_ANY_AUTO, scores(0.99, 0.80), False, "champion"),
        (AS_ANY_AUTO, scores(0.70, 0.80), False, "challenger"),
        (AS_ANY_MANUAL, scores(0.99), True, "champion"),
        (AS_ANY_MANUAL, scores(0.99, 0.80), False, "challenger"),
    ],
)
def test_as_any_promotes_a_version_trained_on_feedback_as_any_version(policy, request_, first, alias):
    assert decide("m", 4, policy, "classification", request_, AT, first, feedback_rows=120).alias == alias


def test_explain_says_the_feedback_rows_kept_it_challenger():
    decision = decide("m", 4, AUTO, "classification", scores(0.99, 0.80), AT, feedback_rows=120)
    why = explain(decision, False, AUTO, 120)
    assert why.startswith(
        "version 4 was trained on 120 rows labeled through feedback: the policy's trained_on_feedback keeps it "
        "challenger"
    )
    assert "accuracy 0.99" in why and "admin" in why
    assert explain(decision, False, feedback_rows=120) == why  # the default policy holds it alike


def test_explain_without_feedback_rows_is_as_before():
    decision = decide("m", 4, AUTO, "classification", scores(0.99, 0.80), AT)
    assert explain(decision, False, AUTO, 0) == "auto policy: version 4's accuracy 0.99 is at least as good as " + (
        "champion version 3's 0.8"
    )


def test_explain_under_as_any_gives_the_modes_reason_and_names_the_feedback_rows():
    decision = decide("m", 4, AS_ANY_AUTO, "classification", scores(0.99, 0.80), AT, feedback_rows=120)
    why = explain(decision, False, AS_ANY_AUTO, 120)
    assert why.startswith("auto policy: version 4's accuracy 0.99 is at least as good as champion version 3's 0.8")
    assert "120 rows labeled through feedback; trained_on_feedback is as_any" in why
