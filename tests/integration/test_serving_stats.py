"""Serving stats on the real stack, with two inference replicas behind the gateway: each replica
sends its counters per model version on `serving-stats`, the monitor sums them, and the
registry reads them through its sidecar as a rollout will (GET /internal/models/{name}/evidence
on the monitor: the registry may call it, dapr/access.yaml). Every prediction through the
gateway is counted once, whichever replica served it; a canary version whose file was lost
counts a failure for each request routed to it while the champion answers those."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.common.contracts.monitoring import Evidence
from tests.integration.conftest import poll
from tests.integration.test_hot_swap import ROWS, champion_and_challenger, replicated, streaming_headers
from tests.integration.test_traffic import replica_samples

pytestmark = pytest.mark.integration
__all__ = ["replicated"]  # the module's stack: two inference replicas

CALLS = 200


def evidence(stack, name: str, since: datetime) -> Evidence:
    """Read as the registry reads it: through the registry's sidecar, invoking the monitor."""
    registry, monitor = stack.app("registry"), stack.app("monitor")
    url = f"http://127.0.0.1:{registry.http_port}/v1.0/invoke/{monitor.app_id}/method/internal/models/{name}/evidence"
    reply = httpx.get(url, params={"since": since.isoformat()}, headers=stack.sidecar_headers(), timeout=30)
    assert reply.status_code == 200, reply.text
    return Evidence.model_validate(reply.json())


def predict(client: httpx.Client, name: str, calls: int) -> list[int]:
    answers = [client.post(f"/api/models/{name}/predict", json={"records": ROWS}) for _ in range(calls)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
    return [a.json()["version"] for a in answers]


def test_every_prediction_is_counted_once_across_the_replicas_and_a_broken_canary_counts_failures(replicated):
    since = datetime.now(UTC) - timedelta(seconds=1)
    with replicated.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, "stats")
        headers = streaming_headers(gateway)
        second = gateway.get(f"/api/models/{name}/versions/2").json()

    with httpx.Client(base_url=replicated.gateway_url, headers=headers, timeout=30) as client:
        assert set(predict(client, name, CALLS)) == {1}
    per_replica = replica_samples(
        replicated, "daprml_inference_requests_total", model=name, version="1", outcome="success"
    )
    assert len(per_replica) == 2 and all(n > 0 for n in per_replica), f"a replica served nothing: {per_replica}"

    def counted() -> Evidence | None:
        read = evidence(replicated, name, since)
        return read if read.served(1).requests >= CALLS else None

    read = poll(counted, 60)
    assert read is not None, evidence(replicated, name, since).serving
    champion = read.delta(1, None)
    assert (champion.requests, champion.failures) == (CALLS, 0)  # once each, over both replicas
    p99 = champion.latency_ms(0.99)
    print(f"\n{CALLS} predictions over replicas {per_replica}: p99 {p99:.1f} ms as the monitor sums it")
    assert p99 is not None and 0 < p99 <= read.latency_bounds_ms[-1]

    # Version 2's files lost from the blob store: a canary of it cannot load, and each request the
    # split gives it is answered by the champion and counted as version 2's failure.
    keys = [second["artifact"]["key"], *([second["onnx"]["artifact"]["key"]] if second.get("onnx") else [])]
    lost = [f for key in keys for f in (replicated.workdir / ".data" / "blobs").glob(f"{key}*")]
    assert lost, f"no blob file for {keys}"
    for path in lost:
        path.unlink()
    with replicated.gateway(timeout_s=120) as gateway:
        table = {"canary": [{"version": 2, "percent": 50}]}
        assert gateway.put(f"/api/models/{name}/traffic", json=table).status_code == 200
    with httpx.Client(base_url=replicated.gateway_url, headers=headers, timeout=30) as client:
        assert set(predict(client, name, 100)) == {1}  # no caller sees the broken canary

    def failed() -> Evidence | None:
        now = evidence(replicated, name, since)
        return now if now.served(1).requests >= CALLS + 100 and now.served(2).failures > 0 else None

    after = poll(failed, 60)
    assert after is not None, evidence(replicated, name, since).serving
    canary = after.delta(2, read)
    print(f"broken canary at 50%: {canary.failures} of 100 requests counted as its failures")
    assert canary.requests == 0 and 25 <= canary.failures <= 75 and canary.error_rate == 1.0
    assert after.delta(1, read).requests == 100 and after.delta(1, read).failures == 0
