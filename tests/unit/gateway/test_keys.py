"""Revoking keys: never the last admin key, also when two revocations race."""

import asyncio

import pytest

from services.gateway.keys.domain import Role, parse
from services.gateway.keys.service import KeyRing, LastAdmin, Unauthorized
from tests.api.conftest import provisioned
from tests.fakes import SlowStateStore


def ring(secrets, state) -> KeyRing:
    return KeyRing(secrets, state, "api-keys", cache_s=10)


def setup_and_one_issued_admin() -> tuple[KeyRing, KeyRing, str, str]:
    """Two gateway replicas (each its own key cache) over one state store: the setup key
    (provisioned) and one admin key issued through the API, the only admin keys."""
    plain, secrets = provisioned(setup=[Role.ADMIN], reader=[Role.READER])
    state = SlowStateStore()  # yields between each read and write: concurrent changes interleave
    one, two = ring(secrets, state), ring(secrets, state)
    _, issued = asyncio.run(one.issue("second admin", [Role.ADMIN]))
    setup_id, _ = parse(plain["setup"])
    return one, two, setup_id, issued.id


def test_two_admins_revoking_each_other_at_once_leave_one_admin_key():
    one, two, setup_id, issued_id = setup_and_one_issued_admin()

    async def race():
        setup = (await one.known())[setup_id][0]
        issued = (await two.known())[issued_id][0]
        return await asyncio.gather(
            one.revoke(issued_id, by=setup), two.revoke(setup_id, by=issued), return_exceptions=True
        )

    outcomes = asyncio.run(race())
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], LastAdmin), outcomes
    assert "would leave no admin key" in str(refused[0]) and LastAdmin.status == 409
    known = asyncio.run(one.known())
    admins = [r for r, _ in known.values() if Role.ADMIN in r.roles and r.revoked_at is None]
    assert len(admins) == 1


def test_the_setup_key_may_be_revoked_once_another_admin_key_exists():
    one, _, setup_id, issued_id = setup_and_one_issued_admin()
    issued = asyncio.run(one.known())[issued_id][0]
    assert asyncio.run(one.revoke(setup_id, by=issued)).revoked_at is not None
    assert asyncio.run(one.known())[setup_id][0].revoked_at is not None


def test_a_key_revoked_through_another_replica_cannot_revoke_the_last_admin_left():
    """Replica two still trusts the setup key from its cache when replica one revokes it: the
    revocation it then tries is checked against the stored keys, not the cache."""
    one, two, setup_id, issued_id = setup_and_one_issued_admin()
    setup_seen_by_two = asyncio.run(two.known())[setup_id][0]
    issued = asyncio.run(one.known())[issued_id][0]
    asyncio.run(one.revoke(setup_id, by=issued))
    with pytest.raises(LastAdmin):
        asyncio.run(two.revoke(issued_id, by=setup_seen_by_two))
    assert asyncio.run(one.known())[issued_id][0].revoked_at is None


def test_a_key_revoked_meanwhile_may_not_revoke_others_while_admins_remain():
    plain, secrets = provisioned(setup=[Role.ADMIN], other=[Role.ADMIN], reader=[Role.READER])
    state = SlowStateStore()
    one, two = ring(secrets, state), ring(secrets, state)
    ids = {name: parse(key)[0] for name, key in plain.items()}  # type: ignore[index]
    stale_setup = asyncio.run(two.known())[ids["setup"]][0]
    other = asyncio.run(one.known())[ids["other"]][0]
    asyncio.run(one.revoke(ids["setup"], by=other))
    with pytest.raises(Unauthorized):
        asyncio.run(two.revoke(ids["reader"], by=stale_setup))
    assert asyncio.run(one.known())[ids["reader"]][0].revoked_at is None
