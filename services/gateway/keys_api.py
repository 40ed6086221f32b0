"""API keys, for admins: issue (the key is shown once), list, revoke."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.gateway.access import Caller
from services.gateway.deps import GateDep
from services.gateway.keys import KEY_ID, KEY_NAME, KeyRecord, Role

router = APIRouter(prefix="/api/keys", tags=["keys"])
KeyId = Annotated[str, Path(pattern=KEY_ID, description="the id in dml_<id>_<secret>")]


class NewKey(BaseModel):
    name: str = Field(pattern=KEY_NAME, description="who or what uses the key, for the list and the logs")
    roles: list[Role] = Field(min_length=1, description="reader, ingest, train, predict, admin")
    rate: float | None = Field(None, gt=0, le=100_000, description="calls a second (default: its roles' rate)")


class KeyInfo(BaseModel):
    id: str
    name: str
    roles: list[Role]
    rate: float | None
    created_at: datetime | None
    revoked_at: datetime | None
    source: str = Field(description="provisioned (the secret store) or issued (through this API)")

    @classmethod
    def of(cls, record: KeyRecord, source: str) -> "KeyInfo":
        return cls(
            **record.model_dump(include={"id", "name", "roles", "rate", "created_at", "revoked_at"}), source=source
        )


class IssuedKey(KeyInfo):
    key: str = Field(description="the key itself: shown this once, stored only as a salted hash")


@router.post("", status_code=201, response_model=IssuedKey)
async def issue_key(request: NewKey, gate: GateDep, _: Caller) -> IssuedKey:
    key, record = await gate.keys.issue(request.name, request.roles, request.rate)
    return IssuedKey(**KeyInfo.of(record, "issued").model_dump(), key=key)


@router.get("", response_model=list[KeyInfo])
async def list_keys(gate: GateDep, _: Caller) -> list[KeyInfo]:
    known = await gate.keys.known()
    return [KeyInfo.of(record, source) for record, source in sorted(known.values(), key=lambda k: k[0].name)]


@router.delete("/{key_id}", response_model=KeyInfo)
async def revoke_key(key_id: KeyId, gate: GateDep, caller: Caller) -> KeyInfo:
    return KeyInfo.of(await gate.keys.revoke(key_id, caller), "revoked")
