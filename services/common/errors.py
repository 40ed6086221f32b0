"""Errors a client caused and can fix: each carries the HTTP status it should see."""


class ClientError(Exception):
    status = 400

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.details = details


class Missing(ClientError):
    """What the client asked for does not exist."""

    status = 404
