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
from services.gateway.access.ratelimit import Limiter
from services.gateway.keys.domain import KeyRecord, Role, grants
from services.gateway.keys.service import Forbidden, KeyRing


class TooManyRequests(ClientError):
    status = 429


class Gatekeeper:
    def __init__(
        self, keys: KeyRing, rates: dict[Role, float], burst_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self.keys, self.rates, self.clock = keys, rates, clock
        self.limiter = Limiter(burst_s)

    async def admit(self, request: Request, presented: str | None, needed: tuple[Role, ...]) -> KeyRecord:
        caller = await self.keys.authenticate(presented)
        if not grants(caller.roles, needed):
            roles = " or ".join(needed)
            raise Forbidden(
                f"this call needs the {roles} role; key {caller.name!r} has {', '.join(caller.roles)}",
                needed=list(needed),
            )
        rates = [self.rates.get(role, 0.0) for role in caller.roles]
        rate = caller.rate or (0.0 if 0.0 in rates else max(rates))  # 0: no limit
        wait = self.limiter.wait_s(caller.id, rate, self.clock()) if rate > 0 else 0
        if wait:
            raise TooManyRequests(
                f"key {caller.name!r} is over its rate limit ({rate:g} calls a second); try again in {wait} s",
                {"retry-after": str(wait)},
            )
        request.state.caller = caller
        return caller
