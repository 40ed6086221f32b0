"""Service invocation through real sidecars when the callee dies in the middle of an answer.

daprd passes an app's answer on as it arrives, without its Content-Length, and when the app's
connection breaks after the status has gone out it ends the answer there as if it were whole
(a 200 with part of its body, or none: seen through the gateway while a replica was killed).
Our apps repeat the length in x-body-length; the invoker compares (dapr_adapters/invoke.py)."""

import asyncio
from pathlib import Path

import httpx
import pytest

from services.common.dapr_adapters import DaprInvoker, Sidecar
from services.common.ports import AnswerCutShort
from services.common.settings import ServiceSettings

CUTTING = str(Path(__file__).with_name("cutting.py"))
SIZE = 5000


async def _through_the_invoker(settings, app_id: str) -> dict[str, object]:
    sidecar = Sidecar(settings)
    invoker = DaprInvoker(sidecar)
    seen: dict[str, object] = {}
    try:
        seen["whole call"] = len((await invoker.call(app_id, f"whole/{SIZE}")).body)
        reply = await invoker.forward(app_id, f"whole/{SIZE}", "GET", {}, _nothing())
        seen["whole forward"] = (reply.status, reply.length, len(b"".join([c async for c in reply.body])))
        await reply.close()
        with pytest.raises(AnswerCutShort, match=f"ended after 10 of the {SIZE} bytes") as cut:
            await invoker.call(app_id, f"cut/{SIZE}")
        seen["cut call"] = cut.value.public
        reply = await invoker.forward(app_id, f"cut/{SIZE}", "GET", {}, _nothing())
        with pytest.raises(AnswerCutShort):
            async for _ in reply.body:
                pass
        await reply.close()
        seen["cut forward"] = (reply.status, reply.length)
    finally:
        await sidecar.close()
    return seen


async def _nothing():
    return
    yield


def test_an_answer_whose_app_died_midway_is_cut_short_for_the_caller_not_a_short_200(one_app_stack):
    # Called through its own sidecar (its solo stack resolves no other app's name): daprd's
    # HTTP invoke handler copies the answer the same way whichever sidecar the app is behind.
    solo = one_app_stack(["python", CUTTING], like="ingestion")
    solo.start(timeout_s=60)
    app = solo.apps[0]
    app_id = app.app_id

    # What daprd does on its own: the status went out, so the answer just ends.
    invoke = f"http://127.0.0.1:{app.http_port}/v1.0/invoke/{app_id}/method"
    raw = httpx.get(f"{invoke}/cut/{SIZE}", headers=solo.sidecar_headers(), timeout=30)
    assert raw.status_code == 200 and len(raw.content) == 10, (raw.status_code, raw.content[:100])
    assert "content-length" not in raw.headers and raw.headers["x-body-length"] == str(SIZE)

    settings = ServiceSettings(
        app_id=app_id,
        dapr_http_port=app.http_port,
        dapr_grpc_port=app.grpc_port,
        dapr_api_token=solo.credentials.dapr_token,
    )
    seen = asyncio.run(_through_the_invoker(settings, app_id))
    assert seen == {
        "whole call": SIZE,
        "whole forward": (200, SIZE, SIZE),
        "cut call": f"the {app_id} service's answer was cut short (it may be restarting)",
        "cut forward": (200, SIZE),
    }
