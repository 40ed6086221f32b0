"""A model's monitoring policy: validated field by field; stored with its Dapr Job made to match
(scheduled, replaced, deleted); each change recorded in the model's history with who made it,
at least once (sent again when the registry was away); the same policy again records nothing."""

import asyncio

import pytest
from pydantic import ValidationError

from services.common.ports import ScheduleRefused
from services.monitor.domain.policy import DEFAULT, MonitoringPolicy, accuracy_dropped, changes
from services.monitor.monitoring import ModelNotFound, job_of
from tests.fakes import FakeJobs
from tests.unit.monitor.drifting import FakeRegistry, monitoring


def refused_field(**fields) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        MonitoringPolicy(**fields)
    error = caught.value.errors()[0]
    return ".".join(str(p) for p in error["loc"]), error["msg"]


def test_every_field_has_a_default():
    assert MonitoringPolicy() == DEFAULT
    assert (DEFAULT.window_rows, DEFAULT.window_hours, DEFAULT.drift_threshold, DEFAULT.schedule) == (
        10_000,
        24.0,
        0.2,
        None,
    )
    assert DEFAULT.on_drift == "notify" and DEFAULT.on_accuracy_drop == "none"


def test_a_bad_field_is_refused_by_its_name():
    assert refused_field(schedule="0 6 * * *")[0] == "schedule"
    assert "6 fields" in refused_field(schedule="0 6 * * *")[1]
    assert refused_field(drift_threshold=0)[0] == "drift_threshold"
    assert refused_field(window_rows=100_001)[0] == "window_rows"
    assert refused_field(on_drift="shout")[0] == "on_drift"
    assert refused_field(schedul="@daily")[0] == "schedul"  # a typo is not silently dropped


def test_retrain_is_a_policy_s_action_with_its_bounds():
    policy = MonitoringPolicy(on_drift="retrain", on_accuracy_drop="retrain")
    assert (policy.on_drift, policy.retrain_min_rows, policy.retrain_cooldown_hours) == ("retrain", 50, 24.0)
    assert refused_field(retrain_min_rows=0)[0] == "retrain_min_rows"
    assert refused_field(retrain_cooldown_hours=-1)[0] == "retrain_cooldown_hours"


def test_a_window_needs_rows_or_hours_and_min_rows_fits_in_it():
    assert "window_rows, window_hours" in refused_field(window_rows=None, window_hours=None)[1]
    assert "min_rows (500)" in refused_field(window_rows=100, min_rows=500)[1]
    assert MonitoringPolicy(window_rows=None).rows_cap == 100_000
    assert MonitoringPolicy(window_hours=None, window_rows=300).rows_cap == 300


def test_a_schedule_is_kept_without_surrounding_space():
    assert MonitoringPolicy(schedule="  @every 5s ").schedule == "@every 5s"


def test_changes_name_each_field_that_differs():
    before, after = MonitoringPolicy(), MonitoringPolicy(schedule="@daily", drift_threshold=0.3)
    assert changes(before, after) == {
        "drift_threshold": {"from": 0.2, "to": 0.3},
        "schedule": {"from": None, "to": "@daily"},
    }
    assert changes(before, before) == {}
    assert changes(after, None)["schedule"] == {"from": "@daily", "to": None}


def test_an_accuracy_drop_counts_past_the_allowance_over_enough_pairs():
    policy = MonitoringPolicy(accuracy_drop=0.05, min_rows=50)
    assert accuracy_dropped(0.95, 0.80, 100, policy) is not None
    assert "0.150 below the holdout's 0.950" in accuracy_dropped(0.95, 0.80, 100, policy)
    assert accuracy_dropped(0.95, 0.91, 100, policy) is None  # within the allowance
    assert accuracy_dropped(0.95, 0.50, 49, policy) is None  # too few pairs to say
    assert accuracy_dropped(None, 0.50, 100, policy) is None  # no holdout accuracy (a regressor)


def test_a_policy_with_a_schedule_schedules_the_models_job_and_is_recorded_with_its_actor():
    registry = FakeRegistry()
    service, ports, _ = monitoring(registry)
    state = asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@every 1h"), "ops lead", "weekly"))
    assert (state.changed, state.job, state.changed_by) == (True, "drift-check.iris", "ops lead")
    assert ports.jobs.jobs == {"drift-check.iris": ("@every 1h", {"model": "iris", "schedule": "@every 1h"})}
    (note,) = registry.notes
    assert (note.action, note.actor, note.reason) == ("monitoring.policy", "ops lead", "weekly")
    assert note.details["changes"]["schedule"] == {"from": None, "to": "@every 1h"}
    view = asyncio.run(service.view("iris"))
    assert view.policy == MonitoringPolicy(schedule="@every 1h") and view.owed == 0


def test_the_same_policy_again_records_nothing_and_sets_the_job_again():
    registry = FakeRegistry()
    service, ports, _ = monitoring(registry)
    policy = MonitoringPolicy(schedule="@every 1h")
    asyncio.run(service.set_policy("iris", policy, "ops", ""))
    ports.jobs.jobs.clear()  # as if the scheduler lost it
    again = asyncio.run(service.set_policy("iris", policy, "ops", ""))
    assert again.changed is False and len(registry.notes) == 1
    assert job_of("iris") in ports.jobs.jobs


def test_a_policy_without_a_schedule_or_removed_deletes_the_job():
    registry = FakeRegistry()
    service, ports, _ = monitoring(registry)
    asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@daily"), "ops", ""))
    asyncio.run(service.set_policy("iris", MonitoringPolicy(on_drift="none"), "ops", ""))
    assert ports.jobs.jobs == {}
    asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@daily"), "ops", ""))
    removed = asyncio.run(service.set_policy("iris", None, "ops", "not needed"))
    assert removed.policy is None and removed.job is None and ports.jobs.jobs == {}
    assert [n.reason for n in registry.notes][-1] == "not needed"
    assert registry.notes[-1].details["changes"]["schedule"] == {"from": "@daily", "to": None}


def test_a_schedule_the_scheduler_refuses_stores_nothing():
    registry = FakeRegistry()
    service, ports, _ = monitoring(registry, jobs=FakeJobs(refused=("@every 2h",)))
    with pytest.raises(ScheduleRefused):
        asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@every 2h"), "ops", ""))
    assert asyncio.run(service.view("iris")).policy is None and registry.notes == []


def test_a_model_the_registry_does_not_know_has_no_policy():
    service, ports, _ = monitoring(FakeRegistry(model="other"))
    with pytest.raises(ModelNotFound, match="no model named 'iris'"):
        asyncio.run(service.set_policy("iris", MonitoringPolicy(), "ops", ""))
    assert ports.jobs.jobs == {}


def test_a_change_made_while_the_registry_is_away_is_recorded_once_it_is_back():
    registry = FakeRegistry()
    service, _, _ = monitoring(registry)
    registry.notes_down = True
    state = asyncio.run(service.set_policy("iris", MonitoringPolicy(drift_threshold=0.5), "ops", ""))
    assert state.changed and asyncio.run(service.view("iris")).owed == 1 and registry.notes == []
    asyncio.run(service.flush_all())  # the background relay, while it is still away
    assert asyncio.run(service.view("iris")).owed == 1
    registry.notes_down = False
    asyncio.run(service.flush_all())
    assert asyncio.run(service.view("iris")).owed == 0
    (note,) = registry.notes
    assert note.details["changes"]["drift_threshold"] == {"from": None, "to": 0.5}
    asyncio.run(service.flush_all())
    assert len(registry.notes) == 1  # sent once
