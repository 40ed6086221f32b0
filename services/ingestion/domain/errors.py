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
        return cls(
            f"the body is {size} bytes; one part may be at most {limit} bytes: "
            f"send the file in parts (a multi-part upload)"
        )


class UnsupportedType(IngestionError):
    status = 415


class NoValidRows(IngestionError):
    """Every row of the body was rejected."""

    status = 422


class Conflict(IngestionError):
    status = 409


class Missing(IngestionError):
    status = 404


class Lost(IngestionError):
    """What a stored record points at is gone from the store: the server's fault, not the
    client's, and no retry brings it back."""

    status = 500
