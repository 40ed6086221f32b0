"""What the ingestion domain refuses, each with the HTTP status a client should see."""

from services.common.errors import ClientError


class IngestionError(ClientError):
    status = 400


class BadInput(IngestionError):
    """The body cannot be read as the data it claims to be."""


class TooLarge(IngestionError):
    status = 413

    @classmethod
    def part(cls, size: str, limit: int) -> "TooLarge":
        return cls(f"the body is {size} bytes; one part may be at most {limit} bytes: "
                   f"send the file in parts (POST /api/datasets/<name>/uploads)")


class UnsupportedType(IngestionError):
    status = 415


class NoValidRows(IngestionError):
    """Every row of the body was rejected."""

    status = 422


class Conflict(IngestionError):
    status = 409


class Missing(IngestionError):
    status = 404
