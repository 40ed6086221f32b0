"""The Jobs port over the sidecar's HTTP API (seen by an httpx transport: what is sent, and how
the sidecar's answers read), and the job route a service declares: a trigger reaches the
handler of its kind with its key and data, only from the sidecar and only for the deployment's
own jobs."""

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.common.app import ServiceSpec, build_app
from services.common.dapr_adapters import DaprJobs, Sidecar, sidecar_ports
from services.common.errors import ClientError
from services.common.ports import ConcurrencyConflict, Jobs, ScheduleRefused, SidecarPorts, SidecarUnavailable
from services.common.settings import ServiceSettings
from tests.fakes import FakeProbe


def jobs_over(answer) -> tuple[DaprJobs, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    sidecar = Sidecar(ServiceSettings(dapr_http_port=3599))
    sidecar.http = httpx.AsyncClient(base_url=sidecar.http_url, transport=httpx.MockTransport(record))
    return DaprJobs(sidecar, prefix="run1."), sent


def test_a_job_is_scheduled_under_the_deployments_prefix_with_its_data():
    jobs, sent = jobs_over(lambda _: httpx.Response(204))
    asyncio.run(jobs.schedule("drift-check.iris", "@every 5s", {"model": "iris"}))
    (request,) = sent
    assert (request.method, str(request.url)) == ("POST", "http://127.0.0.1:3599/v1.0/jobs/run1.drift-check.iris")
    assert json.loads(request.content) == {"schedule": "@every 5s", "data": {"model": "iris"}, "overwrite": True}
    asyncio.run(jobs.delete("drift-check.iris"))
    assert (sent[1].method, sent[1].url.path) == ("DELETE", "/v1.0/jobs/run1.drift-check.iris")


def error(status: int, message: str, code: str = "DAPR_SCHEDULER_SCHEDULE_JOB"):
    return lambda _: httpx.Response(status, json={"errorCode": code, "message": message})


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (error(409, "job already exists"), ConcurrencyConflict),
        (error(400, "bad request"), ScheduleRefused),
        (error(500, "rpc error: code = Unknown desc = expected exactly 6 fields, found 5"), ScheduleRefused),
        (error(500, "rpc error: code = Unavailable desc = connection refused"), SidecarUnavailable),
    ],
)
def test_the_sidecars_answers_read_as_the_ports_errors(answer, raised):
    jobs, _ = jobs_over(answer)
    with pytest.raises(raised):
        asyncio.run(jobs.schedule("drift-check.iris", "0 6 * * *", overwrite=False))


def test_deleting_a_job_that_is_not_there_is_no_error_but_a_scheduler_away_is():
    asyncio.run(jobs_over(error(500, "job not found", "DAPR_SCHEDULER_DELETE_JOB"))[0].delete("x.y"))
    asyncio.run(jobs_over(lambda _: httpx.Response(404))[0].delete("x.y"))
    with pytest.raises(SidecarUnavailable):
        asyncio.run(jobs_over(error(500, "connection refused", "DAPR_SCHEDULER_DELETE_JOB"))[0].delete("x.y"))


def test_a_sidecar_that_does_not_answer_is_unavailable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(SidecarUnavailable):
        asyncio.run(jobs_over(refuse)[0].schedule("drift-check.iris", "@daily"))


def test_sidecar_ports_make_the_jobs_adapter_with_the_topic_prefix():
    from dataclasses import dataclass

    @dataclass(kw_only=True)
    class WithJobs(SidecarPorts):
        jobs: Jobs

    ports = sidecar_ports(WithJobs, ServiceSettings(topic_prefix="run7."))
    assert isinstance(ports.jobs, DaprJobs) and ports.jobs.prefix == "run7."
    asyncio.run(ports.close())


TOKEN = "app-token"


def app_with_jobs(handled: list, fail: Exception | None = None) -> FastAPI:
    async def handle(key: str, data: dict) -> None:
        if fail is not None:
            raise fail
        handled.append((key, data))

    settings = ServiceSettings(app_id="svc", topic_prefix="run1.", app_api_token=SecretStr(TOKEN))
    return build_app(
        ServiceSpec(title="svc", settings=settings, ports=SidecarPorts(probe=FakeProbe()), jobs={"drift-check": handle})
    )


def trigger(app: FastAPI, name: str, body: bytes = b'{"model": "iris"}', token: str | None = TOKEN):
    with TestClient(app) as client:
        headers = {"dapr-api-token": token} if token else {}
        return client.post(f"/job/{name}", content=body, headers=headers | {"content-type": "application/json"})


def test_a_trigger_reaches_the_handler_of_its_kind_with_its_key_and_data():
    handled: list = []
    reply = trigger(app_with_jobs(handled), "run1.drift-check.iris")
    assert reply.status_code == 200 and handled == [("iris", {"model": "iris"})]
    assert trigger(app_with_jobs(handled), "run1.drift-check.wine", body=b"").status_code == 200
    assert handled[-1] == ("wine", {})


def test_another_deployments_job_or_an_unknown_kind_is_not_handled():
    handled: list = []
    assert trigger(app_with_jobs(handled), "run2.drift-check.iris").status_code == 404
    assert trigger(app_with_jobs(handled), "run1.retention.iris").status_code == 404
    assert trigger(app_with_jobs(handled), "run1.drift-check").status_code == 404
    assert handled == []


def test_only_the_sidecar_triggers_jobs():
    handled: list = []
    assert trigger(app_with_jobs(handled), "run1.drift-check.iris", token="wrong").status_code == 401
    assert handled == []


def test_a_refusal_drops_the_trigger_and_a_failure_asks_for_a_retry():
    assert trigger(app_with_jobs([], ClientError("no such model")), "run1.drift-check.iris").json()["status"] == (
        "dropped"
    )
    assert trigger(app_with_jobs([], SidecarUnavailable("store away")), "run1.drift-check.iris").status_code == 503
    assert trigger(app_with_jobs([], RuntimeError("bug")), "run1.drift-check.iris").status_code == 500


def test_job_routes_are_not_in_the_openapi_document():
    assert not any(path.startswith("/job") for path in app_with_jobs([]).openapi()["paths"])
