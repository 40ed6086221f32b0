"""What another service's answer means for a step of a job: only the promotion's 409 says the
champion moved; a refusal elsewhere fails the job, a failure of the callee is retried."""

import asyncio

import pytest

from services.common.clients import Unreachable
from services.common.ports import NotFound, Reply, SidecarUnavailable
from services.training.activities import Activities, Refused
from services.training.clients import Clients
from services.training.compute import Compute
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports

JOB = {"job_id": "j", "dataset": "iris", "version": 1, "schema": {}, "schema_hash": "h", "task": "classification"}
JOB |= {"estimator": "random_forest", "params": {}, "model": "iris", "seed": 1}
ROWS = ("ingestion", "api/datasets/iris/versions/1/data?format=parquet")


def reading_rows(reply: Reply) -> Exception:
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker({ROWS: reply}), workflows=FakeWorkflows())
    clients = Clients.over(ports.invoker, Settings())
    activities = Activities(ports.blobs, clients, Compute(0), Settings(), ports.workflows, ports.state)
    with pytest.raises(Exception) as raised:
        asyncio.run(activities.fit(JOB))
    return raised.value


def test_a_conflict_reading_rows_is_a_refusal_not_a_champion_that_moved():
    error = reading_rows(Reply(409, b'{"detail": "the version is being deleted"}'))
    assert type(error) is Refused and error.status == 422
    assert str(error) == "the rows of dataset 'iris' version 1: the version is being deleted"


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(404, b'{"detail": "no version 1"}'), NotFound),
        (Reply(422, b'{"detail": "no"}'), Refused),
        (Reply(500, b'{"detail": "ingestion failed"}'), SidecarUnavailable),
        (Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "no connection"}'), Unreachable),
    ],
)
def test_each_answer_reading_rows_means_one_thing(reply, kind):
    assert isinstance(reading_rows(reply), kind)
