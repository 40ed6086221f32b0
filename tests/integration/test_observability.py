"""Prometheus and Jaeger as infra runs them, on the session's stack: Prometheus scrapes every app
and every sidecar of it (up == 1, from the stack's own target file), Jaeger receives the
sidecars' spans, and neither listens anywhere but on 127.0.0.1. Skipped where they cannot run
(DAPRML_OBSERVABILITY=off, no Prometheus installed, no Jaeger built)."""

import json
import shutil
import subprocess
import time

import httpx
import pytest

from scripts.infra import observability
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wiring() -> observability.Wiring:
    if not observability.enabled():
        pytest.skip(f"observability is off ({observability.setting()})")
    return observability.wiring()


def query(promql: str) -> list[dict]:
    reply = httpx.get(f"{observability.PROMETHEUS_URL}/api/v1/query", params={"query": promql}, timeout=5)
    reply.raise_for_status()
    return reply.json()["data"]["result"]


def test_prometheus_scrapes_every_app_and_every_sidecar_of_the_stack(stack, wiring):
    if not wiring.metrics:
        pytest.skip("Prometheus is not installed here (make setup installs it as root)")
    expected = {g["targets"][0]: g["labels"] for g in stack.targets}
    assert {labels["kind"] for labels in expected.values()} == {"app", "daprd"}
    assert {labels["app_id"] for labels in expected.values()} == {a.app_id for a in stack.apps}
    kinds = [labels["kind"] for labels in expected.values()]
    assert kinds.count("daprd") == len(stack.apps)
    assert kinds.count("app") == len([a for a in stack.apps if a.metrics_port]) >= 5  # the Python apps at least
    ids = "|".join(sorted({a.app_id for a in stack.apps}))
    seen: dict[str, dict] = {}

    def all_up() -> bool:
        seen.clear()
        seen.update({s["metric"]["instance"]: s for s in query(f'up{{job="daprml",app_id=~"{ids}"}}')})
        return all(address in seen and seen[address]["value"][1] == "1" for address in expected)

    assert poll(all_up, timeout_s=40), {a: seen.get(a, {}).get("value") for a in expected}
    for address, labels in expected.items():
        metric = seen[address]["metric"]
        assert {k: metric[k] for k in ("app_id", "service", "kind")} == labels, address
    # What the apps serve arrives too: the gateway's request counter, by its app id.
    gateway = stack.app("gateway").app_id
    assert poll(lambda: query(f'daprml_http_requests_total{{app_id="{gateway}"}}') or None, timeout_s=20) is not None


def test_the_stacks_target_file_names_its_apps_while_it_runs(stack, wiring):
    path = observability.targets_dir() / f"{stack.name}.json"
    assert json.loads(path.read_text()) == stack.targets


def test_jaeger_lists_the_gateways_sidecar_after_one_call_through_it(stack, gateway, wiring):
    if not wiring.traces:
        pytest.skip("Jaeger is not built here (scripts/install-dapr builds it with Go)")
    services = httpx.get(f"{observability.TRACES_URL}/api/services", timeout=5)
    assert services.status_code == 200 and "data" in services.json()
    assert gateway.get("/api/models").status_code == 200
    app_id = stack.app("gateway").app_id

    def listed() -> bool:
        data = httpx.get(f"{observability.TRACES_URL}/api/services", timeout=5).json()["data"] or []
        return app_id in data

    assert poll(listed, timeout_s=30), "the gateway's daprd sent no spans to Jaeger within 30 s"
    traces = httpx.get(f"{observability.TRACES_URL}/api/traces", params={"service": app_id, "limit": 5}, timeout=5)
    assert traces.status_code == 200 and traces.json()["data"], traces.text[:300]


def listeners_of(program: str) -> list[str]:
    """The local addresses `program` listens on, from `ss -ltnp`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f'(("{program}",' in line]


@pytest.mark.parametrize("program", ["prometheus", "jaeger"])
def test_it_listens_on_loopback_only(program, stack, wiring):
    if shutil.which("ss") is None:
        pytest.skip("no ss (iproute2) here")
    if not (wiring.metrics if program == "prometheus" else wiring.traces):
        pytest.skip(f"{program} does not run here")
    addresses = listeners_of(program)
    assert addresses, f"{program} listens nowhere"
    # Another Prometheus of a user's (a test's own, say) may listen elsewhere on loopback too.
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
    if program == "jaeger":
        ports = {int(a.rsplit(":", 1)[1]) for a in addresses}
        assert {4317, 4318, 16686, 16685, 13133, 8888} <= ports, ports


def test_no_credential_reaches_the_trace_backend(stack, gateway, wiring):
    """A key sent in a query string (refused, or passed on to the registry) must not be kept in
    any span: Jaeger keeps what the sidecars and apps send it, readable by anyone on the host."""
    if not wiring.traces:
        pytest.skip("Jaeger is not built here (scripts/install-dapr builds it with Go)")
    since_us = int((time.time() - 5) * 1_000_000)  # the traces of this test only
    assert httpx.get(f"{stack.gateway_url}/api/models", params={"api_key": stack.admin_key}).status_code == 401
    assert gateway.get("/api/models", params={"token": stack.admin_key, "limit": 5}).status_code == 200
    secrets = [stack.admin_key, stack.credentials.app_token, stack.credentials.dapr_token]

    def spans() -> str | None:
        found = []
        for app in {a.app_id for a in stack.apps}:
            params = {"service": app, "start": since_us, "limit": 500}
            found.append(httpx.get(f"{observability.TRACES_URL}/api/traces", params=params, timeout=10).text)
        text = "\n".join(found)
        # Until the gateway's sidecar has exported the call to the registry, whose `url.full`
        # carries the query string the gateway passed on.
        return text if "/method/api/models?limit=5" in text else None

    text = poll(spans, timeout_s=30)
    assert text is not None, "no spans arrived"
    assert [s[:6] for s in secrets if s in text] == []
