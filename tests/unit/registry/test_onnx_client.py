"""RegistryClient.onnx: the ONNX file of a version as the registry serves it, and its 404
(a version without one) as Absent carrying the registry's reason."""

import asyncio

import pytest

from services.common.clients import Absent, RegistryClient
from services.common.ports import Reply
from tests.fakes import FakeInvoker

METHOD = "api/models/iris/versions/3/onnx"


def client(reply: Reply) -> tuple[RegistryClient, FakeInvoker]:
    invoker = FakeInvoker({("registry", METHOD): reply})
    return RegistryClient(invoker, "registry"), invoker


def test_the_onnx_file_comes_back_as_it_is():
    registry, invoker = client(Reply(200, b"\x08\x07onnx bytes", "application/octet-stream"))
    assert asyncio.run(registry.onnx("iris", 3)) == b"\x08\x07onnx bytes"
    assert invoker.calls == [("registry", METHOD, "GET")]


def test_a_version_without_an_onnx_file_is_absent_with_the_reason():
    reason = "model 'iris' version 3 has no ONNX file: the pipeline could not be converted to ONNX"
    registry, _ = client(Reply(404, b'{"detail": "' + reason.encode() + b'"}'))
    with pytest.raises(Absent, match="could not be converted to ONNX"):
        asyncio.run(registry.onnx("iris", 3))
