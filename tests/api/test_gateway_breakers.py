"""The gateway's breakers open only when a service does not answer, never on what a client sends."""

from collections.abc import AsyncIterator

import pytest

from services.common.ports import AnswerCutShort, Reply, StreamedReply
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


class CuttingInvoker(FakeInvoker):
    """Answers as a sidecar does for an app that died while answering: the status and headers,
    then the body ends early (the adapter raises AnswerCutShort at its end)."""

    def __init__(self, declared: int, sent: bytes):
        super().__init__({})
        self.declared, self.sent = declared, sent

    async def forward(self, app_id, method, http_verb, headers, body) -> StreamedReply:
        self.forwarded.append((app_id, method, http_verb, headers, b""))

        async def cut() -> AsyncIterator[bytes]:
            yield self.sent
            raise AnswerCutShort(f"{app_id} ended early", f"the {app_id} service's answer was cut short")

        async def close() -> None:
            return None

        return StreamedReply(200, {"content-type": "application/json"}, cut(), close, self.declared)


def test_an_answer_cut_short_is_a_503_to_retry_and_counts_against_the_service(make_client):
    client = make_client("gateway", invoker=CuttingInvoker(declared=120, sent=b'{"predictions": [0,'))
    answers = [client.post("/api/models/iris/predict", json={"records": [[1, 2, 3, 4]]}) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [503] * 5, [a.text for a in answers]
    assert "answer was cut short" in answers[0].json()["detail"] and answers[0].headers["retry-after"] == "5"
    assert "held back" in answers[-1].json()["detail"]  # five in a row opened the breaker
    counted = {"service": "inference", "reason": "answer_cut_short"}
    assert client.app.state.metrics.get_sample_value("daprml_gateway_upstream_unavailable_total", counted) == 5


def test_a_long_answer_cut_short_breaks_its_transfer_instead_of_ending_as_complete(make_client):
    client = make_client("gateway", invoker=CuttingInvoker(declared=1_000_000, sent=b"x" * 100_000))
    # The gateway has sent the status and the Content-Length: it can only stop (uvicorn closes
    # the connection; the test client raises what the app raised).
    with pytest.raises(RuntimeError, match="response already started") as raised:
        client.get("/api/datasets/iris/versions/1/data")
    assert isinstance(raised.value.__cause__, AnswerCutShort)
    counted = {"service": "ingestion", "reason": "answer_cut_short"}
    assert client.app.state.metrics.get_sample_value("daprml_gateway_upstream_unavailable_total", counted) == 1
