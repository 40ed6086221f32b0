"""API keys: their format, their stored form and the roles they grant. Pure: no I/O.

A key reads `dml_<id>_<secret>`. The id names the stored record, so a key is found without
trying every hash; the secret is 32 random bytes, and only a salted SHA-256 of it is stored.
A fast hash is enough here: the secret is random and long, not a password a person chose,
so there is nothing to guess faster. Hashes are compared in constant time.
"""

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

PREFIX = "dml"
KEY_ID = r"^[a-f0-9]{12}$"
_KEY = re.compile(rf"^{PREFIX}_([a-f0-9]{{12}})_([A-Za-z0-9_-]{{43}})$")
KEY_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$"


class Role(StrEnum):
    READER = "reader"  # GET anything
    INGEST = "ingest"  # datasets and uploads
    TRAIN = "train"  # training jobs, training and promotion policies
    PREDICT = "predict"  # the JSON predict API and OIP inference
    FEEDBACK = "feedback"  # ground truth for predictions (POST .../feedback), nothing else
    ADMIN = "admin"  # aliases, rollback, keys: everything


class KeyRecord(BaseModel):
    """What is stored of a key: never the key itself."""

    id: str = Field(pattern=KEY_ID)
    name: str = Field(pattern=KEY_NAME)
    roles: list[Role] = Field(min_length=1)
    rate: float | None = Field(None, gt=0)  # calls a second; None: its roles' rate
    salt: str
    hash: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.hash, digest(self.salt, secret))


def digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse(key: str) -> tuple[str, str] | None:
    """The id and secret of a well-formed key, else None."""
    found = _KEY.match(key)
    return (found.group(1), found.group(2)) if found else None


def issue(name: str, roles: list[Role], rate: float | None = None) -> tuple[str, KeyRecord]:
    """A new key and its record; the key is shown once, the record is what is kept."""
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    record = KeyRecord(
        id=key_id,
        name=name,
        roles=roles,
        rate=rate,
        salt=salt,
        hash=digest(salt, secret),
        created_at=datetime.now(UTC),
    )
    return f"{PREFIX}_{key_id}_{secret}", record


def grants(roles: list[Role], needed: tuple[Role, ...]) -> bool:
    """Whether a key with `roles` may make a call that any one of `needed` allows."""
    return Role.ADMIN in roles or any(role in roles for role in needed)
