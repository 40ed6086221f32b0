"""daprml models monitor: live metrics per version, the last drift report, the policy and the
actions, from the gateway's GET .../monitoring; --check runs a check first; --json prints it.

The fake answers are checked against the monitor's own response models, so that they stay the
shape the gateway really answers."""

import json
from copy import deepcopy
from datetime import UTC, datetime

from services.monitor.domain.reports import CheckResult
from services.monitor.monitoring import MonitoringView
from tests.unit.cli.conftest import reply

TODAY = datetime.now(UTC).date().isoformat()
AT = f"{TODAY}T10:00:00Z"


def metric(value: float, count: int) -> dict:
    return {"value": value, "count": count}


def features(drifted: bool) -> dict:
    return {
        "sepal width (cm)": {
            "psi": 3.2 if drifted else 0.03,
            "missing_share": 0.0,
            "unseen_share": 0.0,
            "drifted": drifted,
        },
        "petal length (cm)": {"psi": 0.05, "missing_share": 0.25, "unseen_share": 0.0, "drifted": False},
        "petal width (cm)": {"psi": None, "missing_share": 0.0, "unseen_share": 0.0, "drifted": False},
    }


def report(version: int, at: str, drifted: bool) -> dict:
    return {
        "model": "iris", "version": version, "check_id": f"c-{at[-9:-1]}", "at": at, "trigger": "api",
        "window_from": at, "window_to": at, "rows": 300, "threshold": 0.2,
        "drifted": ["sepal width (cm)"] if drifted else [], "features": features(drifted),
        "output": {"psi": 0.01, "missing_share": 0.0, "unseen_share": 0.0, "drifted": False},
    }  # fmt: skip


WINDOW = {
    "count": 40,
    "first": AT,
    "last": AT,
    "metrics": {"accuracy": metric(0.925, 40), "f1_macro": metric(0.91, 40)},
}
LIVE = {
    "model": "iris", "computed_at": AT, "task": "classification", "primary": "accuracy", "window": WINDOW,
    "daily": [{"day": TODAY, **WINDOW}],
    "versions": [{"version": 2, "window": WINDOW, "daily": [
        {"day": "2026-01-01", "count": 3, "metrics": {"accuracy": metric(0.333, 3)}},
        {"day": TODAY, "count": 12, "metrics": {"accuracy": metric(0.75, 12)}},
    ]}],
    "pairs": 40, "pending": 2, "held_predictions": 340, "held_feedback": 42, "held_since": AT, "truncated": False,
    "settings": {"window_pairs": 1000, "window_hours": 24.0, "retention_days": 7, "max_rows": 20000},
}  # fmt: skip
POLICY = {
    "window_rows": 300, "window_hours": 1.0, "drift_threshold": 0.2, "missing_rise": 0.1, "min_rows": 50,
    "schedule": "@every 1h", "on_drift": "notify", "on_accuracy_drop": "none", "accuracy_drop": 0.05,
}  # fmt: skip
MONITORING = {
    "model": "iris", "policy": POLICY, "changed_at": AT, "changed_by": "ops lead", "job": "drift-check.iris",
    # v2's report is the newest check's; v1's an older one: only the newest check's is shown.
    "reports": [report(2, f"{TODAY}T11:00:00Z", drifted=True), report(1, f"{TODAY}T09:00:00Z", drifted=False)],
    "checks": [{"check_id": "c-11:00:00", "at": f"{TODAY}T11:00:00Z", "trigger": "api", "actor": "ops lead",
                "versions": {"2": 300}, "drifted": {"2": ["sepal width (cm)"]}, "skipped": []}],
    "actions": [{"at": f"{TODAY}T11:00:00Z", "check_id": "c-11:00:00", "version": 2, "action": "notify",
                 "reason": "1 drifted over 300 rows: sepal width (cm)"}],
    "owed": 0, "live": LIVE,
}  # fmt: skip
EMPTY = {"model": "iris", "policy": None, "reports": [], "checks": [], "actions": [], "owed": 0, "live": None}


def test_the_fakes_are_what_the_monitor_answers():
    assert MonitoringView.model_validate(MONITORING).model_dump(mode="json")["reports"][0]["drifted"] == [
        "sepal width (cm)"
    ]
    MonitoringView.model_validate(EMPTY)
    CheckResult.model_validate(CHECKED)


def test_monitor_shows_live_metrics_with_counts_the_newest_drift_report_policy_and_actions(fake, cli):
    fake.on("GET", "/api/models/iris/monitoring", reply(200, MONITORING))
    result = cli("models", "monitor", "iris")
    assert result.exit_code == 0, result.stdout
    out = " ".join(result.stdout.split())
    for shown in (
        "@every 1h (job drift-check.iris)",  # the policy
        "300 rows, 1 h",
        "PSI > 0.2",
        "by ops lead",
        "0.925 (40)",  # the window's accuracy and its pairs
        "0.91 (40)",
        "0.75 (12)",  # today's accuracy, not the older day's
        "2 actuals wait",
        "drift of v2",  # the newest check's report
        "too few rows",  # a PSI of None
        "1 drifted over 300 rows",  # the action's reason
    ):
        assert shown in out, (shown, result.stdout)
    assert "0.333" not in out and "drift of v1" not in out
    drifted = [line for line in result.stdout.splitlines() if "sepal width" in line and "3.2" in line]
    assert drifted and drifted[0].rstrip().endswith("yes"), result.stdout
    assert [r.method for r in fake.sent] == ["GET"]


CHECKED = {
    "model": "iris", "check_id": "c-12:00:00", "at": f"{TODAY}T12:00:00Z", "trigger": "api", "champion": 2,
    "rows_read": 300, "reports": [report(2, f"{TODAY}T12:00:00Z", drifted=True)], "skipped": [], "actions": [],
}  # fmt: skip


def test_check_runs_a_check_first_and_json_prints_the_gateways_answer(fake, cli):
    after = deepcopy(MONITORING)
    after["reports"].insert(0, CHECKED["reports"][0])
    fake.on("POST", "/api/models/iris/monitoring/check", reply(200, CHECKED))
    fake.on("GET", "/api/models/iris/monitoring", reply(200, after))
    result = cli("models", "monitor", "iris", "--check")
    assert result.exit_code == 0, result.stdout
    assert "check c-12:00:00: 300 rows read; drifted v2: sepal width (cm)" in " ".join(result.stdout.split())
    assert [(r.method, r.url.path) for r in fake.sent] == [
        ("POST", "/api/models/iris/monitoring/check"),
        ("GET", "/api/models/iris/monitoring"),
    ]

    printed = cli("models", "monitor", "iris", "--json")
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == after


def test_a_model_never_monitored_says_what_to_do_and_a_refused_check_says_why(fake, cli):
    fake.on("GET", "/api/models/iris/monitoring", reply(200, EMPTY))
    result = cli("models", "monitor", "iris")
    assert result.exit_code == 0, result.stdout
    out = " ".join(result.stdout.split())
    assert "not monitored yet" in out and "/api/models/iris/feedback" in out and "--check" in out

    no_reference = "the champion v1's card records no reference distributions: retrain it"
    fake.on("POST", "/api/models/iris/monitoring/check", reply(409, {"detail": no_reference}))
    refused = cli("models", "monitor", "iris", "--check")
    assert refused.exit_code != 0 and no_reference in refused.stderr
    assert fake.paths("GET").count("/api/models/iris/monitoring") == 1  # not read after the refusal


def test_a_monitor_that_is_down_is_one_line_not_a_traceback(fake, cli):
    fake.on("GET", "/api/models/iris/monitoring", reply(503, {"detail": "the monitor did not answer"}))
    result = cli("models", "monitor", "iris")
    assert result.exit_code != 0 and "the monitor did not answer" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
