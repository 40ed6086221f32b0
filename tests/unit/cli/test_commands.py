"""What each command sends and shows, against the fake gateway."""

import csv
import json

from services.cli import jobs
from services.cli.jobs import parse_params
from services.cli.models import compiled
from tests.unit.cli.conftest import reply


def job(status: str, stage: str | None, progress: float | None, **extra):
    base = {"id": "job-1", "dataset": "houses", "version": 2, "estimator": "ridge", "params": {}, "model": "houses"}
    return {
        **base,
        "created_at": "2026-01-02T03:04:05Z",
        "status": status,
        "stage": stage,
        "progress": progress,
    } | extra


def test_params_read_as_json_values_else_strings():
    assert parse_params(["n_estimators=200", "alpha=0.5", "fit=true", "x=null", "name=deep", 's="7"']) == {
        "n_estimators": 200,
        "alpha": 0.5,
        "fit": True,
        "x": None,
        "name": "deep",
        "s": "7",
    }


def test_read_commands_print_the_raw_json_with_json(fake, cli):
    page = {"datasets": [{"name": "houses"}], "total": 1, "offset": 0, "limit": 100}
    fake.on("GET", "/api/datasets", reply(200, page))
    result = cli("datasets", "list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"datasets": [{"name": "houses"}], "total": 1}


def test_lists_are_read_page_after_page(fake, cli):
    def page(request):
        offset = int(request.url.params["offset"])
        items = [{"name": "m", "task": "regression", "versions": 1, "latest_version": 1, "aliases": {}}]
        return reply(
            200, {"models": items * (100 if offset == 0 else 20), "total": 120, "offset": offset, "limit": 100}
        )

    fake.on("GET", "/api/models", page)
    result = cli("models", "list", "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)["models"]) == 120
    assert [r.url.params["offset"] for r in fake.sent] == ["0", "100"]


def test_train_submits_then_follows_the_job_to_its_end(monkeypatch, fake, cli):
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    fake.on("POST", "/api/training/jobs", reply(202, job("PENDING", None, None)))
    result_ = {"model": "houses", "version": 3, "metrics": {"r2": 0.91}, "promotion": {"alias": "champion"}}
    fake.on(
        "GET",
        "/api/training/jobs/job-1",
        [
            reply(200, job("RUNNING", "fitting", 0.2)),
            reply(200, job("RUNNING", "evaluating", 0.6)),
            reply(200, job("COMPLETED", "done", 1.0, result=result_)),
        ],
    )
    result = cli("train", "houses", "--estimator", "ridge", "--param", "alpha=0.5")
    assert result.exit_code == 0, result.output
    assert fake.bodies("POST", "/api/training/jobs") == [
        {"dataset": "houses", "version": "latest", "estimator": "ridge", "params": {"alpha": 0.5}}
    ]
    assert fake.paths("GET").count("/api/training/jobs/job-1") == 3
    assert "houses v3 (champion)" in result.stdout and "r2=0.91" in result.stdout


def test_a_failed_job_exits_1_with_its_reason(monkeypatch, fake, cli):
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    fake.on("POST", "/api/training/jobs", reply(202, job("RUNNING", "loading", 0.05)))
    failed = job("FAILED", "fitting", 0.2, error="5 rows with a target: at least 10 are needed")
    fake.on("GET", "/api/training/jobs/job-1", reply(200, failed))
    result = cli("train", "houses", "--version", "1")
    assert result.exit_code == 1
    assert fake.bodies("POST", "/api/training/jobs") == [{"dataset": "houses", "version": 1}]
    assert result.stderr.strip().splitlines()[-1] == (
        "daprml: job job-1 failed at fitting: 5 rows with a target: at least 10 are needed"
    )


def test_train_gives_up_following_after_its_timeout(monkeypatch, fake, cli):
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    fake.on("POST", "/api/training/jobs", reply(202, job("RUNNING", "fitting", 0.2)))
    fake.on("GET", "/api/training/jobs/job-1", reply(200, job("RUNNING", "fitting", 0.2)))
    result = cli("train", "houses", "--timeout", "0")
    assert result.exit_code == 1 and "daprml jobs show job-1" in result.stderr


def test_jobs_list_passes_its_filters(fake, cli):
    fake.on("GET", "/api/training/jobs", reply(200, {"jobs": [job("COMPLETED", "done", 1.0)], "total": 1}))
    result = cli("jobs", "list", "--dataset", "houses", "--status", "failed")
    assert result.exit_code == 0 and "job-1" in result.stdout
    assert dict(fake.sent[0].url.params) == {"dataset": "houses", "status": "failed", "limit": "20"}


def test_promote_and_rollback_move_aliases(fake, cli):
    fake.on(
        "PUT",
        "/api/models/houses/aliases/champion",
        reply(200, {"model": "houses", "alias": "champion", "version": 2, "previous": 3}),
    )
    fake.on(
        "POST",
        "/api/models/houses/rollback",
        reply(200, {"model": "houses", "alias": "champion", "version": 3, "previous": 2}),
    )
    promoted = cli("models", "promote", "houses", "2")
    assert (promoted.exit_code, promoted.stdout.strip()) == (0, "houses: champion -> v2 (was v3)")
    assert fake.bodies("PUT", "/api/models/houses/aliases/champion") == [{"version": 2}]
    rolled = cli("models", "rollback", "houses")
    assert (rolled.exit_code, rolled.stdout.strip()) == (0, "houses: champion -> v3 (was v2)")


def test_names_cannot_change_the_path(fake, cli):
    cli("models", "show", "a/../b?x=1")
    assert fake.sent[0].url.raw_path == b"/api/models/a%2F..%2Fb%3Fx%3D1"


CARD = {
    "version": 4,
    "card": {
        "features": [
            {"name": "rooms", "type": "integer"},
            {"name": "area", "type": "number"},
            {"name": "garden", "type": "boolean"},
            {"name": "town", "type": "category"},
        ]
    },
}


def predictions(request):
    records = json.loads(request.content)["records"]
    return reply(
        200,
        {
            "model": "houses",
            "version": 4,
            "predictions": [float(i) for i in range(len(records))],
            "probabilities": [{"a": 0.25, "b": 0.75}] * len(records),
        },
    )


def test_predict_types_csv_cells_by_the_card_and_pins_the_version(fake, cli, tmp_path):
    (tmp_path / "rows.csv").write_text("rooms,area,garden,town,price\n3,70.5,yes,12,250000\n5,NA,false,,\n")
    fake.on("GET", "/api/models/houses/versions/challenger", reply(200, CARD))
    fake.on("POST", "/api/models/houses/predict", predictions)
    result = cli("predict", "houses", "--file", "rows.csv", "--alias", "challenger", "--proba", "--output", "out.csv")
    assert result.exit_code == 0, result.output
    assert fake.bodies("POST", "/api/models/houses/predict") == [
        {
            "records": [
                {"rooms": 3, "area": 70.5, "garden": True, "town": "12"},
                {"rooms": 5, "area": None, "garden": False, "town": None},
            ],
            "version": 4,
        }
    ]
    with (tmp_path / "out.csv").open() as f:
        written = list(csv.DictReader(f))
    assert written[0] == {
        "rooms": "3",
        "area": "70.5",
        "garden": "yes",
        "town": "12",
        "price": "250000",
        "prediction": "0.0",
        "proba_a": "0.25",
        "proba_b": "0.75",
    }
    assert "houses v4: 2 predictions written to out.csv" in result.stdout


def test_predict_from_json_in_batches_as_a_table(monkeypatch, fake, cli, tmp_path):
    from services.cli import predict

    monkeypatch.setattr(predict, "BATCH", 2)
    (tmp_path / "rows.json").write_text(json.dumps([{"rooms": i, "area": 50.0 + i} for i in range(5)]))
    fake.on("GET", "/api/models/houses/versions/champion", reply(200, CARD))
    fake.on("POST", "/api/models/houses/predict", predictions)
    result = cli("predict", "houses", "--file", "rows.json", "--head", "3")
    assert result.exit_code == 0, result.output
    assert [len(b["records"]) for b in fake.bodies("POST", "/api/models/houses/predict")] == [2, 2, 1]
    assert "houses v4" in result.stdout and "2 more rows" in result.stdout
    as_json = cli("predict", "houses", "--file", "rows.json", "--json")
    assert json.loads(as_json.stdout)["predictions"] == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_status_exits_1_when_a_service_is_down(fake, cli):
    services = [
        {"service": "gateway", "app_id": "gateway", "reachable": True, "runtime_version": "1.18.2", "error": None},
        {"service": "training", "app_id": "training", "reachable": False, "runtime_version": None, "error": "timeout"},
    ]
    fake.on("GET", "/api/status", reply(200, {"ok": False, "services": services}))
    result = cli("status")
    assert result.exit_code == 1 and "training" in result.stdout
    assert result.stderr.strip() == "daprml: not every service answers: training"


def test_numbers_are_shown_readably():
    from services.cli.render import cell

    assert [cell(0.98512), cell(203909.27), cell(3), cell(None), cell(True), cell({"r2": 0.5})] == [
        "0.9851",
        "203,909.3",
        "3",
        "-",
        "yes",
        "r2=0.5",
    ]


def test_predict_shows_the_model_contracts_warnings_of_every_batch_summed(monkeypatch, fake, cli, tmp_path):
    from services.cli import predict

    monkeypatch.setattr(predict, "BATCH", 2)
    (tmp_path / "rows.json").write_text(json.dumps([{"rooms": i} for i in range(3)]))
    fake.on("GET", "/api/models/houses/versions/champion", reply(200, CARD))

    def missing_area(request):
        answer = predictions(request)
        n = len(json.loads(request.content)["records"])
        warning = {"kind": "missing", "field": "area", "records": n, "message": f"'area' missing in {n} records"}
        return reply(200, {**answer.json(), "warnings": [warning]})

    fake.on("POST", "/api/models/houses/predict", missing_area)
    result = cli("predict", "houses", "--file", "rows.json")
    assert result.exit_code == 0, result.output
    assert "warning: missing 'area' in 3 records" in result.stderr
    as_json = json.loads(cli("predict", "houses", "--file", "rows.json", "--json").stdout)
    assert [(w["field"], w["records"]) for w in as_json["warnings"]] == [("area", 3)]


def test_a_versions_compiled_model_is_described_with_the_check_or_the_reason():
    assert compiled(None) == "no: registered before models were compiled"
    checked = {
        "artifact": {"key": "k", "sha256": "0" * 64},
        "check": {"passed": True, "rows": 340, "max_difference": 2.1e-7},
    }
    assert compiled(checked) == "yes: checked against scikit-learn on 340 rows, largest difference 2.1e-07"
    failed = {"artifact": None, "check": {"passed": False, "reason": "labels differ on 3 rows"}}
    assert compiled(failed) == "no: labels differ on 3 rows"
