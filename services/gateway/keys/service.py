"""Which API keys exist: provisioned ones in the secret store, issued ones in the state store.

Provisioned keys are put in the secret store by whoever runs the stack (setup makes the local
development admin key; on a cloud profile they go in its secret manager, see README). A secret
store is read-only to Dapr apps, and the local file one is read once when its sidecar starts,
so keys issued through the API (POST /api/keys) live in the gateway's state instead, as salted
hashes too; a revocation is recorded there as well, for either kind. Both are read together and
kept for `key_cache_s`, so the request path does not ask a store per request; a key revoked
through this gateway replica is refused at once, through another within that time.
"""

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from services.common.errors import ClientError, Missing
from services.common.ports import NotFound, SecretStore, SidecarUnavailable, StateStore
from services.common.state import Documents
from services.gateway.keys.domain import KeyRecord, Role, issue, parse

ISSUED = "api-keys"  # the state document of issued keys
CHALLENGE = {"www-authenticate": 'Bearer realm="daprml"'}

log = logging.getLogger(__name__)


class Unauthorized(ClientError):
    status = 401


class Forbidden(ClientError):
    status = 403


class LastAdmin(ClientError):
    status = 409


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, where clients send it (see deps.py): `Authorization: Bearer
    <key>`, else `X-API-Key`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


class Issued(BaseModel):
    keys: dict[str, KeyRecord] = {}


class KeyRing:
    def __init__(
        self,
        secrets: SecretStore,
        state: StateStore,
        secret_name: str,
        cache_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.secrets, self.secret_name, self.cache_s, self.clock = secrets, secret_name, cache_s, clock
        self.issued = Documents(state, Issued)
        self._known: dict[str, tuple[KeyRecord, str]] | None = None  # id -> (record, where it lives)
        self._read_at = -float("inf")

    async def authenticate(self, presented: str | None) -> KeyRecord:
        """The record of a valid, unrevoked key; raises Unauthorized otherwise (in words that
        never repeat the key)."""
        if not presented:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", CHALLENGE
            )
        parsed = parse(presented)
        if parsed is None:
            raise Unauthorized("the API key is malformed (keys read dml_<id>_<secret>)", CHALLENGE)
        key_id, secret = parsed
        found = (await self.known()).get(key_id)
        if found is None or found[0].revoked_at is not None or not found[0].matches(secret):
            raise Unauthorized("the API key is unknown or revoked", CHALLENGE)
        return found[0]

    async def valid(self, presented: str | None) -> bool:
        """Whether a key is valid and unrevoked, for what only a key's holder may see (the
        details of /readyz): never raises, so it cannot turn such a page into an error."""
        try:
            await self.authenticate(presented)
        except (Unauthorized, SidecarUnavailable):
            return False
        return True

    async def known(self) -> dict[str, tuple[KeyRecord, str]]:
        if self._known is not None and self.clock() - self._read_at < self.cache_s:
            return self._known
        try:
            known = {k: (r, "provisioned") for k, r in (await self._provisioned()).items()}
            issued = await self.issued.get(ISSUED)
        except SidecarUnavailable:
            if self._known is None:
                raise
            log.warning("API keys could not be read again; the ones read before stay in use")
            return self._known
        known |= {k: (r, "issued" if k not in known else "provisioned") for k, r in (issued or Issued()).keys.items()}
        self._known, self._read_at = known, self.clock()
        return known

    async def _provisioned(self) -> dict[str, KeyRecord]:
        try:
            entries = await self.secrets.get(self.secret_name)
        except NotFound:
            return {}
        records = {}
        for key_id, text in entries.items():
            try:
                records[key_id] = KeyRecord.model_validate({"id": key_id, **json.loads(text)})
            except (ValueError, ValidationError, TypeError) as e:
                log.warning("API key %s in secret %r is unusable, skipped: %s", key_id, self.secret_name, e)
        return records

    async def issue(self, name: str, roles: list[Role], rate: float | None = None) -> tuple[str, KeyRecord]:
        key, record = issue(name, roles, rate)

        def add(current: Issued | None) -> Issued:
            current = current or Issued()
            current.keys[record.id] = record
            return current

        await self.issued.update(ISSUED, add)
        self._known = None
        log.info("API key %s (%s) issued with roles %s", record.id, name, ",".join(roles))
        return key, record

    async def revoke(self, key_id: str, by: KeyRecord) -> KeyRecord:
        """Revokes a key, provisioned or issued, by one compare-and-swap of the issued keys'
        document. Refused (409) when no admin key would be left that works, the setup key
        included: the check runs on the document the revocation is written to, so two admins
        revoking each other at the same moment (through one replica or two) cannot both
        succeed; whoever writes second sees the first's revocation and is refused."""
        if key_id == by.id:
            raise ClientError("a key cannot revoke itself (issue another admin key first)")
        provisioned = await self._provisioned()  # read now, not from the cache
        revoked: KeyRecord | None = None

        def mark(current: Issued | None) -> Issued:
            nonlocal revoked
            current = current or Issued()
            keys = provisioned | current.keys  # a provisioned key's revocation is kept with the issued
            found = keys.get(key_id)
            if found is None:
                raise Missing(f"no API key {key_id!r}")
            revoked = found.model_copy(update={"revoked_at": found.revoked_at or datetime.now(UTC)})
            keys[key_id] = revoked
            if not any(Role.ADMIN in k.roles and k.revoked_at is None for k in keys.values()):
                raise LastAdmin(
                    f"revoking key {key_id} ({found.name}) would leave no admin key that works: issue another "
                    f"admin key first (POST /api/keys with the admin role), then revoke this one"
                )
            caller = keys.get(by.id)
            if caller is None or caller.revoked_at is not None:  # revoked meanwhile, through another replica
                raise Unauthorized("the API key is unknown or revoked", CHALLENGE)
            current.keys[key_id] = revoked
            return current

        await self.issued.update(ISSUED, mark)
        assert revoked is not None  # mark() ran and did not raise
        self._known = None
        log.info("API key %s (%s) revoked by %s", key_id, revoked.name, by.id)
        return revoked
