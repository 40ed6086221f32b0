"""Canceled jobs in the CLI: `daprml jobs cancel`, and `daprml train` following a job that is
canceled meanwhile."""

from services.cli import jobs
from tests.unit.cli.conftest import reply
from tests.unit.cli.test_commands import job


def test_jobs_cancel_sends_delete_and_shows_the_canceled_job(fake, cli):
    fake.on("DELETE", "/api/training/jobs/job-1", reply(200, job("CANCELED", "fitting", 0.2, error="canceled")))
    result = cli("jobs", "cancel", "job-1")
    assert result.exit_code == 0, result.output
    assert fake.paths("DELETE") == ["/api/training/jobs/job-1"]
    assert "CANCELED" in result.stdout and "fitting" in result.stdout


def test_canceling_a_finished_job_exits_1_with_the_servers_reason(fake, cli):
    detail = {"detail": "job job-1 has completed already; there is nothing to cancel"}
    fake.on("DELETE", "/api/training/jobs/job-1", reply(409, detail))
    result = cli("jobs", "cancel", "job-1")
    assert result.exit_code == 1
    assert "job job-1 has completed already; there is nothing to cancel" in result.stderr


def test_train_stops_following_a_job_canceled_meanwhile_and_exits_1(monkeypatch, fake, cli):
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)
    fake.on("POST", "/api/training/jobs", reply(202, job("RUNNING", "fitting", 0.2)))
    canceled = job("CANCELED", "fitting", 0.2, error="canceled at stage fitting")
    fake.on("GET", "/api/training/jobs/job-1", [reply(200, job("RUNNING", "queued", 0.2)), reply(200, canceled)])
    result = cli("train", "houses")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "daprml: job job-1 canceled at fitting: canceled at stage fitting"
    assert fake.paths("GET").count("/api/training/jobs/job-1") == 2


def test_jobs_list_filters_by_canceled(fake, cli):
    fake.on("GET", "/api/training/jobs", reply(200, {"jobs": [job("CANCELED", "fitting", 0.2)], "total": 1}))
    result = cli("jobs", "list", "--status", "canceled")
    assert result.exit_code == 0 and "CANCELED" in result.stdout
    assert dict(fake.sent[0].url.params)["status"] == "canceled"
