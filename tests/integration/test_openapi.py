"""The gateway's OpenAPI document says the truth: Schemathesis (in .venv-fuzz, a venv of its own)
generates requests from it, valid and invalid, sends them to a real stack with an admin key and
checks every answer against the document: no server error, every status documented, every body
as its schema says, invalid input refused, no operation that ignores the key, Allow on 405.

It runs on a stack of its own: what it commits (datasets, and the training jobs they start) must
not weigh on the other tests. Operations that would take the stack from under it are left out:
revoking keys (it would revoke its own), moving aliases, submitting training jobs, replaying or
deleting dead letters, the round trip (slow, and covered by its own tests).

The gateway documents each forwarded body with the schema of the service that reads it
(services/gateway/forwarded_docs.py), so Schemathesis generates bodies the services' models
describe, not just any object.
"""

import re
import subprocess
import time
import uuid

import httpx
import pytest

from scripts.proc import ROOT
from scripts.stack import Stack

pytestmark = pytest.mark.integration
SCHEMATHESIS = ROOT / ".venv-fuzz" / "bin" / "st"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]
LEFT_OUT = [
    ("DELETE", "^/api/keys/"),
    ("PUT|DELETE", "^/api/models/[^/]+/aliases/"),
    ("POST", "^/api/models/[^/]+/rollback$"),
    ("POST", "^/api/training/jobs$"),
    ("POST|DELETE", "^/api/events/dead-letters/"),
    ("POST", "^/api/roundtrip$"),
]


@pytest.fixture(scope="module")
def fuzzed(infrastructure, tmp_path_factory):
    stack = Stack.isolated(tmp_path_factory.mktemp("fuzzed"), uuid.uuid4().hex[:8])
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_schemathesis_finds_the_gateway_true_to_its_openapi_document(fuzzed, tmp_path):
    if not SCHEMATHESIS.exists():
        pytest.fail("Schemathesis is missing: `make fuzz-tools` installs it into .venv-fuzz", pytrace=False)
    document = httpx.get(f"{fuzzed.gateway_url}/openapi.json").json()
    left_out = [
        operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if any(re.match(f"^({m})$", method.upper()) and re.match(p, path) for m, p in LEFT_OUT)
    ]
    assert len(left_out) >= len(LEFT_OUT)
    exclusions = [arg for operation_id in left_out for arg in ("--exclude-operation-id", operation_id)]
    argv = [
        str(SCHEMATHESIS),
        "run",
        f"{fuzzed.gateway_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzzed.admin_key}",
        "--checks",
        ",".join(CHECKS),
        "--seed",
        "20261203",
        "--max-examples",
        "15",
        "--max-time",
        "150",
        "--workers",
        "1",
        "--rate-limit",
        "50/s",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        *exclusions,
    ]
    t0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache goes there
    summary = done.stdout[done.stdout.rfind("SUMMARY") :] if "SUMMARY" in done.stdout else done.stdout[-4000:]
    print(f"\nschemathesis ({time.monotonic() - t0:.0f}s):\n{summary}")
    assert done.returncode == 0, done.stdout[-30000:] + done.stderr[-3000:]
