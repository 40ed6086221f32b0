"""What the registry refuses, each with the HTTP status a client should see."""

from services.common.errors import ClientError


class RegistryError(ClientError):
    status = 400


class BadInput(RegistryError):
    pass


class Missing(RegistryError):
    status = 404


class Conflict(RegistryError):
    status = 409


class Unprocessable(RegistryError):
    """The request is well-formed but cannot be applied to this model."""

    status = 422


class Corrupt(RegistryError):
    """A stored artifact is missing or not the file that was registered: the server's fault,
    not the client's, and no retry brings it back."""

    status = 500
