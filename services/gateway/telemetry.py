"""The gateway's own Prometheus metrics (beside the kit's per-route HTTP metrics): refused
callers by reason, rate-limited calls, and calls an internal service could not take. Not to be
confused with services/gateway/metrics/, which serves /api/metrics (the names of model metrics).

Labels are fixed words and the internal services' names: never a key, its id or its name.
"""

from prometheus_client import CollectorRegistry, Counter

MISSING, MALFORMED, UNKNOWN, ROLE = "missing_key", "malformed_key", "unknown_key", "wrong_role"
"""Why a caller was refused: no key; not a key's shape; a key unknown or revoked (one answer for
both, so a caller cannot tell which); a valid key without a role the call needs (403)."""

BREAKER_OPEN, NOT_ANSWERING, SIDECAR_DOWN = "breaker_open", "not_answering", "sidecar_unavailable"
CUT_SHORT = "answer_cut_short"
"""Why a call got 503: held back by the service's open breaker; the service's sidecar answered
that the app did not (an ERR_ code); the gateway's own sidecar could not be reached; the app
died while answering, after its sidecar had passed on the status."""


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.auth_failures = Counter(
            "daprml_gateway_auth_failures",
            "Calls refused for their key: missing_key, malformed_key, unknown_key (unknown or revoked), "
            "wrong_role (403)",
            ["reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "daprml_gateway_rate_limited", "Calls refused with 429: over their key's rate", registry=registry
        )
        self.unavailable = Counter(
            "daprml_gateway_upstream_unavailable",
            "Calls answered 503 because an internal service could not take them, by service and reason "
            "(breaker_open, not_answering, sidecar_unavailable, answer_cut_short)",
            ["service", "reason"],
            registry=registry,
        )
        self.breaker_opens = Counter(
            "daprml_gateway_breaker_opens",
            "Times the gateway's circuit breaker of an internal service opened",
            ["service"],
            registry=registry,
        )
