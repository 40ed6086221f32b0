"""No client can take a service down for others: a flood of invalid calls from one key leaves
every other key served (Dapr's own breakers counted a client's 4xx and were shared by all
callers: eleven invalid predictions closed inference for everyone); a service that really stops
answering still trips the gateway's breaker for it, which closes again once it is back."""

import time
import uuid

import httpx
import pytest

from tests.integration.load import FixedRate, kill_listener
from tests.integration.test_hot_swap import ROWS
from tests.integration.test_training import commit, finished_job, iris_csv

pytestmark = pytest.mark.integration


def key_for(gateway: httpx.Client, role: str) -> dict[str, str]:
    issued = gateway.post("/api/keys", json={"name": f"{role} {uuid.uuid4().hex[:6]}", "roles": [role]})
    assert issued.status_code == 201, issued.text
    return {"authorization": f"Bearer {issued.json()['key']}"}


def test_200_invalid_calls_from_one_key_leave_valid_calls_from_another_served(stack, gateway):
    name = f"breaker-{uuid.uuid4().hex[:8]}"
    commit(gateway, name, iris_csv())
    finished_job(gateway, name)
    attacker, user = key_for(gateway, "predict"), key_for(gateway, "predict")
    url = f"{stack.gateway_url}/api/models/{name}/predict"
    with httpx.Client(timeout=30) as client:
        assert client.post(url, json={"records": ROWS}, headers=user).status_code == 200
        refused = [client.post(url, json={"records": []}, headers=attacker).status_code for _ in range(200)]
        assert set(refused) == {422}
        served = [client.post(url, json={"records": ROWS}, headers=user).status_code for _ in range(20)]
    print(f"\nafter 200 invalid predictions from one key: another key's 20 valid ones answered {set(served)}")
    assert served == [200] * 20


def test_a_service_that_stops_answering_trips_its_breaker_which_closes_when_it_is_back(stack):
    load = FixedRate(lambda c: c.get("/api/datasets"), stack.gateway, per_second=40, duration_s=15)
    with load:
        time.sleep(2)
        _, back_s = kill_listener(stack.app("ingestion").app_port, timeout_s=30)
        killed_at = time.monotonic() - back_s
    failures = load.failures()
    print(f"\ningestion's app back in {back_s:.1f}s; {load.report('reads through the gateway')}")
    assert failures and all(a.status == 503 for a in failures)
    # The breaker opened: at once, without a call going out (the gateway log says which).
    held_back = [a for a in failures if a.latency_s < 0.05]
    assert held_back, "no call was held back: the breaker never opened"
    assert load.failures(since=killed_at + back_s + 8) == [], "the breaker did not close once ingestion was back"
