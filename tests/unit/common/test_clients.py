"""The typed clients read every reply of the invocation port in one place: a success as its
contract model, the sidecar's own failures as Unreachable, the callee's refusals as typed
errors carrying its words."""

import asyncio
import json

import pytest

from services.common.clients import (
    Absent,
    Conflict,
    Failed,
    IngestionClient,
    Malformed,
    Refused,
    RegistryClient,
    Unreachable,
)
from services.common.contracts.models import PromotionRequest
from services.common.ports import Reply, SidecarUnavailable
from tests.fakes import FakeInvoker

VERSION = {
    "model": "iris",
    "version": 3,
    "aliases": ["champion"],
    "artifact": {"key": "models/iris/j.skops", "sha256": "a" * 64},
    "card": {"task": "classification", "target": "species", "features": [{"name": "length", "type": "number"}]},
    "metrics": {"accuracy": 0.9},
}
MANIFEST = {
    "dataset": "iris",
    "version": 2,
    "upload_id": "u1",
    "schema": {
        "task": "regression",
        "target": "y",
        "columns": [{"name": "x", "type": "number", "missing": "keep"}, {"name": "y", "type": "integer"}],
    },
    "schema_hash": "h",
    "parts": [{"key": "p", "rows": 5}],
    "row_count": 5,
    "sha256": "s",
    "profile": {},
    "rows_rejected": 0,
    "duplicates_dropped": 0,
    "created_at": "2026-12-01T00:00:00Z",
}
DOWN = Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "failed to invoke, id: registry"}')


def registry(reply: Reply, method: str = "api/models/iris/versions/champion") -> tuple[RegistryClient, FakeInvoker]:
    invoker = FakeInvoker({("registry", method): reply})
    return RegistryClient(invoker, "registry"), invoker


def version(reply: Reply):
    client, _ = registry(reply)
    return asyncio.run(client.version("iris", "champion"))


def test_a_success_is_read_into_its_contract_and_unknown_fields_are_ignored():
    info = version(Reply(200, json.dumps(VERSION).encode()))
    assert (info.version, info.card.task, info.card.features[0].type) == (3, "classification", "number")
    served = {("ingestion", "api/datasets/iris/versions/latest"): Reply(200, json.dumps(MANIFEST).encode())}
    manifest = asyncio.run(IngestionClient(FakeInvoker(served), "ingestion").manifest("iris", "latest"))
    assert (manifest.version, manifest.schema_.target_type, manifest.schema_hash) == (2, "integer", "h")


@pytest.mark.parametrize(
    ("status", "kind"), [(404, Absent), (409, Conflict), (422, Refused), (400, Refused), (500, Failed), (503, Failed)]
)
def test_the_callees_own_answers_are_typed_by_status_with_its_words(status, kind):
    with pytest.raises(kind) as raised:
        version(Reply(status, json.dumps({"detail": "its own words"}).encode()))
    assert type(raised.value) is kind
    assert (raised.value.status, raised.value.detail) == (status, "its own words")
    assert raised.value.what == "model 'iris' version 'champion'"
    assert not isinstance(raised.value, SidecarUnavailable)


@pytest.mark.parametrize(
    "reply",
    [
        DOWN,  # the app unreachable
        Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "circuit breaker is open"}'),
        Reply(404, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "no host found for app id registry"}'),
    ],
)
def test_the_sidecars_own_failures_are_unreachable_whatever_their_status(reply):
    with pytest.raises(Unreachable) as raised:
        version(reply)
    assert isinstance(raised.value, SidecarUnavailable) and raised.value.public == "the registry is unavailable"
    assert "ERR_DIRECT_INVOKE" in str(raised.value)  # the whole story, for the log


def test_an_error_body_that_is_not_json_is_the_callees_words_as_text():
    with pytest.raises(Failed, match=r"HTTP 502: bad gateway"):
        version(Reply(502, b"bad gateway", "text/plain"))


def test_a_success_that_is_not_the_contract_is_malformed():
    with pytest.raises(Malformed, match="model 'iris' version 'champion'"):
        version(Reply(200, b'{"model": "iris"}'))


def test_a_post_sends_the_contract_as_json_and_reads_the_answer():
    sent: list[bytes] = []

    async def promote(body: bytes) -> Reply:
        sent.append(body)
        return Reply(409, b'{"detail": "the champion is version 4, not 3"}')

    client, invoker = registry(Reply(200, b""), "internal/models/iris/versions/5/promotion")
    invoker.replies[("registry", "internal/models/iris/versions/5/promotion")] = promote
    request = PromotionRequest(candidate={"accuracy": 0.9}, champion_version=3, champion={"accuracy": 0.8})
    with pytest.raises(Conflict, match="the champion is version 4"):
        asyncio.run(client.promote("iris", 5, request))
    assert json.loads(sent[0]) == request.model_dump(mode="json")
    assert invoker.calls == [("registry", "internal/models/iris/versions/5/promotion", "POST")]


def test_bytes_come_back_as_they_are():
    client, _ = registry(Reply(200, b"PK\x03\x04", "application/octet-stream"), "api/models/iris/versions/3/artifact")
    assert asyncio.run(client.artifact("iris", 3)) == b"PK\x03\x04"
    rows = IngestionClient(
        FakeInvoker({("ingestion", "api/datasets/iris/versions/2/data?format=parquet"): Reply(200, b"PAR1")}),
        "ingestion",
    )
    assert asyncio.run(rows.rows("iris", 2)) == b"PAR1"
