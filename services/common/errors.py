"""Errors a client caused and can fix: each carries the HTTP status it should see."""


class ClientError(Exception):
    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None, **details: object):
        super().__init__(message)
        self.details = details
        self.headers = headers or {}


class Missing(ClientError):
    """What the client asked for does not exist."""

    status = 404
