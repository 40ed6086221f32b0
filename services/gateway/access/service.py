"""The gatekeeper: admits a request only with a valid key holding one of the roles its route
names (services/gateway/deps.py: `dependencies=[READ]`), within its key's rate limit.

    401  no key, a malformed, unknown or revoked key (with WWW-Authenticate)
    403  a valid key without a role the call needs (the answer names the role)
    429  over the key's rate (with Retry-After)
"""

import time
from collections.abc import Callable

from fastapi import Request

from services.common.errors import ClientError
from services.gateway import telemetry
from services.gateway.access.ratelimit import Limiter
from services.gateway.keys.domain import KeyRecord, Role, grants, parse
from services.gateway.keys.service import Forbidden, KeyRing, Unauthorized
from services.gateway.telemetry import GatewayMetrics


class TooManyRequests(ClientError):
    status = 429


class Gatekeeper:
    def __init__(
        self,
        keys: KeyRing,
        rates: dict[Role, float],
        burst_s: float,
        clock: Callable[[], float] = time.monotonic,
        metrics: GatewayMetrics | None = None,
    ):
        self.keys, self.rates, self.clock = keys, rates, clock
        self.limiter = Limiter(burst_s)
        self.metrics = metrics or GatewayMetrics()

    async def admit(self, request: Request, presented: str | None, needed: tuple[Role, ...]) -> KeyRecord:
        try:
            caller = await self.keys.authenticate(presented)
        except Unauthorized:
            self.metrics.auth_failures.labels(_why(presented)).inc()
            raise
        if not grants(caller.roles, needed):
            self.metrics.auth_failures.labels(telemetry.ROLE).inc()
            roles = " or ".join(needed)
            raise Forbidden(
                f"this call needs the {roles} role; key {caller.name!r} has {', '.join(caller.roles)}",
                needed=list(needed),
            )
        rates = [self.rates.get(role, 0.0) for role in caller.roles]
        rate = caller.rate or (0.0 if 0.0 in rates else max(rates))  # 0: no limit
        wait = self.limiter.wait_s(caller.id, rate, self.clock()) if rate > 0 else 0
        if wait:
            self.metrics.rate_limited.inc()
            raise TooManyRequests(
                f"key {caller.name!r} is over its rate limit ({rate:g} calls a second); try again in {wait} s",
                {"retry-after": str(wait)},
            )
        request.state.caller = caller
        return caller


def _why(presented: str | None) -> str:
    """Why KeyRing.authenticate refused a key, in its own order: none, malformed, else unknown."""
    if not presented:
        return telemetry.MISSING
    return telemetry.MALFORMED if parse(presented) is None else telemetry.UNKNOWN
