"""The model API through the gateway: named registry operations, checked parts, nothing internal."""

import json

import pytest

from services.common.ports import Reply
from tests.api.test_gateway_routes import assert_refused_without_forwarding
from tests.fakes import FakeInvoker


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/api/models?offset=2&limit=5&x=1", "api/models?offset=2&limit=5"),
        ("GET", "/api/models/iris", "api/models/iris"),
        ("GET", "/api/models/iris/versions/3", "api/models/iris/versions/3"),
        ("GET", "/api/models/iris/versions/champion/artifact", "api/models/iris/versions/champion/artifact"),
        ("GET", "/api/models/iris/versions/2/onnx", "api/models/iris/versions/2/onnx"),
        ("GET", "/api/models/iris/history?before=9&limit=3&x=1", "api/models/iris/history?before=9&limit=3"),
        ("PUT", "/api/models/iris/aliases/champion", "api/models/iris/aliases/champion"),
        ("PUT", "/api/models/iris/aliases/champion?reason=v2 wins", "api/models/iris/aliases/champion?reason=v2+wins"),
        ("DELETE", "/api/models/iris/aliases/challenger", "api/models/iris/aliases/challenger"),
        ("PUT", "/api/models/iris/policy?reason=why", "api/models/iris/policy?reason=why"),
        ("POST", "/api/models/iris/rollback?reason=slow", "api/models/iris/rollback?reason=slow"),
    ],
)
def test_each_model_operation_is_forwarded_to_the_registry(make_client, method, path, operation):
    invoker = FakeInvoker({("registry", operation): Reply(200, b'{"ok": true}')})
    client = make_client("gateway", invoker=invoker)
    reply = client.request(method, path, json={"version": 1} if method == "PUT" else None)
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    assert [(c[0], c[1], c[2]) for c in invoker.calls] == [("registry", operation, method)]


def test_the_body_of_an_alias_move_goes_along(make_client):
    invoker = FakeInvoker({("registry", "api/models/iris/aliases/champion"): Reply(200, b"{}")})
    make_client("gateway", invoker=invoker).put("/api/models/iris/aliases/champion", json={"version": 2})
    assert json.loads(invoker.forwarded[0][4]) == {"version": 2}


HOSTILE = [
    ("POST", b"/internal/models/iris/versions"),
    ("POST", b"/api/models/iris/versions"),
    ("POST", b"/api/models/iris/versions/1/promotion"),
    ("GET", b"/api/models/IRIS"),
    ("GET", b"/api/models/iris/versions/-1"),
    ("GET", b"/api/models/iris/versions/..%2f..%2finternal/onnx"),
    ("GET", b"/api/models/iris/versions/%2e%2e/%2e%2e/%2e%2e/%2e%2e/v1.0/metadata"),
    ("PUT", b"/api/models/iris/aliases/Champion"),
    ("PUT", b"/api/models/iris/aliases/..%2f..%2f..%2fv1.0%2fshutdown"),
    ("DELETE", b"/api/models/iris%2f..%2f..%2finternal/aliases/x"),
]


@pytest.mark.parametrize(("method", "path"), HOSTILE, ids=[p.decode()[:60] for _, p in HOSTILE])
def test_internal_or_malformed_model_paths_are_refused_and_nothing_is_forwarded(method, path):
    assert_refused_without_forwarding(method, path)


def test_a_malformed_alias_is_400_naming_the_part(make_client):
    reply = make_client("gateway").put("/api/models/iris/aliases/Bad", json={"version": 1})
    assert reply.status_code == 400 and "alias" in reply.json()["detail"]
