"""The gateway's breakers open only when a service does not answer, never on what a client sends."""

from services.common.ports import Reply
from services.gateway.forwarding.breaker import Breakers
from tests.fakes import FakeInvoker

DOWN = Reply(500, b'{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: ingestion"}')
INVALID = Reply(422, b'{"detail": "records: at least one"}')
OK = Reply(200, b'{"datasets": []}')


def test_a_clients_invalid_calls_never_open_the_breaker(make_client):
    invoker = FakeInvoker({("ingestion", "api/datasets/iris"): INVALID, ("ingestion", "api/datasets"): OK})
    client = make_client("gateway", invoker=invoker)
    assert {client.get("/api/datasets/iris").status_code for _ in range(200)} == {422}
    assert client.get("/api/datasets").status_code == 200
    assert client.app.state.services[Breakers].of("ingestion").trips == 0


def test_a_service_that_does_not_answer_opens_its_breaker_and_calls_are_held_back(make_client):
    invoker = FakeInvoker({("ingestion", "api/datasets/iris"): DOWN})
    client = make_client("gateway", invoker=invoker)
    answers = [client.get("/api/datasets/iris") for _ in range(8)]
    assert [a.status_code for a in answers] == [503] * 8
    assert len(invoker.forwarded) == 5  # the breaker opened after 5 in a row: the rest never went out
    assert "held back" in answers[-1].json()["detail"] and int(answers[-1].headers["retry-after"]) >= 1
    # Other services are not held back.
    assert client.get("/api/training/jobs").status_code == 404  # the fake answers 404 for what it does not know
