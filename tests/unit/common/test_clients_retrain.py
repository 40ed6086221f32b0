"""The calls a monitoring retrain makes: an upload with an origin through ingestion (start, parts,
commit) and a training job, each sent as its contract says and its answer read, or its refusal
typed, as every typed client does."""

import asyncio
import json

import pytest

from services.common.clients import Absent, Conflict, IngestionClient, Malformed, Refused, TrainingClient, Unreachable
from services.common.contracts import Origin
from services.common.contracts.jobs import JobRequest
from services.common.ports import Reply
from tests.fakes import FakeInvoker

UPLOAD = "0123456789abcdef0123456789abcdef"
ORIGIN = Origin(model="iris", retrain_id="r-1", base_version=3, feedback_rows=40)
STATE = {"upload_id": UPLOAD, "dataset": "iris", "state": "open", "parts": [], "rows_accepted": 0, "version": None}
COMMIT = {"dataset": "iris", "version": 4, "unchanged": False, "row_count": 190, "sha256": "s", "profile": {}}
DOWN = Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "failed to invoke, id: ingestion"}')


def recording(reply: Reply, sent: list[bytes]):
    """A reply that keeps the body it was sent with."""

    async def answer(body: bytes) -> Reply:
        sent.append(body)
        return reply

    return answer


class Headers(FakeInvoker):
    """Also keeps the headers of each call."""

    def __init__(self, replies):
        super().__init__(replies)
        self.headers: list[dict[str, str]] = []

    async def call(self, app_id, method, http_verb="GET", body=b"", headers=None):
        self.headers.append(dict(headers or {}))
        return await super().call(app_id, method, http_verb, body, headers)


def ingestion(replies) -> tuple[IngestionClient, Headers]:
    invoker = Headers(replies)
    return IngestionClient(invoker, "ingestion"), invoker


def test_start_upload_posts_the_origin_to_the_internal_route_and_answers_the_upload_id():
    sent: list[bytes] = []
    method = "internal/datasets/iris/uploads"
    client, invoker = ingestion({("ingestion", method): recording(Reply(201, json.dumps(STATE).encode()), sent)})
    assert asyncio.run(client.start_upload("iris", ORIGIN)) == UPLOAD
    assert invoker.calls == [("ingestion", method, "POST")]
    assert json.loads(sent[0]) == {"origin": ORIGIN.model_dump(mode="json"), "target": None, "task": None}
    assert invoker.headers[0]["content-type"] == "application/json"


def test_start_upload_of_a_base_version_ingestion_lacks_is_absent_with_its_words():
    words = {"detail": "dataset 'iris' has no version 3, which the origin names as its base"}
    client, _ = ingestion({("ingestion", "internal/datasets/iris/uploads"): Reply(404, json.dumps(words).encode())})
    with pytest.raises(Absent) as raised:
        asyncio.run(client.start_upload("iris", ORIGIN))
    assert raised.value.detail == words["detail"] and raised.value.what == "starting an upload of dataset 'iris'"


def test_put_part_sends_the_bytes_as_they_are_with_their_content_type():
    sent: list[bytes] = []
    method = f"api/datasets/iris/uploads/{UPLOAD}/parts/2"
    client, invoker = ingestion({("ingestion", method): recording(Reply(200, b'{"part": 2}'), sent)})
    body = b'{"sepal": 5.1, "species": "setosa"}\n{"sepal": 7.0, "species": "versicolor"}\n'
    assert asyncio.run(client.put_part("iris", UPLOAD, 2, body, "application/x-ndjson")) is None
    assert sent[0] == body
    assert invoker.calls == [("ingestion", method, "PUT")]
    assert invoker.headers[0]["content-type"] == "application/x-ndjson"


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(422, b'{"detail": "every row was rejected"}'), Refused),
        (Reply(409, b'{"detail": "upload is being committed and takes no more parts"}'), Conflict),
        (Reply(413, b'{"detail": "the body is 9 bytes; one part may be at most 8 bytes"}'), Refused),
        (DOWN, Unreachable),
    ],
)
def test_a_refused_part_is_typed_with_ingestions_words(reply, kind):
    client, _ = ingestion({("ingestion", f"api/datasets/iris/uploads/{UPLOAD}/parts/1"): reply})
    with pytest.raises(kind) as raised:
        asyncio.run(client.put_part("iris", UPLOAD, 1, b"x", "text/csv"))
    assert type(raised.value) is kind
    if kind is Unreachable:
        assert raised.value.public == "the ingestion service is unavailable"
    else:
        assert raised.value.detail in reply.body.decode()


@pytest.mark.parametrize(("status", "unchanged"), [(201, False), (200, True)])
def test_commit_answers_the_version_and_whether_it_is_the_latest_unchanged(status, unchanged):
    method = f"api/datasets/iris/uploads/{UPLOAD}/commit"
    answer = {**COMMIT, "unchanged": unchanged, "version": 3 if unchanged else 4}
    client, invoker = ingestion({("ingestion", method): Reply(status, json.dumps(answer).encode())})
    committed = asyncio.run(client.commit("iris", UPLOAD))
    assert (committed.dataset, committed.version, committed.unchanged, committed.row_count) == (
        "iris",
        answer["version"],
        unchanged,
        190,
    )
    assert invoker.calls == [("ingestion", method, "POST")]


def test_a_commit_answer_that_is_not_the_contract_is_malformed():
    method = f"api/datasets/iris/uploads/{UPLOAD}/commit"
    client, _ = ingestion({("ingestion", method): Reply(201, b'{"dataset": "iris"}')})
    with pytest.raises(Malformed, match=f"committing upload '{UPLOAD}'"):
        asyncio.run(client.commit("iris", UPLOAD))


def test_submit_posts_the_job_request_and_answers_the_job_id():
    sent: list[bytes] = []
    job = {"id": "iris-v4-random-forest-0123456789ab", "dataset": "iris", "version": 4, "status": "PENDING"}
    invoker = FakeInvoker({("training", "api/training/jobs"): recording(Reply(202, json.dumps(job).encode()), sent)})
    request = JobRequest(dataset="iris", version=4, estimator="random_forest", params={"n_estimators": 50}, model="m")
    assert asyncio.run(TrainingClient(invoker, "training").submit(request)) == job["id"]
    assert invoker.calls == [("training", "api/training/jobs", "POST")]
    assert JobRequest.model_validate_json(sent[0]) == request


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(429, b'{"detail": "too many jobs are waiting"}'), Refused),
        (Reply(422, b'{"detail": "unknown estimator"}'), Refused),
        (Reply(404, b'{"detail": "dataset \'iris\' has no version 4"}'), Absent),
        (
            Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "no host found for app id training"}'),
            Unreachable,
        ),
    ],
)
def test_a_refused_submission_is_typed_with_trainings_words(reply, kind):
    invoker = FakeInvoker({("training", "api/training/jobs"): reply})
    with pytest.raises(kind) as raised:
        asyncio.run(TrainingClient(invoker, "training").submit(JobRequest(dataset="iris", version=4)))
    assert type(raised.value) is kind
    if kind is Unreachable:
        assert raised.value.public == "the training service is unavailable"
    else:
        assert raised.value.status == reply.status and raised.value.what == "a training job on dataset 'iris' version 4"
