"""The PromQL the operations page runs, from fixed templates. Nothing a client sends goes into a
query: the only values in label matchers are the app ids of the gateway's own settings,
escaped, and the rate's range is a number of seconds the window decides.

Every Prometheus of a machine may scrape several stacks (each writes its own targets), and a
target carries `app_id` (inference-1a2b3c4d), `service` (inference) and `kind` (app or daprd):
the app ids keep each query to this stack.
"""

import re

HTTP_REQUESTS = "daprml_http_requests_total"
HTTP_DURATION = "daprml_http_request_duration_seconds_bucket"
INFERENCE_REQUESTS = "daprml_inference_requests_total"
INFERENCE_DURATION = "daprml_inference_request_duration_seconds_bucket"
# The sidecar's health checks and the launcher's probes: not traffic anyone sent.
PROBES = "/healthz|/readyz"


def string(value: str) -> str:
    """A PromQL string literal holding exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def any_of(values: list[str]) -> str:
    """A regex (RE2, as Prometheus anchors it) matching exactly these values, as a PromQL string."""
    return string("|".join(re.escape(v) for v in sorted(set(values))))


def apps(app_ids: list[str]) -> str:
    """The matchers that keep a query to this stack's apps' own metrics (not their sidecars')."""
    return f"app_id=~{any_of(app_ids)},kind={string('app')}"


def signals(requests: str, duration: str, where: str, failed: str, by: str, rate_s: int) -> dict[str, str]:
    """Rate, p50, p99 and error share of a request counter and its duration histogram, summed
    over replicas by `by`. The error share is 0 (not missing) where there was traffic and no
    error, and missing (NaN) where there was no traffic."""
    window = f"[{rate_s}s]"
    total = f"sum by ({by}) (rate({requests}{{{where}}}{window}))"
    errors = f"sum by ({by}) (rate({requests}{{{where},{failed}}}{window}))"

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by ({by}, le) (rate({duration}{{{where}}}{window})))"

    return {
        "rate": total,
        "p50_s": quantile("0.5"),
        "p99_s": quantile("0.99"),
        "error_share": f"({errors} or {total} * 0) / {total}",
    }


def service_signals(app_ids: list[str], rate_s: int) -> dict[str, str]:
    """Per app id: HTTP requests answered, health probes left out; errors are 5xx answers."""
    where = f"{apps(app_ids)},route!~{string(PROBES)}"
    return signals(HTTP_REQUESTS, HTTP_DURATION, where, f"status=~{string('5..')}", "app_id", rate_s)


def model_signals(inference_app_id: str, rate_s: int) -> dict[str, str]:
    """Per model and version, on the inference replicas; errors are outcome=failed."""
    return signals(
        INFERENCE_REQUESTS,
        INFERENCE_DURATION,
        apps([inference_app_id]),
        f"outcome={string('failed')}",
        "model, version",
        rate_s,
    )


def targets(app_ids: list[str]) -> str:
    """Whether Prometheus' last scrape of each of this stack's targets (apps and sidecars) worked."""
    return f"up{{app_id=~{any_of(app_ids)}}}"
