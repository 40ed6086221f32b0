"""The exact URL our Dapr adapter sends to the sidecar, seen by an httpx transport that records
it (no sidecar, and no imitation of one: nothing answers but a fixed 200)."""

import asyncio

import httpx
import pytest

from services.common.dapr_adapters import DaprInvoker, Sidecar, UnsafePath, invoke_path
from services.common.ports import AnswerCutShort, SidecarUnavailable
from services.common.settings import ServiceSettings


def recording_sidecar() -> tuple[Sidecar, list[str]]:
    sent: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={})

    sidecar = Sidecar(ServiceSettings(dapr_http_port=3599))
    sidecar.http = httpx.AsyncClient(base_url=sidecar.http_url, transport=httpx.MockTransport(record))
    return sidecar, sent


async def _empty():
    return
    yield


def test_a_named_operation_leaves_as_exactly_that_url():
    sidecar, sent = recording_sidecar()
    asyncio.run(DaprInvoker(sidecar).call("ingestion", "api/datasets/iris/versions/latest/rows?offset=0&limit=5"))
    reply = asyncio.run(
        DaprInvoker(sidecar).forward("ingestion-ab12", "api/datasets/iris/uploads", "POST", {}, _empty())
    )
    asyncio.run(reply.close())
    assert sent == [
        "http://127.0.0.1:3599/v1.0/invoke/ingestion/method/api/datasets/iris/versions/latest/rows?offset=0&limit=5",
        "http://127.0.0.1:3599/v1.0/invoke/ingestion-ab12/method/api/datasets/iris/uploads",
    ]


@pytest.mark.parametrize(
    ("app_id", "method"),
    [
        ("ingestion", "api/datasets/../../../v1.0/secrets/secretstore/gateway"),
        ("ingestion", "api/datasets/./x"),
        ("ingestion", "api/datasets/%2e%2e/%2e%2e/v1.0/shutdown"),
        ("ingestion", "api/datasets/a%2Fb"),
        ("ingestion", "/v1.0/shutdown"),
        ("ingestion", "api//datasets"),
        ("ingestion", "api/datasets/iris\x00"),
        ("ingestion", "api/datasets?x=1#frag"),
        ("ingestion", "api/datasets/iris?a=b/../../c d"),
        ("../v1.0/metadata", "healthz"),
        ("Ingestion", "healthz"),
        ("ingestion/method/x", "healthz"),
    ],
)
def test_anything_but_plain_segments_is_refused_before_a_byte_is_sent(app_id, method):
    sidecar, sent = recording_sidecar()
    with pytest.raises(UnsafePath):
        asyncio.run(DaprInvoker(sidecar).call(app_id, method))
    with pytest.raises(UnsafePath):
        asyncio.run(DaprInvoker(sidecar).forward(app_id, method, "GET", {}, _empty()))
    assert sent == []


def test_invoke_path_keeps_a_plain_query():
    assert invoke_path("gateway", "readyz") == "/v1.0/invoke/gateway/method/readyz"
    assert (
        invoke_path("ingestion", "api/datasets?offset=10&limit=5")
        == "/v1.0/invoke/ingestion/method/api/datasets?offset=10&limit=5"
    )


def test_a_blob_too_big_for_one_message_is_refused_in_words_before_anything_is_sent():
    from services.common.dapr_adapters import DaprBlobStore
    from services.common.ports import BlobTooLarge

    sidecar, sent = recording_sidecar()
    sidecar.settings = ServiceSettings(dapr_http_port=3599, max_message_bytes=1 << 20)
    with pytest.raises(BlobTooLarge, match=r"'models/m/j.skops' is 1.0 MB; the blob store takes at most 0.7 MB"):
        asyncio.run(DaprBlobStore(sidecar, "blobstore").put("models/m/j.skops", b"x" * 1_000_000))
    assert sent == []


UNREACHED = {"errorCode": "ERR_DIRECT_INVOKE", "message": "failed to invoke, id: registry"}


def answering(*answers: httpx.Response | Exception) -> tuple[Sidecar, list[str]]:
    """A sidecar client whose transport gives these answers in turn (the last one after that)."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        found = answers[min(len(sent), len(answers)) - 1]
        if isinstance(found, Exception):
            raise found
        return found

    sidecar = Sidecar(ServiceSettings(dapr_http_port=3599))
    sidecar.http = httpx.AsyncClient(base_url=sidecar.http_url, transport=httpx.MockTransport(answer))
    return sidecar, sent


def test_a_get_that_did_not_reach_the_app_goes_again_and_a_post_does_not():
    sidecar, sent = answering(httpx.Response(500, json=UNREACHED), httpx.Response(200, json={"ok": True}))
    assert asyncio.run(DaprInvoker(sidecar).call("registry", "api/models")).status == 200
    assert sent == ["GET", "GET"]
    sidecar, sent = answering(httpx.Response(500, json=UNREACHED), httpx.Response(200, json={"ok": True}))
    assert asyncio.run(DaprInvoker(sidecar).call("registry", "api/models", "POST")).status == 500
    assert sent == ["POST"]


def test_an_apps_own_error_is_not_sent_again_and_retries_end():
    sidecar, sent = answering(httpx.Response(500, json={"detail": "registry failed"}))
    assert asyncio.run(DaprInvoker(sidecar).call("registry", "api/models")).status == 500
    assert sent == ["GET"]
    sidecar, sent = answering(httpx.Response(500, json=UNREACHED))
    reply = asyncio.run(DaprInvoker(sidecar).forward("registry", "api/models", "GET", {}, _empty()))
    assert reply.status == 500 and sent == ["GET", "GET", "GET"]


def test_a_sidecar_that_does_not_answer_is_unavailable_after_the_retries():
    sidecar, sent = answering(httpx.ConnectError("refused"))
    with pytest.raises(SidecarUnavailable, match="invoking registry/api/models .* failed: refused") as failed:
        asyncio.run(DaprInvoker(sidecar).call("registry", "api/models"))
    assert failed.value.public == "the registry service cannot be reached"
    assert sent == ["GET", "GET", "GET"]


def cut(declared: int, body: bytes) -> httpx.Response:
    """What daprd passes on for an app that died while answering: the status, the app's
    headers but its Content-Length, and the body as far as it got."""
    headers = {"x-body-length": str(declared), "content-type": "application/json"}
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))  # read as it arrives


def test_an_answer_shorter_than_its_app_declared_is_cut_short_not_a_short_success():
    sidecar, sent = answering(cut(40, b'{"predictions": [1]}'), cut(20, b'{"predictions": [1]}'))
    with pytest.raises(AnswerCutShort, match="ended after 20 of the 40 bytes") as failed:
        asyncio.run(DaprInvoker(sidecar).call("inference", "api/models/iris/predict", "POST"))
    assert sent == ["POST"] and "answer was cut short" in failed.value.public
    sidecar, sent = answering(cut(40, b""), cut(13, b'{"models": 1}'))
    assert asyncio.run(DaprInvoker(sidecar).call("registry", "api/models")).body == b'{"models": 1}'
    assert sent == ["GET", "GET"]  # a GET goes again


def test_a_forwarded_answer_says_its_length_and_raises_at_its_end_when_cut():
    async def read(length: int, body: bytes) -> tuple[int | None, bytes]:
        sidecar, _ = answering(cut(length, body))
        reply = await DaprInvoker(sidecar).forward("inference", "api/models/iris/predict", "POST", {}, _empty())
        return reply.length, b"".join([chunk async for chunk in reply.body])

    assert asyncio.run(read(13, b'{"models": 1}')) == (13, b'{"models": 1}')
    with pytest.raises(AnswerCutShort, match="ended after 3 of the 13 bytes"):
        asyncio.run(read(13, b'{"m'))
