"""Event delivery is retried a bounded number of times, then dead-lettered: the policy as
Dapr 1.18 reads it (pkg/resiliency decodePolicies -> dapr/kit retry.Config, cenkalti backoff)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
# What Dapr's Retry type (pkg/apis/resiliency/v1alpha1) carries; anything else is silently ignored.
READ_BY_DAPR = {"policy", "duration", "maxInterval", "maxRetries", "matching"}
# backoff.NewExponentialBackOff's defaults, which a resiliency file cannot change.
FIRST_S, MULTIPLIER, JITTER = 0.5, 1.5, 0.5


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    unit = next(u for u in ("ms", "s", "m", "h") if text.endswith(u))
    return float(text[: -len(unit)]) * units[unit]


def delivery_policy() -> dict:
    spec = yaml.safe_load((ROOT / "components/local/resiliency.yaml").read_text())["spec"]
    for name in ("pubsub", "pubsub-replicas"):
        assert spec["targets"]["components"][name]["inbound"]["retry"] == "deliver", name
    return spec["policies"]["retries"]["deliver"]


def test_event_delivery_gives_up_after_a_few_minutes_at_most():
    policy = delivery_policy()
    assert set(policy) <= READ_BY_DAPR, f"Dapr ignores {set(policy) - READ_BY_DAPR}"
    assert policy["policy"] == "exponential"
    retries = policy["maxRetries"]
    assert 3 <= retries <= 20, "bounded (not -1: a poison event would come back forever), but patient"
    cap = seconds(policy["maxInterval"])
    waits = [min(FIRST_S * MULTIPLIER**k, cap) for k in range(retries)]
    longest = sum(min(w * (1 + JITTER), cap) for w in waits)
    shortest = sum(w * (1 - JITTER) for w in waits)
    assert longest <= 5 * 60, f"a poison event takes up to {longest:.0f} s to reach the dead letters"
    assert shortest >= 30, f"a sidecar restart ({shortest:.0f} s of retries) would dead-letter good events"


def test_no_circuit_breaker_on_an_app_and_every_app_named_so_a_dead_sidecar_fails_at_once():
    # daprd 1.18 counts a client's 4xx toward an app breaker and shares it across replicas;
    # an app not named gets daprd's 3 built-in retries, a second apart, to one dead address.
    spec = yaml.safe_load((ROOT / "components/local/resiliency.yaml").read_text())["spec"]
    apps = spec["targets"]["apps"]
    run_file = yaml.safe_load((ROOT / "dapr.yaml").read_text())
    assert set(apps) == {a["appID"] for a in run_file["apps"]}
    assert not any("circuitBreaker" in policy for policy in apps.values())
    assert "circuitBreakers" not in spec["policies"]


def test_only_inference_calls_are_retried_and_only_on_transport_errors_and_503():
    spec = yaml.safe_load((ROOT / "components/local/resiliency.yaml").read_text())["spec"]
    retried = {app: policy["retry"] for app, policy in spec["targets"]["apps"].items() if "retry" in policy}
    assert retried == {"inference": "replicas"}
    policy = spec["policies"]["retries"]["replicas"]
    assert set(policy) <= READ_BY_DAPR
    # Without `matching` daprd retries every answer outside 200-399, a client's 4xx included.
    assert policy["matching"] == {"httpStatusCodes": "503"}
    assert policy["maxRetries"] <= 10 and seconds(policy["duration"]) * policy["maxRetries"] < 1
