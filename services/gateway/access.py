"""Who may call what: every public route names the roles that allow it (`dependencies=[READ]`),
and the gatekeeper admits a request only with a valid key holding one of them, within its
key's rate limit.

    401  no key, a malformed, unknown or revoked key (with WWW-Authenticate)
    403  a valid key without a role the call needs (the answer names the role)
    429  over the key's rate (with Retry-After)
"""

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.common.deps import service_of
from services.common.errors import ClientError
from services.gateway.keyring import Forbidden, KeyRing
from services.gateway.keys import KeyRecord, Role, grants
from services.gateway.ratelimit import Limiter


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


# As security schemes, so that /docs offers to send a key ("Authorize").
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key, as a header of its own")


def allow(*roles: Role) -> Any:
    """The dependency that admits a call any of `roles` allows (admin always may)."""

    async def admitted(
        request: Request,
        gate: Annotated[Gatekeeper, Depends(service_of)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> KeyRecord:
        return await gate.admit(request, bearer.credentials if bearer else header, roles)

    return Depends(admitted)


READ = allow(Role.READER)
READ_MODELS = allow(Role.READER, Role.PREDICT)  # OIP clients read metadata before they infer
INGEST = allow(Role.INGEST)
TRAIN = allow(Role.TRAIN)
PREDICT = allow(Role.PREDICT)
ADMIN = allow(Role.ADMIN)
Caller = Annotated[KeyRecord, ADMIN]
