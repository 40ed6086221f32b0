"""Every service repeats an answer's Content-Length in x-body-length, which daprd passes on
(it drops Content-Length), so that a caller can tell an answer cut short (invoke.py)."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from services.common.middleware import BODY_LENGTH, RequestIds


async def _chunks():
    yield b"a"
    yield b"b"


APP = RequestIds(
    Starlette(
        routes=[
            Route("/json", lambda _: JSONResponse({"predictions": [1, 2, 3]})),
            Route("/stream", lambda _: StreamingResponse(_chunks())),
        ]
    )
)


def test_a_whole_answer_says_its_length_again_and_a_streamed_one_does_not():
    client = TestClient(APP)
    whole = client.get("/json")
    assert whole.headers[BODY_LENGTH] == whole.headers["content-length"] == str(len(whole.content))
    streamed = client.get("/stream")
    assert streamed.content == b"ab" and BODY_LENGTH not in streamed.headers
    assert whole.headers["x-request-id"] and streamed.headers["x-request-id"]
