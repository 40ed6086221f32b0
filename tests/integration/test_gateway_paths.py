"""Through the real stack: paths built to climb out of the dataset API reach nothing.

The requests go out with http.client, which sends a path as it is given (an HTTP client like
httpx would tidy '..' and '%2e' away first, and prove nothing).
"""

import http.client
import json
import uuid

import httpx
import pytest

from tests.integration.conftest import poll

pytestmark = pytest.mark.integration

CLIMB = "/%2e%2e" * 8
TARGETS = [
    ("GET", "/v1.0/secrets/secretstore/gateway"),
    ("GET", "/v1.0/metadata"),
    ("POST", "/v1.0/shutdown"),
    ("POST", "/v1.0/bindings/blobstore"),
    ("POST", "/v1.0/publish/pubsub/dataset-versions"),
    ("POST", "/v1.0/state/statestore"),
    ("GET", "/internal/roundtrip/x"),
]


def send_raw(port: int, method: str, path: str, body: bytes = b"", key: str = "") -> tuple[int, bytes]:
    """With the admin key, so that what refuses the request is its path, not a missing key."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        conn.request(method, path, body=body or None, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_paths_that_climb_out_of_the_dataset_api_reach_nothing(stack, gateway):
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    data = b"x,y\n1,a\n2,b\n3,a\n"
    created = gateway.post(
        f"/api/datasets/{name}/versions?target=y", content=data, headers={"content-type": "text/csv"}
    )
    assert created.status_code == 201, created.text
    before = gateway.get(f"/api/datasets/{name}/versions/1/data").content
    secret = json.loads((stack.workdir / ".data" / "secrets.json").read_text())["gateway"]["admin-token"]
    forged = json.dumps([{"key": f"dataset:{name}", "value": "overwritten"}]).encode()
    port = stack.app("gateway").app_port

    answers = []
    for method, target in TARGETS:
        for prefix in (
            f"/api/datasets{CLIMB}",
            f"/api/datasets/{name}/versions/1{CLIMB}",
            f"/api/datasets/{name}%2f..%2f..%2f..%2f..%2f..",
            "/api/datasets/..%2f..%2f..%2f..",
        ):
            status, body = send_raw(port, method, prefix + target, forged if method == "POST" else b"", stack.admin_key)
            answers.append((method, prefix + target, status))
            assert status in (400, 404, 405), (method, prefix + target, status, body[:300])
            assert secret.encode() not in body
    assert len(answers) == len(TARGETS) * 4

    # The gateway's sidecar was not shut down, its store and blobs not touched.
    sidecar = f"http://127.0.0.1:{stack.app('gateway').http_port}"
    assert httpx.get(f"{sidecar}/v1.0/healthz", headers=stack.sidecar_headers()).status_code == 204
    assert gateway.get("/api/status").json()["ok"] is True
    assert gateway.get(f"/api/datasets/{name}/versions/1/data").content == before
    assert gateway.get(f"/api/datasets/{name}").json()["name"] == name


def test_a_nul_or_an_encoded_slash_in_a_dataset_name_is_a_400_or_404_with_a_message(stack):
    port = stack.app("gateway").app_port
    for path in ("/api/datasets/iris%00", "/api/datasets/ir%00is/versions/1", "/api/datasets/a%2fb/versions/1"):
        status, body = send_raw(port, "GET", path, key=stack.admin_key)
        assert status in (400, 404), (path, status, body)
        assert json.loads(body)["detail"]


def test_a_body_over_the_limit_is_a_413_with_a_message(stack, gateway):
    limit = 32 * 1024 * 1024
    reply = gateway.post(
        "/api/datasets/toolarge/versions?target=y",
        content=b"y\n" + b"1\n" * (limit // 2 + 1),
        headers={"content-type": "text/csv"},
    )
    assert reply.status_code == 413, reply.text
    assert "multi-part upload" in reply.json()["detail"]
    assert poll(lambda: gateway.get("/api/datasets/toolarge").status_code == 404, 5)
