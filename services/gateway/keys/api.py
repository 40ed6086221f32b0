"""API keys, for admins: issue (the key is shown once), list, revoke."""

from typing import Annotated

from fastapi import APIRouter, Path

from services.gateway.deps import Caller, KeysDep
from services.gateway.keys.domain import KEY_ID
from services.gateway.keys.models import IssuedKey, KeyInfo, NewKey

router = APIRouter(prefix="/api/keys", tags=["keys"])
KeyId = Annotated[str, Path(pattern=KEY_ID, description="the id in dml_<id>_<secret>")]


@router.post("", status_code=201, response_model=IssuedKey)
async def issue_key(request: NewKey, keys: KeysDep, _: Caller) -> IssuedKey:
    key, record = await keys.issue(request.name, request.roles, request.rate)
    return IssuedKey(**KeyInfo.of(record, "issued").model_dump(), key=key)


@router.get("", response_model=list[KeyInfo])
async def list_keys(keys: KeysDep, _: Caller) -> list[KeyInfo]:
    known = await keys.known()
    return [KeyInfo.of(record, source) for record, source in sorted(known.values(), key=lambda k: k[0].name)]


@router.delete("/{key_id}", response_model=KeyInfo)
async def revoke_key(key_id: KeyId, keys: KeysDep, caller: Caller) -> KeyInfo:
    return KeyInfo.of(await keys.revoke(key_id, caller), "revoked")
