"""What the keys API takes and answers: never a key's hash, and the key itself only once."""

from datetime import datetime

from pydantic import BaseModel, Field

from services.gateway.keys.domain import KEY_NAME, KeyRecord, Role


class NewKey(BaseModel):
    name: str = Field(pattern=KEY_NAME, description="who or what uses the key, for the list and the logs")
    roles: list[Role] = Field(min_length=1, description="reader, ingest, train, predict, feedback, admin")
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
