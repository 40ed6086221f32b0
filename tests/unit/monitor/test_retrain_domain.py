"""Retraining's pure parts: which captured predictions a retrain adds (those with an actual sent
by its order's time, each once, the actual as the target), how the rows go up (NDJSON parts
within a size), and when a check orders one (the champion's drift or accuracy drop, the policy
saying retrain, not within the cooldown)."""

import json
from datetime import timedelta

from services.monitor.domain.actions import retrain_ordered
from services.monitor.domain.ledger import Truth
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import ActionTaken
from services.monitor.domain.retrain import RETRAIN, RETRAIN_SKIPPED, labeled_records, ndjson_parts
from tests.unit.monitor.drifting import NOW, captured, draw


def test_a_retrain_adds_the_captures_with_an_actual_sent_by_its_time_with_the_actual_as_target():
    rows = captured(draw(4, seed=1))
    truths = {
        rows[0].prediction_id: Truth("yes", NOW - timedelta(minutes=1)),
        rows[2].prediction_id: Truth("no", NOW - timedelta(minutes=1)),
        rows[3].prediction_id: Truth("yes", NOW + timedelta(minutes=1)),  # after the order: left out
    }
    records = labeled_records([*rows, rows[0]], truths, "y", NOW)  # a row captured twice is added once
    assert records == [{**rows[0].inputs, "y": "yes"}, {**rows[2].inputs, "y": "no"}]


def test_an_input_named_like_the_target_gives_way_to_the_actual():
    (row,) = captured([{"x": 1.0, "colour": "red", "y": "guess"}])
    assert labeled_records([row], {row.prediction_id: Truth("no", NOW)}, "y", NOW)[0]["y"] == "no"


def test_rows_go_up_as_ndjson_parts_within_the_size_and_non_finite_numbers_as_null():
    records = [{"x": float(i), "colour": "red"} for i in range(100)] + [{"x": float("nan"), "colour": None}]
    parts = list(ndjson_parts(records, max_bytes=500))
    assert len(parts) > 1 and all(len(p) <= 500 for p in parts)
    back = [json.loads(line) for part in parts for line in part.splitlines()]
    assert back[:100] == records[:100] and back[100] == {"x": None, "colour": None}


def found(version: int, reason: str = "1 drifted over 300 rows: x") -> list[ActionTaken]:
    return [ActionTaken(at=NOW, check_id="iris-c1", version=version, action="notify", reason=reason)]


def test_a_check_orders_a_retrain_of_the_champion_when_the_policy_says_retrain():
    policy = MonitoringPolicy(on_drift="retrain")
    actions, owed = retrain_ordered(policy, "iris", 1, found(1), [], None, "iris-c1", NOW, "ops")
    ((action,), (item,)) = actions, owed
    assert (action.action, action.version) == (RETRAIN, 1)
    order = item.retrain
    assert (item.kind, order.model, order.version, order.until, order.min_rows) == ("retrain", "iris", 1, NOW, 50)
    assert order.id == "iris-c1-retrain" and "drift" in order.reason and order.actor == "ops"


def test_no_retrain_for_a_version_other_than_the_champion_or_an_action_the_policy_does_not_retrain_for():
    assert retrain_ordered(MonitoringPolicy(on_drift="retrain"), "iris", 2, found(1), [], None, "c", NOW, None) == (
        [],
        [],
    )
    notify = MonitoringPolicy(on_drift="notify", on_accuracy_drop="retrain")
    assert retrain_ordered(notify, "iris", 1, found(1), [], None, "c", NOW, None) == ([], [])
    drop = found(1, "live accuracy 0.700 over 80 pairs is 0.250 below the holdout's 0.950")
    actions, owed = retrain_ordered(notify, "iris", 1, [], drop, None, "c", NOW, None)
    assert [a.action for a in actions] == [RETRAIN] and "live accuracy" in owed[0].retrain.reason


def test_within_the_cooldown_a_retrain_is_skipped_and_says_when_the_last_was_ordered():
    policy = MonitoringPolicy(on_drift="retrain", retrain_cooldown_hours=6)
    recent = NOW - timedelta(hours=5)
    (action,), owed = retrain_ordered(policy, "iris", 1, found(1), [], recent, "c", NOW, None)
    assert action.action == RETRAIN_SKIPPED and owed == [] and "retrain_cooldown_hours (6)" in action.reason
    later = retrain_ordered(policy, "iris", 1, found(1), [], NOW - timedelta(hours=7), "c", NOW, None)
    assert later[0][0].action == RETRAIN
