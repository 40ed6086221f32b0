"""What the ingestion domain refuses, each with the HTTP status a client should see."""

from services.common.errors import ClientError


class IngestionError(ClientError):
    status = 400


class BadInput(IngestionError):
    """The body cannot be read as the data it claims to be."""


class TooLarge(IngestionError):
    status = 413


class UnsupportedType(IngestionError):
    status = 415


class NoValidRows(IngestionError):
    """Every row of the body was rejected."""

    status = 422


class Conflict(IngestionError):
    status = 409


class Missing(IngestionError):
    status = 404
