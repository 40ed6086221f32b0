"""Traffic tables on the real stack, with two inference replicas behind the gateway: a 30% canary
serves 25-35% of 1000 requests for the champion and both replicas apply it; one routing key stays
on one version; a request naming the champion bypasses the split; a shadow at 50% gets about
half the requests as copies (counted on the replicas' metrics) while every caller is answered by
the champion, and the monitor captures the copies' answers and joins them with the champion's
into the shadow's agreement; the history records each change with who and why."""

import httpx
import pytest

from tests.integration.conftest import poll
from tests.integration.test_hot_swap import ROWS, champion_and_challenger, replicated, streaming_headers
from tests.integration.test_metrics import sample

pytestmark = pytest.mark.integration
__all__ = ["replicated"]  # the module's stack: two inference replicas

ADMIN = "development admin"


def versions_served(client: httpx.Client, name: str, calls: int, key: str | None = None, **body) -> list[int]:
    headers = {"x-daprml-routing-key": key} if key is not None else {}
    answers = [
        client.post(f"/api/models/{name}/predict", json={"records": ROWS, **body}, headers=headers)
        for _ in range(calls)
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
    return [a.json()["version"] for a in answers]


def replica_samples(stack, metric: str, **labels: str) -> list[float]:
    """The metric's sample on each inference replica."""
    found = []
    for app in stack.replicas("inference"):
        text = httpx.get(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=10).text
        found.append(sample(text, metric, **labels))
    return found


def test_a_canary_takes_its_share_on_every_replica_and_a_shadow_gets_copies(replicated):
    with replicated.gateway(timeout_s=120) as gateway:
        name = champion_and_challenger(gateway, "traffic")
        table = {"canary": [{"version": 2, "percent": 30}]}
        put = gateway.put(f"/api/models/{name}/traffic", json=table, params={"reason": "try v2"})
        assert put.status_code == 200, put.text
        headers = streaming_headers(gateway)

    with httpx.Client(base_url=replicated.gateway_url, headers=headers, timeout=30) as client:
        assert poll(lambda: 2 in versions_served(client, name, 20), 10), "no replica applied the canary"
        served = versions_served(client, name, 1000)
        share = served.count(2) / len(served)
        print(f"\ncanary at 30%: {served.count(2)} of 1000 requests served by version 2 ({share:.1%})")
        assert 0.25 <= share <= 0.35
        per_replica = replica_samples(
            replicated, "daprml_inference_requests_total", model=name, version="2", outcome="success"
        )
        assert all(n > 0 for n in per_replica), f"a replica served no canary request: {per_replica}"

        for key in ("alice", "bob", "carol", "dave", "erin"):
            assert len(set(versions_served(client, name, 10, key=key))) == 1, f"{key} saw both versions"
        assert set(versions_served(client, name, 50, alias="champion")) == {1}

    with replicated.gateway(timeout_s=120) as gateway:
        shadow = {"shadows": [{"version": 2, "percent": 50}]}
        assert gateway.put(f"/api/models/{name}/traffic", json=shadow).status_code == 200
    with httpx.Client(base_url=replicated.gateway_url, headers=headers, timeout=30) as client:

        def copies() -> float:
            labels = {"model": name, "version": "2", "outcome": "done"}
            return sum(replica_samples(replicated, "daprml_inference_shadow_requests_total", **labels))

        assert poll(lambda: versions_served(client, name, 10) and copies() > 0, 15), "no shadow copy was made"
        before = copies()
        assert set(versions_served(client, name, 400)) == {1}  # the callers see only the champion
        assert poll(lambda: copies() - before >= 140, 15)
        made = copies() - before
        print(f"shadow at 50%: {made:.0f} copies of 400 requests")
        assert 140 <= made <= 260  # 200 expected, about 6 standard deviations each way

    with replicated.gateway(timeout_s=120) as gateway:

        def shadow_report() -> dict | None:
            shadows = gateway.get(f"/api/models/{name}/monitoring").json()["shadows"]
            return next((s for s in shadows if s["version"] == 2 and s["pairs"] >= made), None)

        # The copies' answers are captured too (by the monitor, as any prediction, marked shadow).
        report = poll(shadow_report, 60)
        assert report, gateway.get(f"/api/models/{name}/monitoring").json()["shadows"]
        print(f"shadow v2 agreed with the champion on {report['agreement']:.1%} of {report['pairs']} answers")
        assert report["served_by"] == {"1": report["pairs"]} and 0 <= report["agreement"] <= 1
        page = gateway.get(f"/api/models/{name}/predictions", params={"shadow": 2, "limit": 5}).json()
        assert page["predictions"] and all(r["shadow"] and r["version"] == 2 for r in page["predictions"])
        served = gateway.get(f"/api/models/{name}/predictions", params={"limit": 1000}).json()["predictions"]
        assert not any(r["shadow"] for r in served)

        entries = gateway.get(f"/api/models/{name}/history", params={"limit": 20}).json()["entries"]
        changes = [e for e in entries if e["action"] == "traffic.changed"]
        assert len(changes) == 2 and all(e["actor"] == ADMIN for e in changes), changes
        assert "try v2" in {e["reason"] for e in changes}
